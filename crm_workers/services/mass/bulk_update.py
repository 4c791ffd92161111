"""contacts.bulk_update, deals.bulk_update and contacts.link, in batches through the `_id` index."""

from __future__ import annotations

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS, id_batches, update_by_ids
from crm_workers.jobs import now
from crm_workers.services.stage_events import deals_entered_stage


def _count_progress(db, collection, query, progress):
    if progress.total is None:
        progress.total = db[collection].count_documents(query)
        progress.save_state()


def update_records(db: Database, account_id, job: dict, entity: str, query: dict, change: dict, progress, *,
                   batch_size: int) -> int:
    """Apply `change` ({set, tags_add, tags_remove} already resolved to ids and typed values) to every match."""
    collection = CONTACTS if entity == "contact" else DEALS
    _count_progress(db, collection, query, progress)
    sets = dict(change.get("set") or {})
    stage = change.get("stage")  # {"_id", "pipeline_id"} when deals move
    update: dict = {}
    if change.get("tags_add"):
        update["$addToSet"] = {"tags": {"$each": change["tags_add"]}}
    done = progress.processed
    for ids in id_batches(db[collection], query, batch_size):
        progress.checkpoint()
        ts = now()
        moves = []
        if stage is not None:
            before = {d["_id"]: d.get("stage_id") for d in db[collection].find(
                {"_id": {"$in": ids}, "account_id": account_id}, {"stage_id": 1})}
            moves = [(i, s, stage["_id"]) for i, s in before.items() if s != stage["_id"]]
            moved = [m[0] for m in moves]
            if moved:
                update_by_ids(db[collection], account_id, moved, {"$set": {
                    "stage_id": stage["_id"], "pipeline_id": stage["pipeline_id"], "stage_entered_at": ts}})
        batch_update = {**update, "$set": {**sets, "updated_at": ts}}
        update_by_ids(db[collection], account_id, ids, batch_update)
        if change.get("tags_remove"):  # $pull and $addToSet on one field cannot share an update
            update_by_ids(db[collection], account_id, ids, {"$pull": {"tags": {"$in": change["tags_remove"]}}})
        deals_entered_stage(db, account_id, moves, uid=job.get("created_by"), job_id=job["_id"])
        done += len(ids)
        progress.set(processed=done, succeeded=done)
    return done


def link_contacts(db: Database, account_id, query: dict, *, business_id: ObjectId | None, deal_id: ObjectId | None,
                  progress, batch_size: int) -> int:
    """Persons of the selection get the business; or the deal gets the selected contacts. No duplicates."""
    if business_id is not None:
        query = {**query, "type": "person"}
    _count_progress(db, CONTACTS, query, progress)
    done = progress.processed
    for ids in id_batches(db[CONTACTS], query, batch_size):
        progress.checkpoint()
        ts = now()
        if business_id is not None:
            update_by_ids(db[CONTACTS], account_id, ids, {"$addToSet": {"businesses": business_id},
                                                         "$set": {"updated_at": ts}})
        else:
            db[DEALS].update_one({"_id": deal_id, "account_id": account_id},
                                 {"$addToSet": {"contacts": {"$each": ids}}, "$set": {"updated_at": ts}})
        done += len(ids)
        progress.set(processed=done, succeeded=done)
    return done
