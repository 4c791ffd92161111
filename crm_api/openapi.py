"""The OpenAPI 3.1 document, generated: paths from the app's URL map, schemas from the pydantic models.

Each endpoint's summary, body and answers are listed in ENDPOINTS (by Flask endpoint name); a route
missing from it still appears, and a test makes sure none is missing.
"""

from __future__ import annotations

import re

from flask import Flask
from pydantic import BaseModel

from crm_api.routes.automations import Page, TriggerRequest
from crm_api.routes.imports import ImportPreview
from crm_api.schemas import ImportRequest, Job, JobListQuery, JobPage
from crm_workers.domain.job_types import JOB_KINDS
from crm_workers.services.exports.intake import ExportRequest
from crm_workers.services.mass.intake import BulkUpdateRequest, LinkRequest, MassRequest

ERRORS = {"400": "Bad request: the field that is wrong is in error.details",
          "401": "Missing, expired or badly signed bearer token",
          "404": "Not found in the caller's account", "409": "The record's state forbids it",
          "413": "File too large", "415": "Unsupported media type", "422": "Unprocessable", "429": "Too many requests"}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: object | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Matched(BaseModel):
    matched: int


J = {"202": Job}
ENDPOINTS: dict[str, dict] = {
    "health.healthz": {"summary": "Both servers answer", "public": True},
    "metrics.metrics": {"summary": "Prometheus metrics", "public": True, "text": True},
    "jobs.list_jobs": {"summary": "The account's jobs, newest first", "query": JobListQuery, "ok": {"200": JobPage}},
    "jobs.get_job": {"summary": "One job", "ok": {"200": Job}},
    "jobs.cancel_job": {"summary": "Cancel a queued or running job", "ok": {"200": Job}},
    "jobs.retry_job": {"summary": "Retry a failed job", "ok": J},
    "jobs.undo_job": {"summary": "Undo a completed import, bulk delete or pipeline delete (30 days)", "ok": J},
    "jobs.job_errors": {"summary": "The failed rows of an import as CSV, with an error column", "text": True},
    "tags.delete_tag": {"summary": "tags.delete: remove the tag from every record, then delete it", "ok": J},
    "imports.import_contacts": {"summary": "contacts.import (multipart file + options, or JSON)",
                                "body": ImportRequest, "multipart": True, "ok": J},
    "imports.import_deals": {"summary": "deals.import (multipart file + options, or JSON)", "body": ImportRequest,
                             "multipart": True, "ok": J},
    "imports.preview_contacts_import": {"summary": "What a contacts import would do: mapping, first rows, warnings",
                                        "body": ImportRequest, "multipart": True, "ok": {"200": ImportPreview}},
    "imports.preview_deals_import": {"summary": "What a deals import would do: mapping, first rows, warnings",
                                     "body": ImportRequest, "multipart": True, "ok": {"200": ImportPreview}},
    "import_page.import_page": {"summary": "The import page (HTML): preview, map, start, follow",
                                "public": True, "text": True},
    "exports.export_contacts": {"summary": "contacts.export (?dry_run=1 counts)", "body": ExportRequest,
                                "ok": {**J, "200": Matched}},
    "exports.export_deals": {"summary": "deals.export (?dry_run=1 counts)", "body": ExportRequest,
                             "ok": {**J, "200": Matched}},
    "files.download": {"summary": "A local storage file through a signed, expiring link", "public": True,
                       "text": True},
    "mass.bulk_delete": {"summary": "contacts.bulk_delete / deals.bulk_delete (?dry_run=1 counts)",
                         "body": MassRequest, "ok": {**J, "200": Matched}},
    "mass.bulk_update": {"summary": "contacts.bulk_update / deals.bulk_update (?dry_run=1 counts)",
                         "body": BulkUpdateRequest, "ok": {**J, "200": Matched}},
    "mass.link": {"summary": "contacts.link to a business or a deal (?dry_run=1 counts)", "body": LinkRequest,
                  "ok": {**J, "200": Matched}},
    "mass.delete_field": {"summary": "fields.delete", "ok": J},
    "mass.delete_stage": {"summary": "stages.delete (?move_to=<stage>)", "ok": J},
    "mass.delete_pipeline": {"summary": "pipelines.delete (restorable)", "ok": J},
    "reminders.due": {"summary": "The caller's reminder badge (?window=7d)"},
    "reminders.complete": {"summary": "Complete a reminder (a recurring one gets its next occurrence)"},
    "automations.trigger": {"summary": "automations.run for a deal that entered a stage", "body": TriggerRequest,
                            "ok": J},
    "automations.logs": {"summary": "An automation's runs, newest first", "query": Page},
    "automations.retry": {"summary": "Retry a failed automation run from its failed action", "ok": J},
    "dashboard.dashboard": {"summary": "The job dashboard (HTML; signs in with a bearer token)", "public": True,
                            "text": True},
    "dashboard_data.queues": {"summary": "Messages waiting per queue"},
    "dashboard_data.automation_runs": {"summary": "The account's most recent automation runs"},
    "dashboard_data.throughput": {"summary": "The account's jobs finished per minute over the last hour"},
}


def _path(rule) -> tuple[str, list[dict]]:
    params = []

    def repl(match):
        converter, name = match.group(1), match.group(2)
        schema = {"type": "string"}
        if converter and converter.startswith("any("):
            schema["enum"] = [v.strip() for v in converter[4:-1].split(",")]
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return re.sub(r"<(?:([^:<>]+):)?([^<>]+)>", repl, rule.rule), params


def _schema(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_spec(app: Flask) -> dict:
    components: dict = {}
    paths: dict = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint.startswith("docs."):
            continue
        meta = ENDPOINTS.get(rule.endpoint, {"summary": rule.endpoint})
        path, params = _path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            op = {"operationId": rule.endpoint, "summary": meta["summary"], "parameters": list(params),
                  "responses": {}}
            if meta.get("query"):
                for name, field in meta["query"].model_fields.items():
                    op["parameters"].append({"name": name, "in": "query", "required": False,
                                             "schema": {"type": "string"}, "description": field.description or ""})
            if rule.rule.startswith("/v1/crm") and method == "POST":
                op["parameters"].append({"name": "Idempotency-Key", "in": "header", "required": False,
                                         "schema": {"type": "string", "maxLength": 200}})
            if meta.get("body"):
                content = {"application/json": {"schema": _schema(meta["body"], components)}}
                if meta.get("multipart"):
                    content["multipart/form-data"] = {"schema": {"type": "object", "required": ["file"], "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "options": {"type": "string", "description": "ImportOptions as JSON"}}}}
                op["requestBody"] = {"required": True, "content": content}
            for status, model in (meta.get("ok") or {"200": None}).items():
                content = {"application/json": {"schema": _schema(model, components)}} if model else \
                    ({"text/plain": {"schema": {"type": "string"}}} if meta.get("text") else
                     {"application/json": {"schema": {"type": "object"}}})
                op["responses"][status] = {"description": "OK" if status == "200" else "Accepted", "content": content}
            for status, text in ERRORS.items():
                if meta.get("public") and status == "401":
                    continue
                op["responses"][status] = {"description": text, "content": {
                    "application/json": {"schema": _schema(ErrorResponse, components)}}}
            if not meta.get("public"):
                op["security"] = [{"bearer": []}]
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "crm-jobs", "version": "1.0.0",
                 "description": "The CRM's background-job API. Job types: " + ", ".join(sorted(JOB_KINDS))},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
