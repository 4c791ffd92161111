"""fields.delete, stages.delete, pipelines.delete: the side effects of removing a piece of the CRM's structure."""

from __future__ import annotations

from pymongo.database import Database

from crm_workers.adapters.mongo import (
    AUTOMATIONS,
    CASE_INSENSITIVE,
    CONTACTS,
    DEALS,
    FIELDS,
    PIPELINES,
    STAGES,
    id_batches,
    oid,
    update_by_ids,
)
from crm_workers.errors import PermanentJobError
from crm_workers.jobs import now
from crm_workers.services.mass import trash
from crm_workers.services.mass.bulk_delete import delete_records
from crm_workers.services.stage_events import deals_entered_stage


def delete_field(db: Database, account_id, field: dict, progress, *, batch_size: int) -> dict:
    """Unset the field in every record of its entity, then delete its definition."""
    collection = CONTACTS if field["entity"] == "contact" else DEALS
    path = f"custom_fields.{field['key']}"
    query = {"account_id": account_id, path: {"$exists": True}}
    if progress.total is None:
        progress.total = db[collection].count_documents(query)
    done = progress.processed
    for ids in id_batches(db[collection], query, batch_size):
        progress.checkpoint()
        done += update_by_ids(db[collection], account_id, ids, {"$unset": {path: ""},
                                                                "$set": {"updated_at": now()}}).modified_count
        progress.set(processed=done, succeeded=done)
    db[FIELDS].delete_one({"_id": field["_id"], "account_id": account_id})
    return {"field": field["key"], "entity": field["entity"], "records_updated": done}


def delete_stage(db: Database, account_id, stage: dict, move_to: dict | None, job: dict, progress, *,
                 batch_size: int) -> dict:
    """Move the stage's deals to `move_to` (they enter it), then delete the stage."""
    query = {"account_id": account_id, "stage_id": stage["_id"]}
    if progress.total is None:
        progress.total = db[DEALS].count_documents(query)
    done = progress.processed
    if move_to is not None:
        for ids in id_batches(db[DEALS], query, batch_size):
            progress.checkpoint()
            ts = now()
            update_by_ids(db[DEALS], account_id, ids, {"$set": {"stage_id": move_to["_id"], "stage_entered_at": ts,
                                                              "updated_at": ts}})
            deals_entered_stage(db, account_id, [(i, stage["_id"], move_to["_id"]) for i in ids],
                                uid=job.get("created_by"), job_id=job["_id"])
            done += len(ids)
            progress.set(processed=done, succeeded=done)
    if db[DEALS].count_documents(query):
        raise PermanentJobError("deals entered the stage meanwhile and there is no stage to move them to",
                                code="stage_not_empty")
    db[STAGES].delete_one({"_id": stage["_id"], "account_id": account_id})
    return {"stage_id": str(stage["_id"]), "moved_to": str(move_to["_id"]) if move_to else None, "deals_moved": done}


def delete_pipeline(db: Database, storage, account_id, pipeline: dict, job: dict, progress, *,
                    batch_size: int) -> dict:
    """The pipeline's deals (with their cascades), automations, stages and the pipeline itself, into the trash."""
    pid = pipeline["_id"]
    deals = delete_records(db, storage, account_id, job["_id"], "deal", {"account_id": account_id,
                                                                        "pipeline_id": pid},
                           progress, batch_size=batch_size)
    removed = {}
    for collection in (AUTOMATIONS, STAGES):
        docs = list(db[collection].find({"account_id": account_id, "pipeline_id": pid}))
        trash.keep_docs(db, account_id, job["_id"], collection, docs)
        db[collection].delete_many({"account_id": account_id, "pipeline_id": pid})
        removed[collection] = len(docs)
    trash.keep_docs(db, account_id, job["_id"], PIPELINES, [pipeline])
    db[PIPELINES].delete_one({"_id": pid, "account_id": account_id})
    return {"pipeline_id": str(pid), "deals_deleted": deals, "stages_deleted": removed[STAGES],
            "automations_deleted": removed[AUTOMATIONS]}


def run_field_delete(db: Database, job: dict, progress, *, batch_size: int) -> dict:
    field = db[FIELDS].find_one({"_id": oid(job["params"]["field_id"]), "account_id": job["account_id"]})
    if field is None:  # deleted by this job's previous attempt
        return {"field": job["params"]["key"], "records_updated": progress.processed}
    return delete_field(db, job["account_id"], field, progress, batch_size=batch_size)


def run_stage_delete(db: Database, job: dict, progress, *, batch_size: int) -> dict:
    account_id, p = job["account_id"], job["params"]
    stage = db[STAGES].find_one({"_id": oid(p["stage_id"]), "account_id": account_id})
    if stage is None:
        return {"stage_id": p["stage_id"], "deals_moved": progress.processed}
    move_to = p.get("move_to") and db[STAGES].find_one({"_id": oid(p["move_to"]), "account_id": account_id})
    return delete_stage(db, account_id, stage, move_to or None, job, progress, batch_size=batch_size)


def run_pipeline_delete(db: Database, storage, job: dict, progress, *, batch_size: int) -> dict:
    account_id = job["account_id"]
    pipeline = db[PIPELINES].find_one({"_id": oid(job["params"]["pipeline_id"]), "account_id": account_id},
                                      collation=CASE_INSENSITIVE)
    if pipeline is None:
        return {"pipeline_id": job["params"]["pipeline_id"], "deals_deleted": progress.processed}
    return delete_pipeline(db, storage, account_id, pipeline, job, progress, batch_size=batch_size)
