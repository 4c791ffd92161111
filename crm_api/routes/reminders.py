"""GET /reminders/due (the dashboard's badge), POST /reminders/<id>/complete."""

from flask import jsonify, request

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import crm_blueprint, db
from crm_api.schemas import DueQuery
from crm_workers.services.reminders.actions import complete_reminder, due_badge

bp = crm_blueprint("reminders")


@bp.get("/reminders/due")
@api_doc("The caller's reminder badge (?window=7d)", query=DueQuery)
def due():
    return jsonify(due_badge(db(), principal(), request.args.get("window")))


@bp.post("/reminders/<reminder_id>/complete")
@api_doc("Complete a reminder (a recurring one gets its next occurrence)", errors=(404,))
def complete(reminder_id):
    return jsonify(complete_reminder(db(), principal(), reminder_id))
