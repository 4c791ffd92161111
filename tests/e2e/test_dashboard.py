"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from bson import ObjectId

from tests.conftest import wait_for, wait_for_job
from tests.e2e.browser import PAGE_SECONDS, needs_chromium
from tests.e2e.csp import assert_policy, violations, watch_csp
from tests.e2e.imports.helpers import upload

pytestmark = needs_chromium
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def test_the_dashboard_shows_a_running_import_moving_and_cancels_it_and_hides_other_accounts(
    live_api, browser, client, db, worker, tenant, other_tenant, tmp_path, hold
):
    theirs = db["crm.tags"].insert_one({"account_id": other_tenant.account_id, "name": "Theirs"}).inserted_id
    other_job = client.delete(f"/v1/crm/tags/{theirs}", headers=other_tenant.headers()).get_json()["id"]
    rows = "".join(f"d{i}@example.com,D{i}\n" for i in range(1000))
    # Held at 20% then at 60%: the page shows both, and the job is still running when the page cancels it.
    first, second = hold(tenant.account_id, after_processed=200), hold(tenant.account_id, after_processed=600)
    job_id = upload(client, tenant, ("email,first_name\n" + rows).encode()).get_json()["id"]
    page = browser.new_page()
    csp = watch_csp(page)
    questions = []
    page.on("dialog", lambda dialog: questions.append(dialog.message) or dialog.accept())
    assert_policy(page.goto(f"{live_api}/dashboard"))
    page.fill("[data-testid=token]", tenant.headers()["Authorization"].removeprefix("Bearer "))
    page.click("[data-testid=signin] button")

    cell = page.locator(f"[data-testid=progress-{job_id}]")
    cell.wait_for(timeout=PAGE_SECONDS * 1000)
    first.reached()
    wait_for(
        lambda: "20.0% 200/1000" in cell.inner_text(), timeout=PAGE_SECONDS, interval=0.2, what="the page to show 20%"
    )
    first.release()
    second.reached()
    wait_for(
        lambda: "60.0% 600/1000" in cell.inner_text(), timeout=PAGE_SECONDS, interval=0.2, what="the page to show 60%"
    )
    page.click(f"a[href='#{job_id}']")
    page.locator("[data-testid=cancel]").click()
    wait_for(
        lambda: db["queues"].find_one({"_id": ObjectId(job_id)}).get("cancel_requested"),
        timeout=PAGE_SECONDS,
        what="the page's cancel to reach the job",
    )
    second.release_for_the_next_checkpoint_to_write()
    wait_for(
        lambda: "cancelled" in page.locator("[data-testid=job-status]").inner_text(),
        timeout=PAGE_SECONDS,
        interval=0.3,
        what="the page to show the job cancelled",
    )

    job = db["queues"].find_one({"_id": ObjectId(job_id)})
    assert job["status"] == "cancelled" and job["progress"]["processed"] == 600
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id}) == 600
    assert questions and questions[0].startswith("Cancel this job?")  # asked before cancelling
    assert page.locator(f"[data-job='{other_job}']").count() == 0
    assert page.locator("[data-testid=queues] tr").count() >= 5
    # What a person sees: the row's bar filled as far as the job got before it was cancelled, in pixels.
    final = db["queues"].find_one({"_id": ObjectId(job_id)})["progress"]["percent"]
    wait_for(
        lambda: f"{final:.1f}%" in cell.inner_text(),
        timeout=PAGE_SECONDS,
        interval=0.3,
        what="the list to show the job's final progress",
    )
    assert 0 < final < 100 and cell.is_visible()
    filled = bar_fill(browser, cell.locator(".bar"))
    assert abs(filled * 100 - final) <= 2, (filled, final)
    assert violations(page, csp) == []  # the whole visit (list, job, cancel, side panels) under the strict CSP
    page.fill("[data-testid=token]", "")
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)  # UPDATE_SCREENSHOT=1 refreshes the README's picture
    assert shot.stat().st_size > 10_000
    page.close()


#: The bar's fill colour in the dashboard's stylesheet (#3b7ddd).
BAR_BLUE = (0x3B, 0x7D, 0xDD)


def bar_fill(browser, bar) -> float:
    """The share of a progress bar's width painted in the fill colour, read from a screenshot of it (decoded by
    the browser's own canvas in a blank page: the dashboard's CSP rightly refuses data: images)."""
    src = "data:image/png;base64," + base64.b64encode(bar.screenshot()).decode()
    blank = browser.new_page()
    try:
        return _painted(blank, src)
    finally:
        blank.close()


