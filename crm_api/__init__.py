"""The thin HTTP face: authenticate, validate, record a job, enqueue it, answer 202."""

from __future__ import annotations

from flask import Flask

from crm_api.errors import register_error_handlers
from crm_workers.settings import Settings


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
    app.config["CRM_SETTINGS"] = settings
    # The body may carry a little more than the file (the other form fields); the file itself is checked too.
    app.config["MAX_CONTENT_LENGTH"] = settings.import_max_bytes + 1024 * 1024
    app.extensions["crm"] = {"db": db, "broker": broker, "storage": storage_from_settings(settings)}
    register_error_handlers(app)

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
        tags,
    )

    for module in (health, metrics, docs, jobs, tags, imports, exports, reminders, mass, automations, dashboard):
        app.register_blueprint(module.bp)
    app.register_blueprint(dashboard.page)
    app.register_blueprint(imports.page)
    app.register_blueprint(exports.files)
    return app
