"""Sending a webhook to the address that was checked, never to a second DNS answer.

urllib3 connects to `target.address` while the request carries the real `Host` header and, for HTTPS,
the real server name for SNI and certificate checks.
"""

from __future__ import annotations

from typing import Any

import urllib3

from crm_workers.domain.webhooks import WebhookTarget


class BadHeader(ValueError):
    """Raised when a header value would not be one header (CR, LF or another control character in it)."""


def _check_headers(headers: dict[str, Any]) -> None:
    # An id with CR LF in it would end the header and start another (header injection): refused, never sent.
    for name, value in headers.items():
        text = str(value)
        if not all(" " <= ch <= "~" for ch in text) or not all(" " < ch <= "~" for ch in str(name)):
            raise BadHeader(f"the {name!r} header has a character that may not be in a header")


class WebhookUnreachable(Exception):
    """Raised when the webhook's server could not be reached or did not answer in time."""


def post(target: WebhookTarget, body: bytes, headers: dict[str, Any], *, timeout: float) -> int:
    """POST `body` to the checked target; the HTTP status it answered (redirects are not followed)."""
    _check_headers(headers)
    limit = urllib3.Timeout(connect=timeout, read=timeout)
    # A checked target always has its address; urllib3 refuses an empty host ("No host specified") as it does None.
    address = target.address or ""
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            timeout=limit,
            retries=False,
            maxsize=1,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=limit, retries=False, maxsize=1)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            preload_content=True,
            assert_same_host=False,
        )
        return response.status
    except urllib3.exceptions.HTTPError as exc:
        raise WebhookUnreachable(f"webhook unreachable: {type(exc).__name__}") from None
    finally:
        pool.close()
