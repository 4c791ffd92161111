"""Fixtures of the end-to-end tests beside the session's servers (tests/conftest.py)."""

from tests.e2e.browser import browser  # noqa: F401 (a fixture: one Chromium per test process)
