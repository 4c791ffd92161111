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
    delete_by_ids,
    oid,
    update_by_ids,
)
from crm_workers.errors import PermanentJobError
from crm_workers.jobs import now
from crm_workers.services.mass import trash
from crm_workers.services.mass.bulk_delete import delete_records
from crm_workers.services.mass.views import remove_field_from_views
from crm_workers.services.stage_events import deals_entered_stage


def delete_field(db: Database, account_id, field: dict, progress, *, batch_size: int) -> dict:
    """Unset the field in every record of its entity (each value kept in the trash), then delete its definition."""
    job_id = progress.job_id
    trash.refuse_if_undone(db, job_id)
    collection = CONTACTS if field["entity"] == "contact" else DEALS
    path = f"custom_fields.{field['key']}"
    query = {"account_id": account_id, path: {"$exists": True}}
    if progress.total is None:
        progress.total = db[collection].count_documents(query)
    done = progress.processed
    # What is done no longer matches: the query itself is the resume point.
    for records in trash.record_batches(db[collection], query, {"custom_fields": 1, "updated_at": 1}, batch_size):
        progress.checkpoint()
        ts = now()
        trash.keep_unsets(
            db, account_id, job_id, collection, path, records, updated_at=ts, requires=(FIELDS, field["_id"])
        )
        done += update_by_ids(
            db[collection], account_id, [r["_id"] for r in records], {"$unset": {path: ""}, "$set": {"updated_at": ts}}
        ).modified_count
        progress.set(processed=done, succeeded=done)
    views = remove_field_from_views(db, account_id, job_id, field)
    trash.keep_docs(db, account_id, job_id, FIELDS, [field])
    db[FIELDS].delete_one({"_id": field["_id"], "account_id": account_id})
    return {"field": field["key"], "entity": field["entity"], "records_updated": done, "views_updated": views}


def _disable_moves_to(db: Database, account_id, job_id, stage_id) -> None:
    """Other automations whose `move_to_stage` points at the stage: disabled, with the reason, and kept for undo."""
    pointing = list(
        db[AUTOMATIONS].find(
            {
                "account_id": account_id,
                "enabled": True,
                "actions": {
                    "$elemMatch": {"type": "move_to_stage", "params.stage_id": {"$in": [stage_id, str(stage_id)]}}
                },
            }
        )
    )
    if not pointing:
        return
    ts = now()
    after = {
        "enabled": False,
        "disabled_reason": {
            "code": "stage_deleted",
            "stage_id": str(stage_id),
            "job_id": str(job_id),
            "message": f"its move_to_stage action points at stage {stage_id}, deleted by job {job_id}",
        },
        "updated_at": ts,
    }
    trash.keep_sets(db, account_id, job_id, AUTOMATIONS, "automation_disabled", pointing, after)
    update_by_ids(db[AUTOMATIONS], account_id, [a["_id"] for a in pointing], {"$set": after})


