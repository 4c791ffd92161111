"""POST /contacts/import, POST /deals/import: store the file, record the job, answer 202.
POST /…/import/preview: the same body, answered at once with the proposed mapping and the first rows parsed.
GET /dashboard/import: the page that previews, maps and starts an import."""

from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, idempotency_key, idempotent, job_response, settings, storage
from crm_api.schemas import ImportRequest, Job, UploadOptions
from crm_workers.errors import BadRequest, UnsupportedType
from crm_workers.services.imports import intake as service
from crm_workers.services.imports import preview as previews

bp = crm_blueprint("imports")
page = Blueprint("import_page", __name__)


class ImportPreview(BaseModel):
    """What an import would do with a file, from its first rows (docs/contract.md §6)."""

    entity: str
    file: dict  # format, encoding, delimiter, header_row, name
    headers: list[str]
    mapping: dict[str, str]
    matches: dict[str, dict]  # header -> {target, reason, source?, note?}
    ignored_columns: list[str]
    targets: list[str]
    rows: list[dict]  # {row, values, record, errors}
    warnings: list[str]
    source: dict  # {type: "storage", key, file_name}: start the import from it


def _import(entity: str):
    common: dict[str, Any] = {"idempotency_key": idempotency_key()}
    deps = (db(), broker(), storage(), settings(), principal(), entity)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise BadRequest("a multipart import needs a `file` part", details={"field": "file"})
        opts = UploadOptions.model_validate({"options": service.parse_options_field(request.form.get("options"))})
        job = service.import_upload(
            *deps,
            stream=upload.stream,
            file_name=upload.filename or "",
            options=opts.options.model_dump(exclude_none=True),
            **common,
        )
    else:
        body = ImportRequest.model_validate(request.get_json(silent=False) if request.is_json else _not_json())
        options = body.options.model_dump(exclude_none=True)
        if body.source.type == "records":
            job = service.import_records(
                *deps, records=body.source.records, file_name=body.source.file_name, options=options, **common
            )
        else:
            job = service.import_stored(
                *deps, key=body.source.key, file_name=body.source.file_name, options=options, **common
            )
    return job_response(job, 202)


def _not_json():
    raise UnsupportedType(
        "send multipart/form-data (file + options) or application/json", details={"field": "Content-Type"}
    )


@bp.post("/contacts/import")
@api_doc(
    "contacts.import (multipart file + options, or JSON)",
    body=ImportRequest,
    multipart=True,
    ok={"202": Job},
    errors=(404, 415),
    idempotent=True,
)
@idempotent
def import_contacts():
    return _import("contact")


@bp.post("/deals/import")
@api_doc(
    "deals.import (multipart file + options, or JSON)",
    body=ImportRequest,
    multipart=True,
    ok={"202": Job},
    errors=(404, 415),
    idempotent=True,
)
@idempotent
def import_deals():
    return _import("deal")


def _preview(entity: str):
    deps = (db(), storage(), settings(), principal(), entity)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise BadRequest("a multipart preview needs a `file` part", details={"field": "file"})
        opts = UploadOptions.model_validate({"options": service.parse_options_field(request.form.get("options"))})
        return jsonify(
            previews.preview_upload(
                *deps,
                stream=upload.stream,
                file_name=upload.filename or "",
                options=opts.options.model_dump(exclude_none=True),
            )
        )
    body = ImportRequest.model_validate(request.get_json(silent=False) if request.is_json else _not_json())
    options = body.options.model_dump(exclude_none=True)
    if body.source.type == "records":
        return jsonify(
            previews.preview_records(
                *deps, records=body.source.records, file_name=body.source.file_name, options=options
            )
        )
    return jsonify(
        previews.preview_stored(*deps, key=body.source.key, file_name=body.source.file_name, options=options)
    )


@bp.post("/contacts/import/preview")
@api_doc(
    "What a contacts import would do: mapping, first rows, warnings; writes no record",
    body=ImportRequest,
    multipart=True,
    ok={"200": ImportPreview},
    errors=(404, 415, 422),
)
def preview_contacts_import():
    return _preview("contact")


@bp.post("/deals/import/preview")
@api_doc(
    "What a deals import would do: mapping, first rows, warnings; writes no record",
    body=ImportRequest,
    multipart=True,
    ok={"200": ImportPreview},
    errors=(404, 415, 422),
)
def preview_deals_import():
    return _preview("deal")


@page.get("/dashboard/import")
@api_doc("The import page (HTML): preview, map, start, follow", media="text/html", public=True)
def import_page():
    from importlib.resources import files

    return Response(files("crm_api").joinpath("import.html").read_text(), mimetype="text/html")
