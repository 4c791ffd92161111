"""Undoing a completed import: created records removed, overwritten values put back, unless changed since."""

from __future__ import annotations

from datetime import timedelta

from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS, IMPORT_UNDO, QUEUES, TAGS, id_batches
from crm_workers.domain.principal import Principal
from crm_workers.errors import Conflict
from crm_workers.jobs import Progress, now
from crm_workers.services.job_submission import find_job, submit_job

UNDO_WINDOW_DAYS = 30
UNDOABLE = {"contacts.import", "deals.import"}
LISTED_MAX = 100


def request_undo(db: Database, broker, principal: Principal, job_id: str, *, idempotency_key=None) -> dict:
    """Check the job can be undone, mark it, and start an `imports.undo` job."""
    job = find_job(db, principal, job_id)
    if job["type"] not in UNDOABLE:
        raise Conflict(f"a {job['type']} job cannot be undone", code="not_undoable")
    if job["status"] != "completed":
        raise Conflict("only a completed import can be undone", code="not_undoable",
                       details={"status": job["status"]})
    if job["finished_at"] < now() - timedelta(days=UNDO_WINDOW_DAYS):
        raise Conflict(f"imports can be undone within {UNDO_WINDOW_DAYS} days", code="undo_expired")
    marked = db[QUEUES].update_one({"_id": job["_id"], "undo_requested_at": {"$exists": False}},
                                   {"$set": {"undo_requested_at": now()}})
    if not marked.modified_count:
        raise Conflict("this import was undone already", code="already_undone")
    undo = submit_job(db, broker, principal, "imports.undo", {"job_id": str(job["_id"]), "type": job["type"]},
                      idempotency_key=idempotency_key)
    db[QUEUES].update_one({"_id": job["_id"]}, {"$set": {"undo_job_id": undo["_id"]}})
    return undo


def undo_import(db: Database, account_id, import_job_id, progress: Progress, *, batch_size: int) -> dict:
    imported = db[QUEUES].find_one({"_id": import_job_id, "account_id": account_id})
    finished = imported["finished_at"]
    created_q = {"account_id": account_id, "created_by_import": import_job_id}
    if progress.total is None:
        progress.total = (db[CONTACTS].count_documents(created_q) + db[DEALS].count_documents(created_q)
                          + db[IMPORT_UNDO].count_documents({"account_id": account_id, "job_id": import_job_id}))
    counts = progress.state.setdefault("counts", {"deleted": 0, "restored": 0, "left_changed": 0})
    left: list[str] = progress.state.setdefault("left", [])

    def unchanged(doc) -> bool:
        return doc.get("updated_at") is not None and doc["updated_at"] <= finished

    def keep_left(doc, collection):
        counts["left_changed"] += 1
        if len(left) < LISTED_MAX:
            left.append(f"{collection}:{doc['_id']}")

    for coll in (DEALS, CONTACTS):  # deals first: they point at contacts
        for ids in id_batches(db[coll], {**created_q, "undone": {"$ne": True}}, batch_size):
            docs = list(db[coll].find({"_id": {"$in": ids}, "account_id": account_id}, {"updated_at": 1}))
            gone = [d["_id"] for d in docs if unchanged(d)]
            for d in docs:
                if not unchanged(d):
                    keep_left(d, coll)
                    db[coll].update_one({"_id": d["_id"], "account_id": account_id}, {"$set": {"undone": True}})
            if gone:
                removed = db[coll].delete_many({"_id": {"$in": gone}, "account_id": account_id})
                counts["deleted"] += removed.deleted_count
            progress.add(succeeded=len(docs))
            progress.save_state(counts=counts, left=left)
    for entry in db[IMPORT_UNDO].find({"account_id": account_id, "job_id": import_job_id, "done": {"$ne": True}}):
        coll = entry["collection"]
        doc = db[coll].find_one({"_id": entry["record_id"], "account_id": account_id}, {"updated_at": 1})
        if doc is not None and unchanged(doc):
            sets = {k: v for k, v in entry["previous"].items() if not (isinstance(v, dict) and v.get("$missing"))}
            unsets = {k: "" for k, v in entry["previous"].items() if isinstance(v, dict) and v.get("$missing")}
            update = {"$set": sets} | ({"$unset": unsets} if unsets else {})
            db[coll].update_one({"_id": doc["_id"], "account_id": account_id}, update)
            counts["restored"] += 1
        elif doc is not None:
            keep_left(doc, coll)
        db[IMPORT_UNDO].update_one({"_id": entry["_id"]}, {"$set": {"done": True}})
        progress.add(succeeded=1)
        progress.checkpoint()
    # Tags the import created, now on no record.
    for tag in db[TAGS].find({"account_id": account_id, "created_by_import": import_job_id}, {"_id": 1}):
        in_use = any(db[c].find_one({"account_id": account_id, "tags": tag["_id"]}, {"_id": 1})
                     for c in (CONTACTS, DEALS))
        if not in_use:
            db[TAGS].delete_one({"_id": tag["_id"], "account_id": account_id})
    db[QUEUES].update_one({"_id": import_job_id}, {"$set": {"undone_at": now()}})
    return {"import_job_id": str(import_job_id), **counts, "left_changed_records": left}