def delete_stage(
    db: Database, account_id, stage: dict, move_to: dict | None, job: dict, progress, *, batch_size: int
) -> dict:
    """Move the stage's deals to `move_to` (they enter it), then delete the stage and its automations; other
    automations moving deals to it are disabled. All of it kept in the trash for undo."""
    job_id = job["_id"]
    trash.refuse_if_undone(db, job_id)
    query = {"account_id": account_id, "stage_id": stage["_id"]}
    if progress.total is None:
        progress.total = db[DEALS].count_documents(query)
    done = progress.processed
    if move_to is not None:
        for deals in trash.record_batches(
            db[DEALS], query, {"stage_id": 1, "stage_entered_at": 1, "updated_at": 1}, batch_size
        ):
            progress.checkpoint()
            ts = now()
            moved = {"stage_id": move_to["_id"], "stage_entered_at": ts, "updated_at": ts}
            trash.keep_sets(db, account_id, job_id, DEALS, "deal_moved", deals, moved, requires=(STAGES, stage["_id"]))
            ids = [d["_id"] for d in deals]
            deals_entered_stage(
                db,
                account_id,
                [(i, stage["_id"], move_to["_id"]) for i in ids],
                uid=job.get("created_by"),
                job_id=job_id,
            )  # before the move: see stage_events
            update_by_ids(db[DEALS], account_id, ids, {"$set": moved})
            done += len(ids)
            progress.set(processed=done, succeeded=done)
    if db[DEALS].count_documents(query):
        raise PermanentJobError(
            "deals entered the stage meanwhile and there is no stage to move them to", code="stage_not_empty"
        )
    automations = list(db[AUTOMATIONS].find({"account_id": account_id, "stage_id": stage["_id"]}))
    trash.keep_docs(db, account_id, job_id, AUTOMATIONS, automations, requires=(STAGES, stage["_id"]))
    delete_by_ids(db[AUTOMATIONS], account_id, [a["_id"] for a in automations])
    _disable_moves_to(db, account_id, job_id, stage["_id"])
    trash.keep_docs(db, account_id, job_id, STAGES, [stage])
    db[STAGES].delete_one({"_id": stage["_id"], "account_id": account_id})
    # From the trash, not from this run: a rerun after a crash reports what the first run did too.
    return {
        "stage_id": str(stage["_id"]),
        "moved_to": str(move_to["_id"]) if move_to else None,
        "deals_moved": done,
        "automations_deleted": len(trash.kept_ids(db, account_id, job_id, AUTOMATIONS, "doc")),
        "automations_disabled": trash.kept_ids(db, account_id, job_id, AUTOMATIONS, "set"),
    }


def delete_pipeline(db: Database, storage, account_id, pipeline: dict, job: dict, progress, *, batch_size: int) -> dict:
    """The pipeline's deals (with their cascades), automations, stages and the pipeline itself, into the trash."""
    pid = pipeline["_id"]
    trash.refuse_if_undone(db, job["_id"])
    deals = delete_records(
        db,
        storage,
        account_id,
        job["_id"],
        "deal",
        {"account_id": account_id, "pipeline_id": pid},
        progress,
        batch_size=batch_size,
    )
    removed = {}
    for collection in (AUTOMATIONS, STAGES):
        docs = list(db[collection].find({"account_id": account_id, "pipeline_id": pid}))
        trash.keep_docs(db, account_id, job["_id"], collection, docs)
        db[collection].delete_many({"account_id": account_id, "pipeline_id": pid})
        removed[collection] = len(docs)
    trash.keep_docs(db, account_id, job["_id"], PIPELINES, [pipeline])
    db[PIPELINES].delete_one({"_id": pid, "account_id": account_id})
    return {
        "pipeline_id": str(pid),
        "deals_deleted": deals,
        "stages_deleted": removed[STAGES],
        "automations_deleted": removed[AUTOMATIONS],
        "attachments_skipped": trash.files_skipped(db, account_id, job["_id"]),
    }


def run_field_delete(db: Database, job: dict, progress, *, batch_size: int) -> dict:
    field = db[FIELDS].find_one({"_id": oid(job["params"]["field_id"]), "account_id": job["account_id"]})
    if field is None:  # deleted by this job's previous attempt
        return {"field": job["params"]["key"], "records_updated": progress.processed}
    return delete_field(db, job["account_id"], field, progress, batch_size=batch_size)


def run_stage_delete(db: Database, job: dict, progress, *, batch_size: int) -> dict:
    account_id, p = job["account_id"], job["params"]
    stage = db[STAGES].find_one({"_id": oid(p["stage_id"]), "account_id": account_id})
    if stage is None:  # deleted by this job's previous attempt
        return {"stage_id": p["stage_id"], "deals_moved": progress.processed}
    move_to = p.get("move_to") and db[STAGES].find_one({"_id": oid(p["move_to"]), "account_id": account_id})
    return delete_stage(db, account_id, stage, move_to or None, job, progress, batch_size=batch_size)


def run_pipeline_delete(db: Database, storage, job: dict, progress, *, batch_size: int) -> dict:
    account_id = job["account_id"]
    pipeline = db[PIPELINES].find_one(
        {"_id": oid(job["params"]["pipeline_id"]), "account_id": account_id}, collation=CASE_INSENSITIVE
    )
    if pipeline is None:
        return {"pipeline_id": job["params"]["pipeline_id"], "deals_deleted": progress.processed}
    return delete_pipeline(db, storage, account_id, pipeline, job, progress, batch_size=batch_size)
