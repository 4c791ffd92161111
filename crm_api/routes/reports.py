"""GET /reports/<kind> (a fresh stored result: 200; else 202 and a job), POST /reports/<kind> (always a job)."""

from typing import cast

from flask import Response, jsonify, request

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, idempotency_key, idempotent, job_response, json_body, settings
from crm_api.schemas import Job
from crm_workers.jobs import JobRecord
from crm_workers.services.reports.csv_out import report_csv
from crm_workers.services.reports.intake import request_report
from crm_workers.services.reports.params import ReportQuery

bp = crm_blueprint("reports")
KIND = "<any(new_contacts,pipeline,automations):kind>"


def _answer(kind: str, query: ReportQuery, *, refresh: bool):
    found, status = request_report(
        db(),
        broker(),
        settings(),
        principal(),
        kind,
        query,
        refresh=refresh,
        idempotency_key=idempotency_key() if request.method == "POST" else None,
    )
    if status == 200:
        if request.args.get("format") == "csv":
            name = f"{kind}-{found['params']['from']}-{found['params']['to']}.csv"
            return Response(
                report_csv(cast(dict, found)),  # a 200 is the stored answer
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-cache"},
            )
        response = jsonify(found)
        response.headers["Cache-Control"] = "private, no-cache"
        return response
    return job_response(cast(JobRecord, found), 202)


@bp.get(f"/reports/{KIND}")
@api_doc(
    "A report: the stored result (200) while younger than REPORT_MAX_AGE_SECONDS, else a job computing it "
    "(202; `?refresh=1` always starts one); `?format=csv` answers a stored result as CSV",
    query=ReportQuery,
    ok={"200": None, "202": Job},
)
def get_report(kind):
    query = ReportQuery.model_validate(request.args.to_dict())
    return _answer(kind, query, refresh=query.refresh in ("1", "true"))


@bp.post(f"/reports/{KIND}")
@api_doc(
    "Compute a report now (the parameters as JSON): a job whose result is the report",
    body=ReportQuery,
    ok={"202": Job},
    idempotent=True,
)
@idempotent
def post_report(kind):
    query = ReportQuery.model_validate(json_body())
    return _answer(kind, query, refresh=True)
