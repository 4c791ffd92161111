"""The pages' tests share one headless Chromium per test process: Debian's package, driven by Playwright."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Skips a page's test where Debian's chromium is missing (`.ci/run` installs it and fails rather than skip).
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
# How long a page may take to show what it will show: a deadline for a loaded 2-core machine (a refresh is
# four API calls to the live server beside the suite's workers), not a pacing; the waits end as soon as it shows.
PAGE_SECONDS = 60


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()
