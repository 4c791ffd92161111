"""Owner visibility (docs/contract.md §3): under `owner_only`, a non-owner sees and acts only on what they own.

The one place that decides it, for the API and the workers alike: a request resolves the account's
visibility once (`with_visibility`), a job keeps the caller as they were then (`job_principal`), and every
query of a record the caller acts on adds `visible(...)`.
"""

from __future__ import annotations

from dataclasses import replace

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import ACCOUNTS
from crm_workers.domain.principal import Principal
from crm_workers.errors import Forbidden


def account_is_owner_only(db: Database, account_id: ObjectId) -> bool:
    account = db[ACCOUNTS].find_one({"_id": account_id}, {"preferences.crm_visibility": 1}) or {}
    return (account.get("preferences") or {}).get("crm_visibility") == "owner_only"


def with_visibility(db: Database, principal: Principal) -> Principal:
    """The principal with its account's visibility known (looked up once, then carried). An owner sees the whole
    account whatever it is, so for them it is not looked up (one query less on most requests)."""
    if principal.owner_only is not None:
        return principal
    if principal.is_owner:
        return replace(principal, owner_only=False)
    return replace(principal, owner_only=account_is_owner_only(db, principal.account_id))


def restricted_to(db: Database, principal: Principal) -> ObjectId | None:
    """The uid the caller is restricted to, or None when they may see the whole account."""
    return with_visibility(db, principal).restricted_uid


def visible(db: Database, principal: Principal) -> dict:
    """The condition every query of contacts and deals adds for this caller: `{}` or `{"owner": uid}`."""
    uid = restricted_to(db, principal)
    return {} if uid is None else {"owner": uid}


def can_see(db: Database, principal: Principal, record: dict | None) -> bool:
    """Whether a record (a contact or a deal of the caller's account) is visible to the caller."""
    uid = restricted_to(db, principal)
    return record is not None and (uid is None or record.get("owner") == uid)


def job_principal(db: Database, job: dict) -> Principal:
    """Who a job acts for, with the rights they had when they asked (jobs from before this was kept:
    the account's visibility now)."""
    params = job.get("params") or {}
    who = params.get("principal")
    if who is None and job.get("created_by"):
        who = {"uid": str(job["created_by"]), "is_owner": False, "owner_only": None}
    return with_visibility(db, Principal.from_params(job["account_id"], who))


def require_structure_rights(db: Database, principal: Principal) -> None:
    """Deleting tags, fields, stages or pipelines changes other users' records: under `owner_only`, owners only."""
    if restricted_to(db, principal) is not None:
        raise Forbidden(
            "under owner-only visibility only an account owner may delete tags, fields, stages "
            "or pipelines (they change other users' records)",
            code="forbidden",
        )
