"""contacts.bulk_update, deals.bulk_update and contacts.link, in batches through the `_id` index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS, FIELDS, STAGES, id_batches, oid, update_by_ids
from crm_workers.errors import PermanentJobError
from crm_workers.jobs import now
from crm_workers.services.imports.lookups import Lookups
from crm_workers.services.mass.link_notices import notify_linked
from crm_workers.services.selection import job_selection_query
from crm_workers.services.stage_events import deals_entered_stage


def _count_progress(db, collection, query, progress):
    if progress.total is None:
        progress.total = db[collection].count_documents(query)
        progress.save_state()


def update_records(
    db: Database, account_id, job: dict, entity: str, query: dict, change: dict, progress, *, batch_size: int
) -> int:
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
            before = {
                d["_id"]: d.get("stage_id")
                for d in db[collection].find({"_id": {"$in": ids}, "account_id": account_id}, {"stage_id": 1})
            }
            moves = [(i, s, stage["_id"]) for i, s in before.items() if s != stage["_id"]]
            moved = [m[0] for m in moves]
            deals_entered_stage(db, account_id, moves, uid=job.get("created_by"), job_id=job["_id"])
            if moved:
                update_by_ids(
                    db[collection],
                    account_id,
                    moved,
                    {"$set": {"stage_id": stage["_id"], "pipeline_id": stage["pipeline_id"], "stage_entered_at": ts}},
                )
        if "status" in sets:
            mark_closed(db[collection], account_id, ids, sets["status"], ts)
        batch_update = {**update, "$set": {**sets, "updated_at": ts}}
        update_by_ids(db[collection], account_id, ids, batch_update)
        if change.get("tags_remove"):  # $pull and $addToSet on one field cannot share an update
            update_by_ids(db[collection], account_id, ids, {"$pull": {"tags": {"$in": change["tags_remove"]}}})
        done += len(ids)
        progress.set(processed=done, succeeded=done)
    return done


def mark_closed(collection, account_id, ids: list, status: str, ts: datetime) -> None:
    """Deals whose status changes get `closed_at`: now when won or lost, None when reopened. A deal already
    in that status keeps its date (setting `won` twice does not move a win into this week's report). Before
    the status itself is written, so a crash between the two redoes this on the retry."""
    update_by_ids(
        collection,
        account_id,
        ids,
        [
            {
                "$set": {
                    "closed_at": {
                        "$cond": [{"$eq": ["$status", status]}, "$closed_at", ts if status in ("won", "lost") else None]
                    }
                }
            }
        ],
    )


def link_contacts(
    db: Database,
    account_id,
    query: dict,
    *,
    business_id: ObjectId | None,
    deal_id: ObjectId | None,
    progress,
    batch_size: int,
) -> int:
    """Persons of the selection get the business; or the deal gets the selected contacts. No duplicates."""
    if business_id is not None:
        query = {**query, "type": "person"}
    _count_progress(db, CONTACTS, query, progress)
    done = progress.processed
    for ids in id_batches(db[CONTACTS], query, batch_size):
        progress.checkpoint()
        ts = now()
        if business_id is not None:
            update_by_ids(
                db[CONTACTS], account_id, ids, {"$addToSet": {"businesses": business_id}, "$set": {"updated_at": ts}}
            )
        else:
            db[DEALS].update_one(
                {"_id": deal_id, "account_id": account_id},
                {"$addToSet": {"contacts": {"$each": ids}}, "$set": {"updated_at": ts}},
            )
        done += len(ids)
        progress.set(processed=done, succeeded=done)
    return done


def change_from_params(db: Database, job: dict, entity: str) -> dict:
    """The job's params made ready to write: ids, dates and paths."""
    p, account_id = job["params"], job["account_id"]
    fields = {f["key"]: f for f in db[FIELDS].find({"account_id": account_id, "entity": entity})}
    sets: dict[str, Any]
    sets, stage = {}, None
    for key, value in (p.get("set") or {}).items():
        if key == "owner":
            sets["owner"] = ObjectId(value)
        elif key == "stage_id":
            found = db[STAGES].find_one({"_id": oid(value), "account_id": account_id})
            if found is None:  # checked at the request, deleted since (or with its pipeline): before any write
                raise PermanentJobError(
                    f"stage {value} not found: deleted since the update was requested, or not of this account",
                    code="stage_not_found",
                )
            stage = {"_id": found["_id"], "pipeline_id": found["pipeline_id"]}
        elif key == "expected_close_date":
            sets[key] = datetime.fromisoformat(value)
        elif key.startswith("custom."):
            typed = (
                datetime.fromisoformat(value)
                if fields.get(key[7:], {}).get("field_type") == "date" and value
                else value
            )
            sets[f"custom_fields.{key[7:]}"] = typed
        else:
            sets[key] = value
    tags_add = Lookups(db, account_id, job["_id"], now).tag_ids(
        [t for t in p.get("tags_add") or [] if not (ObjectId.is_valid(t) and len(t) == 24)]
    )
    tags_add += [ObjectId(t) for t in p.get("tags_add") or [] if ObjectId.is_valid(t) and len(t) == 24]
    return {
        "set": sets,
        "stage": stage,
        "tags_add": tags_add,
        "tags_remove": [ObjectId(t) for t in p.get("tags_remove") or []],
    }


def run_bulk_update(db: Database, job: dict, progress, *, entity: str, batch_size: int) -> dict:
    """contacts.bulk_update / deals.bulk_update: the job's selection gets the job's change."""
    query = job_selection_query(db, job, entity)
    updated = update_records(
        db, job["account_id"], job, entity, query, change_from_params(db, job, entity), progress, batch_size=batch_size
    )
    return {"updated": updated}


def run_link(db: Database, job: dict, progress, *, batch_size: int, settings=None) -> dict:
    """contacts.link: the job's selection linked to its business or deal; the caller and its owner told."""
    p = job["params"]
    linked = link_contacts(
        db,
        job["account_id"],
        job_selection_query(db, job, "contact"),
        business_id=oid(p.get("business_id")),
        deal_id=oid(p.get("deal_id")),
        progress=progress,
        batch_size=batch_size,
    )
    if settings is not None:
        notify_linked(db, settings, job, linked)
    return {"linked": linked}
