"""The webhooks page in a real headless Chromium: subscribe, see the secret once, follow the delivery log, retry a
failed delivery; all of it under the strict CSP."""

from __future__ import annotations

from bson import ObjectId

from tests.conftest import wait_for
from tests.e2e.browser import PAGE_SECONDS, needs_chromium
from tests.e2e.csp import assert_policy, violations, watch_csp
from tests.e2e.test_dashboard import INJECT
from tests.e2e.webhooks.helpers import delete_tag

pytestmark = needs_chromium


def test_the_webhooks_page_subscribes_shows_the_log_and_retries_a_failed_delivery(
    live_api, browser, client, db, worker, tenant, hook_receiver
):
    hook_receiver.statuses += [410]  # the first delivery fails for good: the page's retry button sends it again
    page = browser.new_page()
    csp = watch_csp(page)
    page.on("dialog", lambda dialog: dialog.accept())
    assert_policy(page.goto(f"{live_api}/dashboard/webhooks"))
    page.fill("[data-testid=token]", tenant.headers()["Authorization"].removeprefix("Bearer "))
    page.click("[data-testid=signin] button")
    page.fill("[data-testid=url]", hook_receiver.url)
    page.click("[data-testid=create] button")

    page.locator("[data-testid=secret]").wait_for(state="visible", timeout=PAGE_SECONDS * 1000)
    sub = db["crm.webhooks"].find_one({"account_id": tenant.account_id})
    assert sub["secret"] in page.inner_text("[data-testid=secret]")
    assert sub["events"] == ["job.completed", "job.failed"] and sub["types"] == []
    from crm_workers.services.webhooks.dispatcher import knows_subscribed

    wait_for(lambda: knows_subscribed(tenant.account_id), what="the worker to know of the subscription")
    job_id = delete_tag(client, db, tenant)
    delivery = wait_for(
        lambda: (
            (d := db["crm.webhook.deliveries"].find_one({"job_id": ObjectId(job_id)})) and d["status"] == "failed" and d
        ),
        what="the failed delivery",
    )
    status = page.locator(f"[data-testid=status-{delivery['_id']}]")
    wait_for(
        lambda: status.count() and status.inner_text() == "failed",
        timeout=PAGE_SECONDS,
        interval=0.2,
        what="the page to show the failed delivery",
    )

    page.click(f"[data-testid=retry-{delivery['_id']}]")

    wait_for(
        lambda: status.inner_text() == "delivered",
        timeout=PAGE_SECONDS,
        interval=0.2,
        what="the page to show it delivered",
    )
    assert page.inner_text(f"[data-testid=attempts-{delivery['_id']}]") == "2"
    assert [c["status"] for c in hook_receiver.for_job(job_id)] == [410, 200]
    page.click(f"[data-testid=rotate-{sub['_id']}]")
    wait_for(lambda: db["crm.webhooks"].find_one({"_id": sub["_id"]})["secret"] != sub["secret"], what="rotated")
    new = db["crm.webhooks"].find_one({"_id": sub["_id"]})["secret"]
    wait_for(lambda: new in page.inner_text("[data-testid=secret]"), timeout=PAGE_SECONDS, what="the new secret")
    assert violations(page, csp) == []
    assert page.evaluate(INJECT) == [None, None]  # and the policy is really enforced on this page
    page.close()
