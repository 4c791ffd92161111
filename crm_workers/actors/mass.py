"""Mass operations and structure deletes: decode the job, call one service."""

from __future__ import annotations

from crm_workers.adapters.storage import storage_from_settings
from crm_workers.services.mass import bulk_delete, bulk_update, structure_delete, trash


def _bulk_delete(entity):
    def run(runtime, job, progress):
        return bulk_delete.run_bulk_delete(
            runtime.db,
            storage_from_settings(runtime.settings),
            job,
            progress,
            entity=entity,
            batch_size=runtime.settings.bulk_batch_size,
        )

    return run


def _bulk_update(entity):
    def run(runtime, job, progress):
        return bulk_update.run_bulk_update(
            runtime.db, job, progress, entity=entity, batch_size=runtime.settings.bulk_batch_size
        )

    return run


def run_link(runtime, job, progress):
    return bulk_update.run_link(
        runtime.db, job, progress, batch_size=runtime.settings.bulk_batch_size, settings=runtime.settings
    )


def run_field_delete(runtime, job, progress):
    return structure_delete.run_field_delete(runtime.db, job, progress, batch_size=runtime.settings.bulk_batch_size)


def run_stage_delete(runtime, job, progress):
    return structure_delete.run_stage_delete(runtime.db, job, progress, batch_size=runtime.settings.bulk_batch_size)


def run_pipeline_delete(runtime, job, progress):
    return structure_delete.run_pipeline_delete(
        runtime.db, storage_from_settings(runtime.settings), job, progress, batch_size=runtime.settings.bulk_batch_size
    )


def run_trash_restore(runtime, job, progress):
    return trash.run_restore(runtime.db, storage_from_settings(runtime.settings), job, progress)


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
