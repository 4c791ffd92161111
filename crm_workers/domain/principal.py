"""Who is calling: the claims of a bearer token, and how tokens are made and read (docs/contract.md §3)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from bson import ObjectId

#: Tokens made by `crm-jobs token` last this long (seconds).
LOCAL_TOKEN_TTL_SECONDS = 7 * 24 * 3600


class TokenError(Exception):
    """Raised when a bearer token is missing, expired, badly signed or lacks a claim."""


@dataclass(frozen=True)
class Principal:
    """Who acts: a user of an account, with the account's visibility once it is known.

    `owner_only` is the account's `crm_visibility == "owner_only"` as it was when the request came in: a
    job keeps it in its params, so the worker applies the rights the caller had when asking.
    """

    account_id: ObjectId
    uid: ObjectId | None
    is_owner: bool
    owner_only: bool | None = None

    @property
    def restricted_uid(self) -> ObjectId | None:
        """The uid the caller is limited to (their own records), or None when they see the whole account."""
        if self.owner_only is None:
            raise ValueError("the account's visibility is not known yet (see services.visibility)")
        return self.uid if self.owner_only and not self.is_owner else None

    def as_params(self) -> dict[str, Any]:
        """What a job keeps of its caller."""
        return {"uid": str(self.uid) if self.uid else None, "is_owner": self.is_owner, "owner_only": self.owner_only}

    @classmethod
    def from_params(cls, account_id: ObjectId, params: dict[str, Any] | None) -> Principal:
        """The caller a job acts for; a job the system started itself acts for the whole account."""
        if not params or not params.get("uid"):
            return cls(account_id, None, True, False)
        return cls(account_id, ObjectId(params["uid"]), params.get("is_owner") is True, params.get("owner_only"))


@dataclass(frozen=True)
class Service:
    """An operator or the queue manager (a service token): lists, reads, cancels and retries any account's jobs
    and sees global queue depths; it holds no account and cannot create CRM jobs."""

    name: str


SERVICE_ROLE = "service"


def issue_service_token(secret: str, *, name: str = "operator", ttl_seconds: int = LOCAL_TOKEN_TTL_SECONDS) -> str:
    now = int(time.time())
    claims = {"role": SERVICE_ROLE, "sub": name, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


def issue_token(
    secret: str, *, account_id: str, uid: str, is_owner: bool = False, ttl_seconds: int = LOCAL_TOKEN_TTL_SECONDS
) -> str:
    now = int(time.time())
    claims = {"account_id": account_id, "uid": uid, "is_owner": is_owner, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(secret: str, token: str) -> Principal | Service:
    """The caller a bearer token names: a user of one account, or a service (claim `role: "service"`)."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    if claims.get("role") == SERVICE_ROLE:
        if "account_id" in claims:  # one or the other, never a token that could be read as both
            raise TokenError("a service token carries no account_id")
        return Service(str(claims.get("sub") or SERVICE_ROLE))
    for claim in ("account_id", "uid"):
        value = claims.get(claim)
        if not (isinstance(value, str) and ObjectId.is_valid(value) and len(value) == 24):
            raise TokenError(f"claim {claim} must be a 24-hex id")
    if claims["account_id"] == "0" * 24:  # the system's own jobs' account (domain/job_types.py): no user's
        raise TokenError("claim account_id names no account")
    # Only the JSON value true makes an owner: "false", 1 or "yes" would be truthy in Python.
    return Principal(ObjectId(claims["account_id"]), ObjectId(claims["uid"]), claims.get("is_owner") is True)