def _painted(page, src: str) -> float:
    return page.evaluate(
        """async ([src, blue]) => {
        const img = new Image(); img.src = src; await img.decode();
        const canvas = document.createElement('canvas'); canvas.width = img.width; canvas.height = img.height;
        const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
        const row = ctx.getImageData(0, Math.floor(img.height / 2), img.width, 1).data;
        let painted = 0;
        for (let x = 0; x < img.width; x++) {
            if ([0, 1, 2].every(i => Math.abs(row[x * 4 + i] - blue[i]) < 16)) painted++;
        }
        return painted / img.width;
    }""",
        [src, list(BAR_BLUE)],
    )


def test_the_operator_view_shows_every_account_workers_queues_stale_and_lost_jobs_and_retries_in_bulk(
    live_api, browser, db, worker, settings, tmp_path
):
    from datetime import timedelta

    from crm_workers import jobs
    from crm_workers.domain.principal import issue_service_token
    from tests.conftest import JWT_SECRET, Tenant
    from tests.e2e.mass.test_tags_delete import make_tag

    a, b = Tenant(db), Tenant(db)
    failed = []
    for tenant in (a, b):
        tag = make_tag(db, tenant.account_id, "Retry")
        job, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": str(tag), "name": "Retry"})
        db["queues"].update_one(
            {"_id": job["_id"]}, {"$set": {"status": "failed", "error": {"code": "x", "message": "broke"}}}
        )
        failed.append(str(job["_id"]))
    stale, _ = jobs.create_job(db, a.account_id, "tags.delete", {})
    db["queues"].update_one(
        {"_id": stale["_id"]},
        {
            "$set": {
                "status": "running",
                "heartbeat_at": jobs.now() - timedelta(seconds=settings.job_stale_seconds + 60),
            }
        },
    )
    lost, _ = jobs.create_job(db, b.account_id, "tags.delete", {})
    db["queues"].update_one(
        {"_id": lost["_id"]}, {"$set": {"enqueued_at": jobs.now() - timedelta(seconds=settings.job_lost_seconds + 60)}}
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    csp = watch_csp(page)
    questions = []
    page.on("dialog", lambda dialog: questions.append(dialog.message) or dialog.accept())
    assert_policy(page.goto(f"{live_api}/dashboard"))
    page.fill("[data-testid=token]", issue_service_token(JWT_SECRET))
    page.click("[data-testid=signin] button")

    page.locator("[data-testid=mode]", has_text="operator view").wait_for(timeout=PAGE_SECONDS * 1000)
    page.locator(f"[data-job='{failed[1]}']").wait_for(timeout=PAGE_SECONDS * 1000)  # two accounts' jobs in one list
    assert page.locator(f"[data-job='{failed[0]}']").count() == 1
    page.locator("[data-testid=workers] td", has_text="pid").first.wait_for(timeout=PAGE_SECONDS * 1000)
    page.locator(f"[data-testid=stale] a[href='#{stale['_id']}']").wait_for(timeout=PAGE_SECONDS * 1000)
    page.locator(f"[data-testid=lost] a[href='#{lost['_id']}']").wait_for(timeout=PAGE_SECONDS * 1000)
    assert page.locator("[data-testid=queues] th", has_text="dead-letter").count() == 1
    page.click(f"[data-testid=stale] a[href='#{stale['_id']}']")  # a link drawn by the script: its listener opens it
    page.locator("[data-testid=job-status]", has_text="running").wait_for(timeout=PAGE_SECONDS * 1000)
    shot = (
        Path(SCREENSHOT).with_name("dashboard-operator.png")
        if os.environ.get("UPDATE_SCREENSHOT") == "1"
        else tmp_path / "operator.png"
    )
    page.fill("[data-testid=token]", "")
    page.screenshot(path=str(shot), full_page=True)

    for job_id in failed:
        page.check(f"[data-testid=pick-{job_id}]")
    page.click("[data-testid=retry-selected]")
    wait_for(
        lambda: "retried 2 of 2" in page.locator("[data-testid=bulk-result]").inner_text(),
        timeout=PAGE_SECONDS,
        interval=0.2,
        what="the bulk retry to answer",
    )
    for job_id in failed:
        assert wait_for_job(db, job_id)["status"] == "completed"
    assert questions == ["Retry 2 failed job(s)?"]

    page.fill("[data-testid=find]", failed[0])
    page.click("[data-testid=search] button[type=submit]")
    wait_for(
        lambda: page.locator("#jobs tr").count() == 1 and page.locator(f"[data-job='{failed[0]}']").count(),
        timeout=PAGE_SECONDS,
        interval=0.2,
        what="the search to show the one job",
    )
    page.click("#clear-find")
    page.select_option("[data-testid=per-page]", "10")
    page.fill("[data-testid=account]", str(a.account_id))
    page.dispatch_event("[data-testid=account]", "change")
    wait_for(
        lambda: page.locator("#jobs tr").count() == 2, timeout=PAGE_SECONDS, interval=0.2, what="account a's two jobs"
    )
    assert page.locator(f"[data-job='{failed[1]}']").count() == 0
    assert violations(page, csp) == []
    db["queues"].update_one({"_id": stale["_id"]}, {"$set": {"status": "failed"}})  # not left for the scheduler
    page.close()


def test_the_operator_view_pages_through_every_account_by_cursor(live_api, browser, db):
    from crm_workers import jobs
    from crm_workers.domain.principal import issue_service_token
    from tests.conftest import JWT_SECRET, Tenant

    tenant = Tenant(db)
    made = [str(jobs.create_job(db, tenant.account_id, "contacts.link", {})[0]["_id"]) for _ in range(12)]
    page = browser.new_page()
    page.goto(f"{live_api}/dashboard")
    page.fill("[data-testid=token]", issue_service_token(JWT_SECRET))
    page.click("[data-testid=signin] button")
    page.locator("[data-testid=mode]", has_text="operator view").wait_for(timeout=PAGE_SECONDS * 1000)
    page.select_option("[data-testid=per-page]", "10")
    page.fill("[data-testid=account]", str(tenant.account_id))
    page.dispatch_event("[data-testid=account]", "change")

    def shown():
        return page.eval_on_selector_all("#jobs tr[data-job]", "rows => rows.map(r => r.dataset.job)")

    wait_for(lambda: shown() == made[::-1][:10], timeout=PAGE_SECONDS, interval=0.2, what="the first page")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "after=" in r.url else None)
    page.click("[data-testid=older]")
    # The browser had ten jobs: the two older ones come from the server, asked for by cursor.
    wait_for(lambda: shown() == made[::-1][10:], timeout=PAGE_SECONDS, interval=0.2, what="the second page")
    assert asked, "the second page was not asked for by cursor"
    assert "(last)" in page.locator("[data-testid=page-info]").inner_text()
    page.click("[data-testid=newer]")
    wait_for(lambda: shown() == made[::-1][:10], timeout=PAGE_SECONDS, interval=0.2, what="back to the first page")
    page.close()


