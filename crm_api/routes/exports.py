"""POST /contacts/export, POST /deals/export (and ?dry_run=1); GET /files/<key> for local download links."""

from flask import Blueprint, abort, jsonify, request, send_file

from crm_api.auth import principal
from crm_api.openapi import Matched, api_doc
from crm_api.routes import (
    broker,
    crm_blueprint,
    db,
    dry_run,
    idempotency_key,
    idempotent,
    job_response,
    json_body,
    settings,
    storage,
)
from crm_api.schemas import Job
from crm_workers.adapters.storage import InvalidKey, LocalStorage, check_link
from crm_workers.services.exports.intake import ExportRequest, matched, request_export

bp = crm_blueprint("exports")
files = Blueprint("files", __name__)


def _export(entity: str):
    body = ExportRequest.model_validate(json_body())
    if dry_run():
        return jsonify({"matched": matched(db(), principal(), entity, body.filter)})
    return job_response(
        request_export(db(), broker(), principal(), entity, body, idempotency_key=idempotency_key()), 202
    )


@bp.post("/contacts/export")
@api_doc(
    "contacts.export (?dry_run=1 counts)",
    body=ExportRequest,
    ok={"202": Job, "200": Matched},
    errors=(404,),
    idempotent=True,
)
@idempotent
def export_contacts():
    return _export("contact")


@bp.post("/deals/export")
@api_doc(
    "deals.export (?dry_run=1 counts)",
    body=ExportRequest,
    ok={"202": Job, "200": Matched},
    errors=(404,),
    idempotent=True,
)
@idempotent
def export_deals():
    return _export("deal")


@files.get("/files/<path:key>")
@api_doc(
    "A local storage file through a signed, expiring link (no bearer token)",
    public=True,
    media="application/octet-stream",
    errors=(403, 404),
)
def download(key):
    """A local storage file, for whoever holds an unexpired link signed by this system (no bearer token)."""
    store = storage()
    if not isinstance(store, LocalStorage):
        abort(404)
    if not check_link(settings().jwt_secret, key, request.args.get("expires"), request.args.get("sig")):
        abort(403, "this download link is invalid or has expired")
    try:
        path = store.path(key)
    except InvalidKey:
        abort(404)
    if not path.is_file():
        abort(404)
    return send_file(path, as_attachment=True, download_name=path.name)
