"""Webhook rules: where an automation may POST, and how the body is signed. No I/O but name resolution.

The URL is read by the HTTP client's own parser (urllib3's `parse_url`) and must read the same with the
standard library's; backslashes, user info, control characters and odd ports are refused. The host is
resolved once here and the request connects to that very address (see `adapters/webhooks.py`), so a second
lookup cannot send it elsewhere (DNS rebinding). Unless WEBHOOK_ALLOW_PRIVATE is set, every address the host
resolves to must be global, looking inside IPv4-mapped, 6to4, Teredo and NAT64 addresses too.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

NAT64 = ipaddress.ip_network("64:ff9b::/96")
_FORBIDDEN_CHARS = set("\\ \t\r\n") | {chr(c) for c in range(0x20)} | {"\x7f"}


class WebhookRefused(ValueError):
    """Raised when a webhook URL is not allowed (its form, or a non-public address): retrying cannot help."""


class WebhookUnresolvable(Exception):
    """Raised when the webhook's host cannot be resolved now (may work later)."""


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str
    port: int
    path: str
    address: str | None = None  # the checked address the request must connect to

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_target(url: str) -> WebhookTarget:
    """The URL read strictly, as the HTTP client will read it; WebhookRefused for anything ambiguous."""
    if not isinstance(url, str) or not url or len(url) > 2048 or set(url) & _FORBIDDEN_CHARS:
        raise WebhookRefused(
            "webhook URL must be a plain http(s) URL without spaces, backslashes or control characters"
        )
    try:
        ours = parse_url(url)
        theirs = urlsplit(url)
        their_port = theirs.port
    except (LocationParseError, ValueError):
        raise WebhookRefused("webhook URL cannot be parsed (check the host and the port)") from None
    if ours.scheme not in ("http", "https") or not ours.host:
        raise WebhookRefused("webhook URL must be http(s)://host/…")
    if ours.auth or theirs.username is not None or "@" in (theirs.netloc or ""):
        raise WebhookRefused("webhook URL must not carry a user name or password")
    host = ours.host.strip("[]").lower()
    if (theirs.scheme, (theirs.hostname or "").lower(), their_port) != (ours.scheme, host, ours.port):
        raise WebhookRefused("webhook URL reads differently to different parsers; write it plainly")
    port = ours.port if ours.port is not None else (443 if ours.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise WebhookRefused("webhook URL has an invalid port")
    return WebhookTarget(ours.scheme, host, port, ours.request_uri or "/")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo:
        found.extend(ip.teredo)
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def check_address(address: str) -> None:
    """WebhookRefused unless the address (and any IPv4 address inside it) is globally routable."""
    ip = ipaddress.ip_address(address.split("%")[0])
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
    for candidate in [ip, *inner]:
        if not candidate.is_global or candidate.is_multicast:
            raise WebhookRefused(
                f"the host resolves to {ip}, a non-public address (set WEBHOOK_ALLOW_PRIVATE=1 to allow it)"
            )


#: `socket.getaddrinfo(host, port)`: entries whose fifth item starts with the address.
Resolver = Callable[[str, int], Iterable[tuple[Any, Any, Any, Any, tuple[Any, ...]]]]


def check_url(url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> WebhookTarget:
    """The target to connect to: the URL checked, its host resolved once and every address checked."""
    target = parse_target(url)
    try:
        addresses = [info[4][0] for info in resolve(target.host, target.port)]
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise WebhookUnresolvable(f"cannot resolve {target.host}: {exc}") from None
    if not addresses:
        raise WebhookUnresolvable(f"cannot resolve {target.host}")
    if not allow_private:
        for address in addresses:
            check_address(address)
    return replace(target, address=addresses[0].split("%")[0])
