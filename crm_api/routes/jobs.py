"""GET /jobs, GET /jobs/<id>, POST /jobs/<id>/cancel, POST /jobs/<id>/retry."""

from flask import Response, jsonify, request

from crm_api.auth import principal
from crm_api.routes import broker, crm_blueprint, db, idempotency_key, idempotent, job_response
from crm_api.schemas import JobListQuery
from crm_workers.jobs import job_to_json
from crm_workers.services import job_submission as service
from crm_workers.services.imports.errors_file import error_rows_csv
from crm_workers.services.undo import request_undo

bp = crm_blueprint("jobs")


@bp.get("/jobs")
def list_jobs():
    query = JobListQuery.model_validate(request.args.to_dict())
    docs, total = service.list_jobs(db(), principal(), status=query.status, job_type=query.type,
                                    page=query.page, per_page=query.per_page)
    return jsonify({"jobs": [job_to_json(d) for d in docs], "page": query.page,
                    "per_page": query.per_page, "total": total})


@bp.get("/jobs/<job_id>")
def get_job(job_id):
    return job_response(service.find_job(db(), principal(), job_id))


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id):
    return job_response(service.cancel_job(db(), principal(), job_id))


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id):
    job = service.retry_job(db(), broker(), principal(), job_id, idempotency_key=idempotency_key())
    return job_response(job, 202)


@bp.post("/jobs/<job_id>/undo")
@idempotent
def undo_job(job_id):
    return job_response(request_undo(db(), broker(), principal(), job_id, idempotency_key=idempotency_key()), 202)


@bp.get("/jobs/<job_id>/errors")
def job_errors(job_id):
    job, lines = error_rows_csv(db(), principal(), job_id)
    return Response(lines, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="job-{job["_id"]}-errors.csv"'})
