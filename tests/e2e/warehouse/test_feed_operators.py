"""The warehouse feed for operators: `crm-jobs warehouse runs|run`, and the dashboard's operator view."""

from __future__ import annotations

import json

import pytest
from bson import ObjectId

from crm_workers.domain.principal import issue_service_token, issue_token
from tests.conftest import JWT_SECRET, wait_for
from tests.e2e.browser import PAGE_SECONDS, needs_chromium
from tests.e2e.test_cli import crm_jobs
from tests.e2e.warehouse.seed import seed_account
from tests.e2e.warehouse.world import build_world

SERVICE_TOKEN = issue_service_token(JWT_SECRET, name="ops")


@pytest.fixture
def world(settings, tmp_path):
    made, stop = build_world(settings, tmp_path)
    yield made
    made.release_holds()
    stop()


def test_the_cli_starts_a_run_watches_it_to_its_end_and_lists_runs(world):
    seed_account(world.db, ObjectId(), contacts=4)
    env = {"CRM_URL": world.live_api(), "CRM_TOKEN": SERVICE_TOKEN}

    started = crm_jobs("warehouse", "run", "--json", env=env)
    table = crm_jobs("warehouse", "runs", env=env)
    listed = crm_jobs("warehouse", "runs", "--json", env=env)
    user = crm_jobs(
        "warehouse",
        "runs",
        env={
            **env,
            "CRM_TOKEN": issue_token(JWT_SECRET, account_id=str(ObjectId()), uid=str(ObjectId()), is_owner=True),
        },
    )

    assert started.returncode == 0, started.stderr
    job = json.loads(started.stdout)
    assert job["type"] == "warehouse.export" and job["status"] == "completed" and job["result"]["rows"] == 16
    (run,) = json.loads(listed.stdout)["runs"]
    assert run["id"] == job["id"] and run["rows"] == 16 and run["collections"]["crm.contacts"]["rows"] == 5
    assert table.returncode == 0
    header, line, total = table.stdout.splitlines()
    assert header.split()[:6] == ["RUN", "STATUS", "TO", "ROWS", "DELETED", "UNEXPECTED"]
    assert line.split()[:6] == [job["id"], "completed", run["to"], "16", "0", "0"] and total == "1 runs"
    assert user.returncode == 1 and "403 forbidden" in user.stderr


@needs_chromium
def test_the_operator_view_lists_warehouse_runs_and_starts_one(world, browser):
    from tests.e2e.csp import assert_policy, violations, watch_csp

    seed_account(world.db, ObjectId(), contacts=4)
    first = world.run()
    url = world.live_api()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    csp = watch_csp(page)
    assert_policy(page.goto(f"{url}/dashboard"))
    page.fill("[data-testid=token]", SERVICE_TOKEN)
    page.click("[data-testid=signin] button")

    row = page.locator(f"[data-testid=warehouse] [data-warehouse-run='{first['run_id']}']")
    row.wait_for(timeout=PAGE_SECONDS * 1000)
    assert row.locator("td").nth(1).inner_text() == "completed" and row.locator("td").nth(3).inner_text() == "16"
    page.click("[data-testid=warehouse-run]")
    page.locator("[data-testid=warehouse-started]", has_text="run ").wait_for(timeout=PAGE_SECONDS * 1000)
    started = page.locator("[data-testid=warehouse-started]").inner_text().split()[1]
    wait_for(lambda: world.manifest(started), timeout=PAGE_SECONDS, what="the run started from the page")
    page.locator(f"[data-testid=warehouse] [data-warehouse-run='{started}'] td", has_text="completed").wait_for(
        timeout=PAGE_SECONDS * 1000
    )
    assert violations(page, csp) == []
    page.close()
