"""The thin HTTP face: authenticate, validate, record a job, enqueue it, answer 202."""

from __future__ import annotations

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from crm_api.errors import register_error_handlers
from crm_workers.errors import TooLarge
from crm_workers.settings import Settings

#: The policy every page is served with: the dashboards' JS and CSS are static files of the package
#: (crm_api/static), wired with data attributes and listeners.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class _JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a body nested past the parser's recursion (~100k `[`) a 400 like any other body that
    is not JSON, not a RecursionError (a 500)."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON body nests too deeply") from None


def create_app(settings: Settings | None = None, *, db=None, broker=None) -> Flask:
    """The Flask app; servers come from `settings` unless a test passes its own `db` and `broker`."""
    from crm_workers.adapters.broker import make_broker
    from crm_workers.adapters.mongo import connect, ensure_indexes
    from crm_workers.adapters.storage import storage_from_settings

    settings = settings or Settings.from_env()
    settings.require("JWT_SECRET", "MONGODB_URI", "REDIS_URL")
    if db is None:
        db = connect(settings.mongodb_uri, settings.mongodb_db)
        ensure_indexes(db)
    broker = broker or make_broker(settings, for_worker=False)

    app = Flask(__name__)
    app.json = _JSONProvider(app)
    app.config["CRM_SETTINGS"] = settings
    # The body may carry a little more than the file (the other form fields); the file itself is checked too.
    app.config["MAX_CONTENT_LENGTH"] = settings.import_max_bytes + 1024 * 1024
    app.extensions["crm"] = {"db": db, "broker": broker, "storage": storage_from_settings(settings)}
    register_error_handlers(app)

    @app.before_request
    def limit_json_bodies():
        # A JSON body (records imports) is parsed in memory: over IMPORT_MAX_JSON_BYTES it is refused with a
        # 413 before parsing, from Content-Length or, without one, as soon as reading passes the limit.
        if request.mimetype == "multipart/form-data":
            return
        limit = settings.import_max_json_bytes
        if request.content_length is not None:
            request.max_content_length = limit
            return
        # Streamed without a length: werkzeug stops quietly at the maximum, so read one byte more to tell.
        request.max_content_length = limit + 1
        if len(request.get_data(cache=True)) > limit:
            raise TooLarge(f"the request body is over {limit} bytes", details={"limit": limit})

    @app.after_request
    def security_headers(response):
        # Every answer, pages and JSON alike: scripts and styles only from the package's own files (no inline
        # script, handler or style), nothing framed, no plugins, no <base> rewriting (docs/contract.md §3).
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    from crm_api.routes import (
        automations,
        dashboard,
        docs,
        exports,
        health,
        imports,
        jobs,
        mass,
        metrics,
        reminders,
        reports,
        tags,
        warehouse,
        webhooks,
    )

    for module in (
        health,
        metrics,
        docs,
        jobs,
        tags,
        imports,
        exports,
        reminders,
        mass,
        automations,
        webhooks,
        reports,
        dashboard,
        warehouse,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(dashboard.page)
    app.register_blueprint(imports.page)
    app.register_blueprint(webhooks.page)
    app.register_blueprint(exports.files)
    return app
