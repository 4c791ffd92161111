"""GET /v1/crm/openapi.json and GET /v1/crm/docs (a plain page listing every endpoint; no CDN needed)."""

from html import escape

from flask import Blueprint, current_app, jsonify

bp = Blueprint("docs", __name__, url_prefix="/v1/crm")


def _spec() -> dict:
    from crm_api.openapi import build_spec

    cache = current_app.extensions["crm"]
    if "openapi" not in cache:
        cache["openapi"] = build_spec(current_app)
    return cache["openapi"]


@bp.get("/openapi.json")
def openapi():
    return jsonify(_spec())


@bp.get("/docs")
def docs():
    spec = _spec()
    rows = "".join(
        f"<tr><td><code>{escape(m.upper())}</code></td><td><code>{escape(p)}</code></td>"
        f"<td>{escape(op['summary'])}</td><td>{escape(', '.join(sorted(op['responses'])))}</td></tr>"
        for p, ops in spec["paths"].items()
        for m, op in ops.items()
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>crm-jobs API</title>"
        f"<h1>crm-jobs API</h1><p>{escape(spec['info']['description'])}</p>"
        f"<p>Machine-readable: <a href=openapi.json>openapi.json</a> (OpenAPI 3.1).</p>"
        f"<table border=1 cellpadding=4><tr><th>method</th><th>path</th><th>does</th><th>answers</th></tr>"
        f"{rows}</table>"
    )
