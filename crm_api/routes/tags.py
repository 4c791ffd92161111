"""DELETE /tags/<id> → a tags.delete job."""

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, idempotency_key, idempotent, job_response
from crm_api.schemas import Job
from crm_workers.services.mass.intake import request_tag_delete

bp = crm_blueprint("tags")


@bp.delete("/tags/<tag_id>")
@api_doc(
    "tags.delete: remove the tag from every record, then delete it", ok={"202": Job}, errors=(404, 409), idempotent=True
)
@idempotent
def delete_tag(tag_id):
    return job_response(request_tag_delete(db(), broker(), principal(), tag_id, idempotency_key=idempotency_key()), 202)
