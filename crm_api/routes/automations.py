"""POST /automations/trigger, GET /automations/<id>/logs, POST /automations/logs/<id>/retry."""

from pydantic import BaseModel, ConfigDict, Field

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, idempotency_key, idempotent, job_response, json_body, paged
from crm_api.schemas import Job, Page
from crm_workers.services.automations import run as service

bp = crm_blueprint("automations")


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deal_id: str = Field(min_length=1)
    stage_id: str = Field(min_length=1)
    event_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")


@bp.post("/automations/trigger")
@api_doc(
    "automations.run for a deal that entered a stage",
    body=TriggerRequest,
    ok={"202": Job},
    errors=(404,),
    idempotent=True,
)
@idempotent
def trigger():
    body = TriggerRequest.model_validate(json_body())
    job = service.trigger(
        db(), broker(), principal(), body.deal_id, body.stage_id, body.event_id, idempotency_key=idempotency_key()
    )
    return job_response(job, 202)


@bp.get("/automations/<automation_id>/logs")
@api_doc("An automation's runs, newest first", query=Page, errors=(404,))
def logs(automation_id):
    return paged("logs", lambda **p: service.list_logs(db(), principal(), automation_id, **p), service.log_to_json)


@bp.post("/automations/logs/<log_id>/retry")
@api_doc("Retry a failed automation run from its failed action", ok={"202": Job}, errors=(404, 409))
def retry(log_id):
    return job_response(service.retry_log(db(), broker(), principal(), log_id), 202)
