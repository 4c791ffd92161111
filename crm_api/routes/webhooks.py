"""Webhook subscriptions for job events (docs/contract.md §10): create, list, delete, rotate, deliveries, retry."""

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, Field

from crm_api.auth import principal
from crm_api.openapi import api_doc
from crm_api.routes import crm_blueprint, db, json_body, paged, settings
from crm_api.schemas import Page
from crm_workers.services.webhooks import outbox, subscriptions

bp = crm_blueprint("webhooks")
page = Blueprint("webhooks_page", __name__)


class SubscriptionRequest(BaseModel):
    url: str = Field(description="http(s) URL; private and metadata addresses are refused")
    events: list[str] = Field(description="job.completed, job.failed, job.cancelled")
    types: list[str] | None = Field(default=None, description="job types; none: every type")


class Subscription(BaseModel):
    id: str
    url: str
    events: list[str]
    types: list[str]
    enabled: bool
    created_by: str | None
    created_at: str
    secret: str | None = Field(default=None, description="only when made or rotated")


class Delivery(BaseModel):
    id: str
    event: str
    event_id: str
    job_id: str
    status: str
    attempts: int
    last_status_code: int | None
    next_attempt_at: str | None


@bp.post("/webhooks")
@api_doc(
    "Subscribe a URL to job events (the secret is shown this once)",
    body=SubscriptionRequest,
    ok={"201": Subscription},
    errors=(403,),
)
def create():
    doc = subscriptions.create_subscription(
        db(), principal(), json_body(), allow_private=settings().webhook_allow_private
    )
    return jsonify(subscriptions.subscription_to_json(doc, with_secret=True)), 201


@bp.get("/webhooks")
@api_doc("The account's webhook subscriptions", errors=(403,))
def list_all():
    docs = subscriptions.list_subscriptions(db(), principal())
    return jsonify({"webhooks": [subscriptions.subscription_to_json(d) for d in docs]})


@bp.get("/webhooks/secret")
@api_doc("The secret that signs callback_url deliveries (owners)", errors=(403,))
def secret():
    return jsonify({"secret": subscriptions.callback_secret(db(), principal())})


@bp.delete("/webhooks/<webhook_id>")
@api_doc("Delete a subscription", ok={"204": None}, errors=(403, 404))
def delete(webhook_id):
    subscriptions.delete_subscription(db(), principal(), webhook_id)
    return "", 204


@bp.post("/webhooks/<webhook_id>/rotate")
@api_doc("A new secret for a subscription (shown this once)", ok={"200": Subscription}, errors=(403, 404))
def rotate(webhook_id):
    doc = subscriptions.rotate_secret(db(), principal(), webhook_id)
    return jsonify(subscriptions.subscription_to_json(doc, with_secret=True))


@bp.get("/webhooks/<webhook_id>/deliveries")
@api_doc("A subscription's deliveries, newest first", query=Page, errors=(403, 404))
def deliveries(webhook_id):
    return paged(
        "deliveries", lambda **p: outbox.list_deliveries(db(), principal(), webhook_id, **p), outbox.delivery_to_json
    )


@bp.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/retry")
@api_doc("Send a failed delivery again now", ok={"200": Delivery}, errors=(403, 404, 409))
def retry(webhook_id, delivery_id):
    return jsonify(outbox.delivery_to_json(outbox.retry_delivery(db(), principal(), webhook_id, delivery_id)))


@page.get("/dashboard/webhooks")
@api_doc(
    "The webhooks page (HTML): subscriptions, their delivery log, the retry button", media="text/html", public=True
)
def webhooks_page():
    from importlib.resources import files

    return Response(files("crm_api").joinpath("webhooks.html").read_text(), mimetype="text/html")