def test_a_malformed_job_record_is_listed_and_never_ends_the_list(live_api, browser, db):
    """A record without `progress` (written by hand, or by an old version) once threw in the page's row drawing:
    the list stopped refreshing for every account. It is listed as it is, beside the others."""
    from crm_workers import jobs
    from crm_workers.domain.principal import issue_service_token
    from tests.conftest import JWT_SECRET, Tenant

    tenant = Tenant(db)
    good = str(jobs.create_job(db, tenant.account_id, "contacts.link", {})[0]["_id"])
    bare = str(
        db["queues"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "contacts.export",
                "status": "completed",
                "created_at": jobs.now(),
                "finished_at": jobs.now(),
            }
        )
        .inserted_id
    )
    page = browser.new_page()
    page.goto(f"{live_api}/dashboard")
    page.fill("[data-testid=token]", issue_service_token(JWT_SECRET))
    page.click("[data-testid=signin] button")
    page.locator("[data-testid=mode]", has_text="operator view").wait_for(timeout=PAGE_SECONDS * 1000)
    page.fill("[data-testid=account]", str(tenant.account_id))
    page.dispatch_event("[data-testid=account]", "change")

    def shown():
        return page.eval_on_selector_all("#jobs tr[data-job]", "rows => rows.map(r => r.dataset.job)")

    wait_for(lambda: shown() == [bare, good], timeout=PAGE_SECONDS, interval=0.2, what="both jobs listed")
    assert page.locator(f"[data-testid=progress-{bare}]").inner_text().strip().endswith("?/?")
    page.close()


def test_every_page_is_served_with_a_strict_csp_that_the_browser_enforces(live_api, browser):
    """The policy is real, not decoration: a script injected inline into the page and an inline handler are refused
    and reported; the pages' own files load under it with no violation."""
    for path in ("/dashboard", "/dashboard/import", "/dashboard/webhooks", "/v1/crm/docs"):
        page = browser.new_page()
        csp = watch_csp(page)
        assert_policy(page.goto(f"{live_api}{path}"))
        assert violations(page, csp) == [], path
        assert page.evaluate(INJECT) == [None, None], path
        wait_for(
            lambda p=page: len(p.evaluate("window.__cspViolations")) >= 2,
            timeout=10,
            interval=0.1,
            what="the two refusals reported",
        )
        assert all("script-src" in v for v in page.evaluate("window.__cspViolations")), path
        page.close()


#: An inline script and an inline on* handler, as an XSS would add them.
INJECT = """() => {
    const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s);
    const b = document.createElement('button'); b.setAttribute('onclick', 'window.clicked = 1');
    document.body.append(b); b.click();
    return [window.injected ?? null, window.clicked ?? null]; }"""
