"""Bearer-token authentication for /v1/crm (docs/contract.md §3): user tokens of one account, and service tokens."""

from __future__ import annotations

from flask import current_app, g, request

from crm_workers.domain.principal import Principal, Service, TokenError, read_token
from crm_workers.errors import CRMError, Unauthorized
from crm_workers.services.visibility import with_visibility


class NotAllowed(CRMError):
    """Raised when a service token calls an endpoint for users (CRM data), or a user one for services."""

    kind = code = "forbidden"


def allows_service(view):
    """Mark a route a service token may call (job reads, cancel, retry, queue depths); every other route
    answers a service token 403."""
    view.allows_service = True
    return view


def authenticate() -> None:
    """before_request hook: puts the caller in `g.principal` or answers 401 (403 for a service token on a route
    that is not for services)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token", details={"header": "Authorization"})
    try:
        g.principal = read_token(current_app.config["CRM_SETTINGS"].jwt_secret, token.strip())
    except TokenError as exc:
        raise Unauthorized(str(exc), details={"header": "Authorization"}) from None
    if isinstance(g.principal, Service):
        view = current_app.view_functions.get(request.endpoint) if request.endpoint is not None else None
        if not getattr(view, "allows_service", False):
            raise NotAllowed(
                "a service token may only list, read, cancel and retry jobs and read queue depths",
                details={"header": "Authorization"},
            )


def caller() -> Principal | Service:
    """The caller of a route marked `allows_service`: a user of one account, or a service."""
    return g.principal if isinstance(g.principal, Service) else principal()


def principal() -> Principal:
    """The caller, with their account's visibility looked up once per request."""
    if g.principal.owner_only is None:
        g.principal = with_visibility(current_app.extensions["crm"]["db"], g.principal)
    return g.principal
