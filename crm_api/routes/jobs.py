"""GET /jobs, GET /jobs/<id>, POST /jobs/<id>/cancel|retry|undo, GET /jobs/<id>/errors.

Listing, reading, cancelling and retrying also serve service tokens (any account's jobs)."""

from bson import ObjectId
from flask import Response, jsonify, request

from crm_api.auth import allows_service, caller, principal
from crm_api.openapi import api_doc
from crm_api.routes import (
    broker,
    conditional,
    crm_blueprint,
    db,
    idempotency_key,
    idempotent,
    job_json,
    job_response,
)
from crm_api.schemas import Job, JobListQuery, JobPage
from crm_workers.domain.principal import Principal
from crm_workers.services import job_submission as service
from crm_workers.services.imports.errors_file import error_rows_csv
from crm_workers.services.undo import request_undo

bp = crm_blueprint("jobs")


@bp.get("/jobs")
@allows_service
@api_doc(
    "Jobs, newest first: the caller's account (any account, or `account_id`, for a service token); by page "
    "or by cursor (`after`)",
    query=JobListQuery,
    ok={"200": JobPage, "304": None},
    etag=True,
)
def list_jobs():
    query = JobListQuery.model_validate(request.args.to_dict())
    account_id = ObjectId(query.account_id) if query.account_id else None
    docs, total = service.list_jobs(
        db(),
        caller(),
        account_id=account_id,
        status=query.status,
        job_type=query.type,
        page=query.page,
        per_page=query.per_page,
        after=query.after,
    )
    next_after = str(docs[-1]["_id"]) if len(docs) == query.per_page else None
    return conditional(
        jsonify(
            {
                "jobs": [job_json(d) for d in docs],
                "page": query.page,
                "per_page": query.per_page,
                "total": total,
                "next_after": next_after,
            }
        )
    )


@bp.get("/jobs/<job_id>")
@allows_service
@api_doc(
    "One job (send If-None-Match with its ETag to get 304 while it has not changed)",
    ok={"200": Job, "304": None},
    errors=(404,),
    etag=True,
)
def get_job(job_id):
    return conditional(job_response(service.find_job(db(), caller(), job_id))[0])


@bp.post("/jobs/<job_id>/cancel")
@allows_service
@api_doc("Cancel a queued or running job", ok={"200": Job}, errors=(404, 409))
def cancel_job(job_id):
    return job_response(service.cancel_job(db(), caller(), job_id))


@bp.post("/jobs/<job_id>/retry")
@allows_service
@api_doc("Retry a failed job", ok={"202": Job}, errors=(404, 409))
def retry_job(job_id):
    who = caller()
    key = idempotency_key() if isinstance(who, Principal) else None  # a service's retry takes no key
    job = service.retry_job(db(), broker(), who, job_id, idempotency_key=key)
    return job_response(job, 202)


@bp.post("/jobs/<job_id>/undo")
@api_doc(
    "Undo an import, a bulk delete or a structure delete (within 30 days of its end)",
    ok={"202": Job},
    errors=(404, 409),
    idempotent=True,
)
@idempotent
def undo_job(job_id):
    return job_response(request_undo(db(), broker(), principal(), job_id, idempotency_key=idempotency_key()), 202)


@bp.get("/jobs/<job_id>/errors")
@api_doc("The failed rows of an import as CSV, with an error column", media="text/csv", errors=(404,))
def job_errors(job_id):
    job, lines = error_rows_csv(db(), principal(), job_id)
    return Response(
        lines,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="job-{job["_id"]}-errors.csv"'},
    )
