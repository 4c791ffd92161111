"""Mass operations (bulk delete, bulk update, link; ?dry_run=1 counts) and structure deletes."""

from flask import jsonify, request

from crm_api.auth import principal
from crm_api.openapi import Matched, api_doc
from crm_api.routes import broker, crm_blueprint, db, dry_run, idempotency_key, idempotent, job_response, json_body
from crm_api.schemas import Job, StageDeleteQuery
from crm_workers.services.mass import intake as service

bp = crm_blueprint("mass")


def _mass(entity: str, model, submit):
    body = model.model_validate(json_body())
    if dry_run():
        return jsonify({"matched": service.matched(db(), principal(), entity, body)})
    return job_response(submit(body), 202)


def _key():
    return {"idempotency_key": idempotency_key()}


@bp.post("/<any(contacts, deals):kind>/bulk-delete")
@api_doc(
    "contacts.bulk_delete / deals.bulk_delete (?dry_run=1 counts)",
    body=service.MassRequest,
    ok={"202": Job, "200": Matched},
    errors=(404,),
    idempotent=True,
)
@idempotent
def bulk_delete(kind):
    entity = kind[:-1]
    return _mass(
        entity,
        service.MassRequest,
        lambda body: service.request_delete(db(), broker(), principal(), entity, body, **_key()),
    )


@bp.post("/<any(contacts, deals):kind>/bulk-update")
@api_doc(
    "contacts.bulk_update / deals.bulk_update (?dry_run=1 counts)",
    body=service.BulkUpdateRequest,
    ok={"202": Job, "200": Matched},
    errors=(404, 409),
    idempotent=True,
)
@idempotent
def bulk_update(kind):
    entity = kind[:-1]
    return _mass(
        entity,
        service.BulkUpdateRequest,
        lambda body: service.request_update(db(), broker(), principal(), entity, body, **_key()),
    )


@bp.post("/contacts/link")
@api_doc(
    "contacts.link to a business or a deal (?dry_run=1 counts)",
    body=service.LinkRequest,
    ok={"202": Job, "200": Matched},
    errors=(404,),
    idempotent=True,
)
@idempotent
def link():
    return _mass(
        "contact", service.LinkRequest, lambda body: service.request_link(db(), broker(), principal(), body, **_key())
    )


@bp.delete("/fields/<field_id>")
@api_doc("fields.delete: unset the field everywhere, then delete it", ok={"202": Job}, errors=(404,), idempotent=True)
@idempotent
def delete_field(field_id):
    return job_response(service.request_field_delete(db(), broker(), principal(), field_id, **_key()), 202)


@bp.delete("/stages/<stage_id>")
@api_doc(
    "stages.delete (?move_to=<stage> for its deals)",
    query=StageDeleteQuery,
    ok={"202": Job},
    errors=(404, 409),
    idempotent=True,
)
@idempotent
def delete_stage(stage_id):
    job = service.request_stage_delete(db(), broker(), principal(), stage_id, request.args.get("move_to"), **_key())
    return job_response(job, 202)


@bp.delete("/pipelines/<pipeline_id>")
@api_doc("pipelines.delete (restorable)", ok={"202": Job}, errors=(404,), idempotent=True)
@idempotent
def delete_pipeline(pipeline_id):
    return job_response(service.request_pipeline_delete(db(), broker(), principal(), pipeline_id, **_key()), 202)
