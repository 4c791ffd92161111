"""Stored report results (`crm.reports`): one per account, kind, parameters and scope.

The scope is what the caller may see: `account` for anyone seeing the whole account, `owner:<uid>` for a
non-owner under `owner_only` — so an owner's and a non-owner's reports never share a result.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from crm_workers.adapters.mongo import REPORTS
from crm_workers.jobs import now


def scope_of(restricted_uid) -> str:
    return "account" if restricted_uid is None else f"owner:{restricted_uid}"


def report_key(params: dict, scope: str) -> str:
    return hashlib.sha256(json.dumps({"params": params, "scope": scope}, sort_keys=True).encode()).hexdigest()


def answer(doc: dict) -> dict:
    """The stored result as the API answers it (and as a report job's `result`)."""
    return {
        "kind": doc["kind"],
        "params": doc["params"],
        "computed_at": doc["computed_at"].isoformat().replace("+00:00", "Z"),
        "job_id": str(doc["job_id"]) if doc.get("job_id") else None,
        "data": doc["data"],
    }


def fresh(db: Database, account_id, kind: str, params: dict, scope: str, max_age_seconds: int) -> dict | None:
    """The stored result computed less than `max_age_seconds` ago, or None."""
    return db[REPORTS].find_one(
        {
            "account_id": account_id,
            "kind": kind,
            "key": report_key(params, scope),
            "computed_at": {"$gt": now() - timedelta(seconds=max_age_seconds)},
        }
    )


def save(db: Database, account_id, kind: str, params: dict, scope: str, data: dict, job_id, computed_at) -> dict:
    """Store a result unless a newer one for the same key is there already (two jobs ending out of order)."""
    key = report_key(params, scope)
    doc = {
        "account_id": account_id,
        "kind": kind,
        "key": key,
        "params": params,
        "scope": scope,
        "data": data,
        "computed_at": computed_at,
        "job_id": job_id,
    }
    try:
        db[REPORTS].update_one(
            {"account_id": account_id, "kind": kind, "key": key, "computed_at": {"$lt": computed_at}},
            {"$set": doc},
            upsert=True,
        )
    except DuplicateKeyError:
        pass  # a newer result is stored: it stays
    return doc
