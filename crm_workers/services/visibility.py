"""Owner visibility (CONTRACT §3): under `owner_only`, a non-owner sees only what they own."""

from __future__ import annotations

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import ACCOUNTS
from crm_workers.domain.principal import Principal


def restricted_to(db: Database, principal: Principal) -> ObjectId | None:
    """The uid the caller is restricted to, or None when they may see the whole account."""
    if principal.is_owner:
        return None
    account = db[ACCOUNTS].find_one({"_id": principal.account_id}, {"preferences.crm_visibility": 1}) or {}
    if (account.get("preferences") or {}).get("crm_visibility") == "owner_only":
        return principal.uid
    return None
