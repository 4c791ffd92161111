"""Undoing a completed import: created records removed, overwritten values put back, unless changed since."""

from __future__ import annotations

from typing import cast

from pymongo.database import Database

from crm_workers.adapters.mongo import (
    AUTOMATIONS,
    CONTACTS,
    DEALS,
    IMPORT_UNDO,
    PIPELINES,
    QUEUES,
    STAGES,
    TAGS,
    id_batches,
)
from crm_workers.jobs import Progress, mark_undone

LISTED_MAX = 100


def undo_import(db: Database, account_id, import_job_id, progress: Progress, *, batch_size: int) -> dict:
    imported = cast(dict, db[QUEUES].find_one({"_id": import_job_id, "account_id": account_id}))
    finished = imported["finished_at"]
    created_q = {"account_id": account_id, "created_by_import": import_job_id}
    if progress.total is None:
        progress.total = (
            db[CONTACTS].count_documents(created_q)
            + db[DEALS].count_documents(created_q)
            + db[IMPORT_UNDO].count_documents({"account_id": account_id, "job_id": import_job_id})
        )
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
        in_use = any(
            db[c].find_one({"account_id": account_id, "tags": tag["_id"]}, {"_id": 1}) for c in (CONTACTS, DEALS)
        )
        if not in_use:
            db[TAGS].delete_one({"_id": tag["_id"], "account_id": account_id})
    _remove_unused_structure(db, account_id, import_job_id)
    mark_undone(db, account_id, import_job_id)
    # The same words as every undo's result (restored, not_restored with reasons), besides the counts above.
    not_restored = [
        {
            "collection": ref.split(":", 1)[0],
            "id": ref.split(":", 1)[1],
            "code": "changed_since",
            "reason": "changed after the import; left as it is",
        }
        for ref in left
    ]
    return {
        "import_job_id": str(import_job_id),
        **counts,
        "left_changed_records": left,
        "not_restored": not_restored,
        "not_restored_count": counts["left_changed"],
        "complete": counts["left_changed"] == 0,
    }


def _remove_unused_structure(db: Database, account_id, import_job_id) -> None:
    """Stages and pipelines the import created (`create_missing`), unless something uses them now."""
    for stage in db[STAGES].find({"account_id": account_id, "created_by_import": import_job_id}, {"_id": 1}):
        used = any(
            db[c].find_one({"account_id": account_id, "stage_id": stage["_id"]}, {"_id": 1})
            for c in (DEALS, AUTOMATIONS)
        )
        if not used:
            db[STAGES].delete_one({"_id": stage["_id"], "account_id": account_id})
    for pipeline in db[PIPELINES].find({"account_id": account_id, "created_by_import": import_job_id}, {"_id": 1}):
        used = any(
            db[c].find_one({"account_id": account_id, "pipeline_id": pipeline["_id"]}, {"_id": 1})
            for c in (DEALS, STAGES, AUTOMATIONS)
        )
        if not used:
            db[PIPELINES].delete_one({"_id": pipeline["_id"], "account_id": account_id})
