"""DELETE /tags/<id> → a tags.delete job."""

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, idempotency_key, idempotent, job_response
from crm_api.schemas import Job
from crm_workers.services.job_submission import submit_job
from crm_workers.services.mass.tags import tag_for_delete

bp = crm_blueprint("tags")


@bp.delete("/tags/<tag_id>")
@api_doc("tags.delete: remove the tag from every record, then delete it", ok={"202": Job},
         errors=(404, 409), idempotent=True)
@idempotent
def delete_tag(tag_id):
    tag = tag_for_delete(db(), principal().account_id, tag_id)
    job = submit_job(db(), broker(), principal(), "tags.delete", {"tag_id": tag_id, "name": tag["name"]},
                     idempotency_key=idempotency_key())
    return job_response(job, 202)
