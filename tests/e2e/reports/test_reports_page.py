"""The dashboard's Reports page in a real headless Chromium under the strict CSP; the CLI's `crm-jobs report`;
the CSV download."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from crm_workers.domain.currency import load_rates
from tests.conftest import wait_for
from tests.e2e.browser import PAGE_SECONDS, needs_chromium
from tests.e2e.csp import assert_policy, violations, watch_csp
from tests.e2e.reports.test_reports import FIRST, LAST, RANGE, report
from tests.e2e.reports.world import expected_new_contacts, expected_pipeline, seed_account
from tests.e2e.test_cli import crm_jobs

SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "reports.png"


@needs_chromium
def test_the_reports_page_draws_every_report_for_the_range_under_the_strict_csp(
    live_api, browser, db, worker, tenant, other_tenant, tmp_path
):
    world = seed_account(db, tenant, tz="Europe/Berlin", seed=61, n=120)
    seed_account(db, other_tenant, tz="UTC", seed=62, n=30)
    want = expected_new_contacts(world, FIRST, LAST, "week")
    page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    csp = watch_csp(page)
    assert_policy(page.goto(f"{live_api}/dashboard/reports"))
    page.fill("[data-testid=token]", tenant.headers()["Authorization"].removeprefix("Bearer "))
    page.click("[data-testid=signin] button")  # the last 30 days first
    wait_for(
        lambda: "computed" in page.inner_text("[data-testid=report-status]"),
        timeout=PAGE_SECONDS,
        interval=0.2,
        what="the default range drawn",
    )

    page.fill("[data-testid=from]", FIRST.isoformat())
    page.fill("[data-testid=to]", LAST.isoformat())
    page.select_option("[data-testid=interval]", "week")
    page.click("[data-testid=load]")
    wait_for(
        lambda: FIRST.isoformat() in page.inner_text("[data-testid=report-status]"),
        timeout=PAGE_SECONDS,
        interval=0.2,
        what="the chosen range drawn",
    )

    bars = page.locator("[data-testid=contacts-chart] [data-testid=bar]")
    assert [int(v) for v in bars.evaluate_all("bs => bs.map(b => b.dataset.value)")] == [
        p["total"] for p in want["series"]
    ]
    assert f"{want['total']} new contacts" in page.inner_text("[data-testid=contacts-total]")
    funnels = page.locator("[data-testid=funnel]")
    assert funnels.count() == 2 and "Lead" in funnels.first.inner_html()
    pipeline = expected_pipeline(world, FIRST, LAST, "USD", load_rates())
    assert page.locator("[data-testid=leaderboard] tbody tr").count() == len(pipeline["leaderboard"])
    assert page.locator("[data-testid=failures-chart] [data-testid=hbar]").count() >= 2
    assert violations(page, csp) == []
    with page.expect_download() as download:
        page.click("[data-testid=csv-new_contacts]")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [int(r["total"]) for r in rows] == [p["total"] for p in want["series"]]
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "reports.png"
    page.fill("[data-testid=token]", "")
    page.screenshot(path=str(shot), full_page=True)  # UPDATE_SCREENSHOT=1 refreshes the README's picture
    assert shot.stat().st_size > 10_000
    page.close()


def test_the_cli_prints_a_report_as_text_json_and_csv(live_api, db, worker, tenant, stored_rates):
    world = seed_account(db, tenant, tz="America/New_York", seed=71, n=40)
    env = {"CRM_URL": live_api, "CRM_TOKEN": tenant.headers()["Authorization"].removeprefix("Bearer ")}
    args = ("--from", FIRST.isoformat(), "--to", LAST.isoformat())

    as_json = crm_jobs("report", "pipeline", *args, "--json", env=env)
    text = crm_jobs("report", "pipeline", *args, env=env)
    as_csv = crm_jobs("report", "new_contacts", *args, "--interval", "month", "--csv", env=env)
    bad = crm_jobs("report", "pipeline", "--from", "yesterday", env=env)

    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["params"] == {**RANGE, "pipeline_id": None}
    assert answer["data"]["pipelines"] == expected_pipeline(world, FIRST, LAST, "USD", load_rates())["pipelines"]
    assert text.returncode == 0 and "leaderboard" in text.stdout and "Renewals" in text.stdout
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["period"], int(r["total"])) for r in rows] == [
        (p["period"], p["total"]) for p in expected_new_contacts(world, FIRST, LAST, "month")["series"]
    ]
    assert bad.returncode != 0 and "from" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_the_csv_of_a_stored_report_is_formula_safe_and_another_accounts_is_not_theirs(
    client, db, worker, tenant, other_tenant
):
    seed_account(db, tenant, tz="UTC", seed=81, n=20)
    db["crm.pipelines"].update_many({"account_id": tenant.account_id}, {"$set": {"name": '=HYPERLINK("x")'}})
    report(client, db, tenant, "pipeline", RANGE)

    mine = client.get("/v1/crm/reports/pipeline", query_string={**RANGE, "format": "csv"}, headers=tenant.headers())
    theirs = client.get(
        "/v1/crm/reports/pipeline", query_string={**RANGE, "format": "csv"}, headers=other_tenant.headers()
    )

    assert mine.status_code == 200 and mine.mimetype == "text/csv"
    first = list(csv.DictReader(io.StringIO(mine.get_data(as_text=True))))[0]
    assert first["pipeline"].startswith("'=")  # neutralised: a spreadsheet shows it, never runs it
    assert theirs.status_code == 202  # their own question: a job of theirs, never this account's stored result
