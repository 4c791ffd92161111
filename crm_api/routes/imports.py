"""POST /contacts/import, POST /deals/import: store the file, record the job, answer 202."""

from flask import request

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import broker, crm_blueprint, db, idempotency_key, idempotent, job_response, settings, storage
from crm_api.schemas import ImportRequest, Job, UploadOptions
from crm_workers.errors import BadRequest, UnsupportedType
from crm_workers.services.imports import intake as service

bp = crm_blueprint("imports")


def _import(entity: str):
    common = {"idempotency_key": idempotency_key()}
    deps = (db(), broker(), storage(), settings(), principal(), entity)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise BadRequest("a multipart import needs a `file` part", details={"field": "file"})
        opts = UploadOptions.model_validate({"options": service.parse_options_field(request.form.get("options"))})
        job = service.import_upload(*deps, stream=upload.stream, file_name=upload.filename or "",
                                    options=opts.options.model_dump(exclude_none=True), **common)
    else:
        body = ImportRequest.model_validate(request.get_json(silent=False) if request.is_json else _not_json())
        options = body.options.model_dump(exclude_none=True)
        if body.source.type == "records":
            job = service.import_records(*deps, records=body.source.records, file_name=body.source.file_name,
                                         options=options, **common)
        else:
            job = service.import_stored(*deps, key=body.source.key, file_name=body.source.file_name,
                                        options=options, **common)
    return job_response(job, 202)


def _not_json():
    raise UnsupportedType("send multipart/form-data (file + options) or application/json",
                          details={"field": "Content-Type"})


@bp.post("/contacts/import")
@api_doc("contacts.import (multipart file + options, or JSON)", body=ImportRequest, multipart=True,
         ok={"202": Job}, errors=(404, 415), idempotent=True)
@idempotent
def import_contacts():
    return _import("contact")


@bp.post("/deals/import")
@api_doc("deals.import (multipart file + options, or JSON)", body=ImportRequest, multipart=True,
         ok={"202": Job}, errors=(404, 415), idempotent=True)
@idempotent
def import_deals():
    return _import("deal")
