"""Bearer-token authentication for /v1/crm (CONTRACT §3)."""

from __future__ import annotations

from flask import current_app, g, request

from crm_workers.domain.principal import Principal, TokenError, read_token
from crm_workers.errors import Unauthorized
from crm_workers.services.visibility import with_visibility


def authenticate() -> None:
    """before_request hook: puts the caller's Principal in `g.principal` or answers 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token", details={"header": "Authorization"})
    try:
        g.principal = read_token(current_app.config["CRM_SETTINGS"].jwt_secret, token.strip())
    except TokenError as exc:
        raise Unauthorized(str(exc), details={"header": "Authorization"}) from None


def principal() -> Principal:
    """The caller, with their account's visibility looked up once per request."""
    if g.principal.owner_only is None:
        g.principal = with_visibility(current_app.extensions["crm"]["db"], g.principal)
    return g.principal
