"""Which stored files a caller may name (docs/contract.md §3): the one place that decides it.

Every file an upload, a preview or a connector's records stored for an import is recorded here with its account
and user (`crm.uploads`). An import or preview that names a storage key gets it only when such a record exists in
the caller's account and, under `owner_only` for a non-owner, was stored by the caller; any other key (an export,
a note's attachment, another user's upload, a folder, a key that was never written) is answered 404 exactly like
a key that does not exist, so that a key cannot be probed. Uploads no import used are deleted after 24 h by
housekeeping, and a user holds at most `PENDING_MAX` of them at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import UPLOADS
from crm_workers.domain.principal import Principal
from crm_workers.errors import NotFound, TooManyRequests
from crm_workers.jobs import now
from crm_workers.services.visibility import restricted_to

log = logging.getLogger("crm.files")

#: How long an upload no import used is kept (a preview's file waits this long for its import).
UNUSED_HOURS = 24
#: Uploads no import used yet that one user may hold at once: previews cannot fill the storage.
PENDING_MAX = 200
#: How the stored file came: a multipart upload, a preview's upload, connector records written as CSV.
KINDS = ("upload", "preview", "records")


def check_room(db: Database, principal: Principal) -> None:
    """429 when the caller already holds `PENDING_MAX` uploads that no import used (they expire after 24 h)."""
    pending = db[UPLOADS].count_documents(
        {"account_id": principal.account_id, "uid": principal.uid, "used_by": None}, limit=PENDING_MAX
    )
    if pending >= PENDING_MAX:
        raise TooManyRequests(
            f"{pending} uploads are waiting for an import; start one or wait for them to expire ({UNUSED_HOURS} h)",
            details={"field": "file", "limit": PENDING_MAX},
        )


def record(db: Database, principal: Principal, key: str, *, kind: str, used_by: ObjectId | None = None) -> None:
    """Remember that `principal` stored `key` (before anyone is told the key)."""
    assert kind in KINDS, kind
    db[UPLOADS].insert_one(
        {
            "account_id": principal.account_id,
            "uid": principal.uid,
            "key": key,
            "kind": kind,
            "created_at": now(),
            "used_by": used_by,
        }
    )


def readable(db: Database, principal: Principal, key: str) -> dict:
    """The record of a stored file the caller may name, or 404 (`source.key`) exactly as for a missing key."""
    query = {"account_id": principal.account_id, "key": key if isinstance(key, str) else None}
    uid = restricted_to(db, principal)
    if uid is not None:
        query["uid"] = uid
    found = db[UPLOADS].find_one(query)
    if found is None:
        raise NotFound("no such file", details={"field": "source.key"})
    return found


def forget(db: Database, account_id: ObjectId, key: str) -> None:
    """The file was refused (empty, too large, unreadable) and deleted at once: so is its record."""
    db[UPLOADS].delete_one({"account_id": account_id, "key": key, "used_by": None})


def mark_used(db: Database, account_id: ObjectId, key: str, job_id: ObjectId) -> None:
    """An import took the file: housekeeping keeps it (the import, its retries and its undo read it)."""
    db[UPLOADS].update_one({"account_id": account_id, "key": key, "used_by": None}, {"$set": {"used_by": job_id}})


def delete_unused(db: Database, storage, *, older_than_hours: int = UNUSED_HOURS, at=None, accounts=None) -> int:
    """Uploads no import used within `older_than_hours` are deleted, file first, then their record (a file whose
    delete fails keeps its record and is tried again at the next run). `at` and `accounts` are for tests."""
    cutoff = (at or now()) - timedelta(hours=older_than_hours)
    query = {"used_by": None, "created_at": {"$lt": cutoff}}
    if accounts is not None:
        query["account_id"] = {"$in": list(accounts)}
    deleted = 0
    for doc in db[UPLOADS].find(query).limit(10_000):
        try:
            storage.delete(doc["key"])
        except Exception as exc:  # noqa: BLE001 - one file's trouble never stops the others
            log.error("unused upload %s could not be deleted: %s", doc["key"], exc)
            continue
        db[UPLOADS].delete_one({"_id": doc["_id"], "used_by": None})
        deleted += 1
    if deleted:
        log.info("deleted %s uploads no import used within %s h", deleted, older_than_hours)
    return deleted
