"""The OpenAPI 3.1 document, generated from the declarations that sit on the routes themselves.

A route declares itself with `@api_doc(...)` right under its `@bp.get/post/delete`:

    @bp.post("/contacts/import/preview")
    @api_doc("Preview an import", body=ImportRequest, ok={"200": Preview}, errors=(404, 415))
    def preview_contacts(): ...

Query parameters come typed from the `query` model, path parameters from the rule (`*_id` is a 24-hex id),
and the error answers are only those the route declares, plus what its declaration implies: 401 for an
authenticated route, 403 (service token) unless it `allows_service`, 400 with a body or a query model,
413 with a body, 503 when it starts a job (the broker may be down), 422 when it is `idempotent`.
A test makes sure every route is declared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel

from crm_workers.domain.job_types import JOB_KINDS

#: What each error status means here, and the codes it comes with (one code per situation).
ERRORS = {
    400: "Bad request (`invalid_request`): the field that is wrong is in error.details",
    401: "Missing, expired or badly signed bearer token (`unauthorized`)",
    403: "Not allowed (`forbidden`): a service token on an endpoint for users, or a non-owner where only owners "
    "may act",
    404: "Not found in the caller's account, or not visible to the caller (`not_found`)",
    409: "The record's state forbids it (`conflict`, or a more precise code such as `invalid_transition`)",
    413: "Too large (`too_large`)",
    415: "Unsupported media type (`unsupported_media_type`)",
    422: "Idempotency-Key reused with another request (`idempotency_key_reused`)",
    503: "The job queue is unavailable (`broker_unavailable`); the job was recorded as failed",
}
OBJECT_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    multipart: bool = False
    ok: dict[str, type[BaseModel] | None] = field(default_factory=dict)
    media: str = "application/json"
    errors: tuple[int, ...] = ()
    public: bool = False
    idempotent: bool = False
    etag: bool = False


def api_doc(
    summary: str,
    *,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    multipart: bool = False,
    ok: dict | None = None,
    media: str = "application/json",
    errors: tuple[int, ...] = (),
    public: bool = False,
    idempotent: bool = False,
    etag: bool = False,
):
    """Declare a route for the OpenAPI document (see the module's docstring)."""

    def declare(view):
        view.api_doc = ApiDoc(
            summary,
            query=query,
            body=body,
            multipart=multipart,
            ok=ok or {"200": None},
            media=media,
            errors=tuple(errors),
            public=public,
            idempotent=idempotent,
            etag=etag,
        )
        return view

    return declare


class ErrorBody(BaseModel):
    code: str
    message: str
    details: object | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Matched(BaseModel):
    matched: int


def _path(rule) -> tuple[str, list[dict]]:
    params = []

    def repl(match):
        converter, name = match.group(1), match.group(2)
        schema: dict[str, Any] = dict(OBJECT_ID) if name.endswith("_id") else {"type": "string"}
        if converter and converter.startswith("any("):
            schema = {"type": "string", "enum": [v.strip() for v in converter[4:-1].split(",")]}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return re.sub(r"<(?:([^:<>]+):)?([^<>]+)>", repl, rule.rule), params


def _schema(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query(model: type[BaseModel], components: dict) -> list[dict]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        # `X | None` is a union with null: a query string has no null, only absence.
        options = [p for p in prop.pop("anyOf", []) if p.get("type") != "null"]
        if options:
            prop = {**options[0], **prop} if len(options) == 1 else {"anyOf": options, **prop}
        if prop.get("default") is None:
            prop.pop("default", None)
        params.append(
            {"name": name, "in": "query", "required": name in required, "schema": prop, "description": description}
        )
    return params


def _operation(rule, view, method: str, components: dict) -> dict:
    doc: ApiDoc = getattr(view, "api_doc", None) or ApiDoc(rule.endpoint)
    path, params = _path(rule)
    op = {"operationId": rule.endpoint, "summary": doc.summary, "parameters": list(params), "responses": {}}
    if doc.query:
        op["parameters"] += _query(doc.query, components)
    if doc.idempotent:
        op["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
            }
        )
    if doc.etag:
        op["parameters"].append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "an ETag of an earlier answer",
            }
        )
    if doc.body:
        content = {"application/json": {"schema": _schema(doc.body, components)}}
        if doc.multipart:
            content["multipart/form-data"] = {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "options": {"type": "string", "description": "ImportOptions as JSON"},
                    },
                }
            }
        op["requestBody"] = {"required": True, "content": content}
    for status, model in doc.ok.items():
        answer: dict = {
            "description": {
                "200": "OK",
                "202": "Accepted: the job, to poll at Location",
                "304": "Not modified since the ETag given",
            }.get(status, "OK")
        }
        if status == "202":
            answer["headers"] = {"Location": {"schema": {"type": "string"}, "description": "/v1/crm/jobs/<id>"}}
        elif doc.etag and status == "200":
            answer["headers"] = {"ETag": {"schema": {"type": "string"}}}
        if status != "304":
            schema = (
                _schema(model, components)
                if model
                else ({"type": "object"} if doc.media == "application/json" else {"type": "string"})
            )
            answer["content"] = {doc.media: {"schema": schema}}
        op["responses"][status] = answer
    for error_status in sorted(_error_statuses(doc, view)):
        op["responses"][str(error_status)] = {
            "description": ERRORS[error_status],
            "content": {"application/json": {"schema": _schema(ErrorResponse, components)}},
        }
    if not doc.public:
        op["security"] = [{"bearer": []}]
    return op


def _error_statuses(doc: ApiDoc, view) -> set[int]:
    statuses = set(doc.errors)
    if not doc.public:
        statuses.add(401)
        if not getattr(view, "allows_service", False):
            statuses.add(403)
    if doc.body or doc.query:
        statuses.add(400)
    if doc.body:
        statuses.add(413)
    if "202" in doc.ok:
        statuses.add(503)
    if doc.idempotent:
        statuses.add(422)
    return statuses


def build_spec(app: Flask) -> dict:
    components: dict = {}
    paths: dict = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint.startswith("docs."):
            continue
        view = app.view_functions[rule.endpoint]
        path = _path(rule)[0]
        assert rule.methods is not None, "Flask gives every rule its methods"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, view, method, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "crm-jobs",
            "version": "1.0.0",
            "description": "The CRM's background-job API. Job types: " + ", ".join(sorted(JOB_KINDS)),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
