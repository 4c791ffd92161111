"""Watching a page for Content-Security-Policy violations in Chromium: the page reports each one as a
`securitypolicyviolation` event (caught by a script the browser injects before the page's own, which the policy
does not govern) and as a console message; a test asserts the list is empty after it has used the page."""

from __future__ import annotations

#: The policy the pages are served with (crm_api.CONTENT_SECURITY_POLICY): what a test expects in the header.
REQUIRED = ("default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'")

_LISTEN = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`));"""


def watch_csp(page) -> list[str]:
    """Start recording the page's CSP violations (call before `goto`); returns the console's share of them."""
    console: list[str] = []
    page.add_init_script(_LISTEN)
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    return console


def violations(page, console: list[str]) -> list[str]:
    """Every violation seen so far: the current document's events and the console's messages."""
    return list(page.evaluate("window.__cspViolations || []")) + console


def assert_policy(response) -> None:
    """The page's answer carries the strict policy (every directive the issue asks for)."""
    policy = response.headers.get("content-security-policy", "")
    assert all(part in policy for part in REQUIRED), policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
