"""tags.delete"""

from __future__ import annotations

from crm_workers.adapters.mongo import oid
from crm_workers.services.mass.tags import delete_tag


def run_tags_delete(runtime, job, progress):
    return delete_tag(
        runtime.db,
        job["account_id"],
        oid(job["params"]["tag_id"]),
        progress,
        batch_size=runtime.settings.bulk_batch_size,
    )


HANDLERS = {"tags.delete": run_tags_delete}
