"""Webhook rules: where an automation may POST, and how the body is signed. No I/O but name resolution."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from urllib.parse import urlparse


class WebhookRefused(ValueError):
    """Raised when a webhook URL is not allowed (scheme, or a loopback/private/link-local address)."""


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str, *, allow_private: bool, resolve=socket.getaddrinfo) -> None:
    """Refuse non-HTTP URLs and, unless allowed, hosts that resolve to loopback, private or link-local space."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WebhookRefused("webhook URL must be http(s)://host/…")
    if allow_private:
        return
    try:
        addresses = {info[4][0] for info in resolve(parsed.hostname, parsed.port or 80)}
    except socket.gaierror:
        raise WebhookRefused(f"cannot resolve {parsed.hostname}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or \
                ip.is_unspecified:
            raise WebhookRefused(f"{parsed.hostname} resolves to {ip}, a non-public address "
                                 "(set WEBHOOK_ALLOW_PRIVATE=1 to allow it)")
