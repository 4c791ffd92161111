"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from bson import ObjectId

from tests.conftest import wait_for
from tests.e2e.imports.helpers import upload

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def test_the_dashboard_shows_a_running_import_moving_and_cancels_it_and_hides_other_accounts(
        live_api, browser, client, db, worker, tenant, other_tenant, tmp_path):
    theirs = db["crm.tags"].insert_one({"account_id": other_tenant.account_id, "name": "Theirs"}).inserted_id
    other_job = client.delete(f"/v1/crm/tags/{theirs}", headers=other_tenant.headers()).get_json()["id"]
    rows = "".join(f"d{i}@example.com,D{i}\n" for i in range(20000))  # long enough to still run when cancelled
    job_id = upload(client, tenant, ("email,first_name\n" + rows).encode()).get_json()["id"]
    page = browser.new_page()
    page.goto(f"{live_api}/dashboard")
    page.fill("[data-testid=token]", tenant.headers()["Authorization"].removeprefix("Bearer "))
    page.click("[data-testid=signin] button")

    cell = page.locator(f"[data-testid=progress-{job_id}]")
    cell.wait_for(timeout=15_000)
    seen = set()
    wait_for(lambda: seen.add(cell.inner_text()) or len({s.split('%')[0] for s in seen}) >= 2, timeout=30,
             interval=0.3, what="the progress shown to move")
    page.click(f"a[href='#{job_id}']")
    page.locator("[data-testid=cancel]").click()
    wait_for(lambda: "cancelled" in page.locator("[data-testid=job-status]").inner_text(), timeout=30,
             interval=0.3, what="the page to show the job cancelled")

    assert db["queues"].find_one({"_id": ObjectId(job_id)})["status"] == "cancelled"
    assert page.locator(f"[data-job='{other_job}']").count() == 0
    assert page.locator("[data-testid=queues] tr").count() >= 5
    page.fill("[data-testid=token]", "")
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)  # UPDATE_SCREENSHOT=1 refreshes the README's picture
    assert shot.stat().st_size > 10_000
    page.close()
