"""Mass operations and structure deletes: decode the job, call one service."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId

from crm_workers.adapters.mongo import CASE_INSENSITIVE, FIELDS, PIPELINES, STAGES, oid
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.jobs import mark_undone, now
from crm_workers.services.imports.lookups import Lookups
from crm_workers.services.mass import trash
from crm_workers.services.mass.bulk_delete import delete_records
from crm_workers.services.mass.bulk_update import link_contacts, update_records
from crm_workers.services.mass.structure_delete import delete_field, delete_pipeline, delete_stage
from crm_workers.services.selection import job_selection_query


def _bulk_delete(entity):
    def run(runtime, job, progress):
        query = job_selection_query(runtime.db, job, entity)
        deleted = delete_records(runtime.db, storage_from_settings(runtime.settings), job["account_id"], job["_id"],
                                 entity, query, progress, batch_size=runtime.settings.bulk_batch_size)
        return {"deleted": deleted}
    return run


def _change(db, job, entity) -> dict:
    """The job's params made ready to write: ids, dates and paths."""
    p, account_id = job["params"], job["account_id"]
    fields = {f["key"]: f for f in db[FIELDS].find({"account_id": account_id, "entity": entity})}
    sets, stage = {}, None
    for key, value in (p.get("set") or {}).items():
        if key == "owner":
            sets["owner"] = ObjectId(value)
        elif key == "stage_id":
            found = db[STAGES].find_one({"_id": ObjectId(value), "account_id": account_id})
            stage = {"_id": found["_id"], "pipeline_id": found["pipeline_id"]}
        elif key == "expected_close_date":
            sets[key] = datetime.fromisoformat(value)
        elif key.startswith("custom."):
            typed = datetime.fromisoformat(value) if fields.get(key[7:], {}).get("field_type") == "date" and value \
                else value
            sets[f"custom_fields.{key[7:]}"] = typed
        else:
            sets[key] = value
    tags_add = Lookups(db, account_id, job["_id"], now).tag_ids(
        [t for t in p.get("tags_add") or [] if not (ObjectId.is_valid(t) and len(t) == 24)])
    tags_add += [ObjectId(t) for t in p.get("tags_add") or [] if ObjectId.is_valid(t) and len(t) == 24]
    return {"set": sets, "stage": stage, "tags_add": tags_add,
            "tags_remove": [ObjectId(t) for t in p.get("tags_remove") or []]}


def _bulk_update(entity):
    def run(runtime, job, progress):
        query = job_selection_query(runtime.db, job, entity)
        updated = update_records(runtime.db, job["account_id"], job, entity, query, _change(runtime.db, job, entity),
                                 progress, batch_size=runtime.settings.bulk_batch_size)
        return {"updated": updated}
    return run


def run_link(runtime, job, progress):
    p = job["params"]
    linked = link_contacts(runtime.db, job["account_id"], job_selection_query(runtime.db, job, "contact"),
                           business_id=oid(p.get("business_id")), deal_id=oid(p.get("deal_id")), progress=progress,
                           batch_size=runtime.settings.bulk_batch_size)
    return {"linked": linked}


def run_field_delete(runtime, job, progress):
    field = runtime.db[FIELDS].find_one({"_id": oid(job["params"]["field_id"]), "account_id": job["account_id"]})
    if field is None:  # deleted by this job's previous attempt
        return {"field": job["params"]["key"], "records_updated": progress.processed}
    return delete_field(runtime.db, job["account_id"], field, progress, batch_size=runtime.settings.bulk_batch_size)


def run_stage_delete(runtime, job, progress):
    db, account_id, p = runtime.db, job["account_id"], job["params"]
    stage = db[STAGES].find_one({"_id": oid(p["stage_id"]), "account_id": account_id})
    if stage is None:
        return {"stage_id": p["stage_id"], "deals_moved": progress.processed}
    move_to = p.get("move_to") and db[STAGES].find_one({"_id": oid(p["move_to"]), "account_id": account_id})
    return delete_stage(db, account_id, stage, move_to or None, job, progress,
                        batch_size=runtime.settings.bulk_batch_size)


def run_pipeline_delete(runtime, job, progress):
    db, account_id = runtime.db, job["account_id"]
    pipeline = db[PIPELINES].find_one({"_id": oid(job["params"]["pipeline_id"]), "account_id": account_id},
                                      collation=CASE_INSENSITIVE)
    if pipeline is None:
        return {"pipeline_id": job["params"]["pipeline_id"], "deals_deleted": progress.processed}
    return delete_pipeline(db, storage_from_settings(runtime.settings), account_id, pipeline, job, progress,
                           batch_size=runtime.settings.bulk_batch_size)


def run_trash_restore(runtime, job, progress):
    target = oid(job["params"]["job_id"])
    restored = trash.restore(runtime.db, storage_from_settings(runtime.settings), job["account_id"], target, progress)
    mark_undone(runtime.db, job["account_id"], target)
    return {"job_id": str(target), **restored}


HANDLERS = {
    "contacts.bulk_delete": _bulk_delete("contact"),
    "deals.bulk_delete": _bulk_delete("deal"),
    "contacts.bulk_update": _bulk_update("contact"),
    "deals.bulk_update": _bulk_update("deal"),
    "contacts.link": run_link,
    "fields.delete": run_field_delete,
    "stages.delete": run_stage_delete,
    "pipelines.delete": run_pipeline_delete,
    "trash.restore": run_trash_restore,
}
