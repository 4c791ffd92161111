"""Reports through the API and the worker, compared with numbers computed here from the seeded data: across
timezones (DST changes in the range), currencies and rate days, owners, pipelines and automation outcomes;
`owner_only`; another account never counted; a fresh stored answer served, a stale one recomputed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from bson import ObjectId

from crm_workers.domain.currency import load_rates
from tests.conftest import Tenant, wait_for_job
from tests.e2e.reports.world import (
    RATE_DAYS,
    expected_automations,
    expected_new_contacts,
    expected_pipeline,
    seed_account,
)

FIRST, LAST = date(2026, 3, 3), date(2026, 4, 28)
RANGE = {"from": FIRST.isoformat(), "to": LAST.isoformat()}


def report(client, db, tenant, kind, query=None, *, owner=True, expect=202) -> dict:
    """GET the report; when it answers 202, wait for its job and return the job's result."""
    response = client.get(f"/v1/crm/reports/{kind}", query_string=query or {}, headers=tenant.headers(owner=owner))
    assert response.status_code == expect, response.get_json()
    if expect == 200:
        return response.get_json()
    assert response.headers["Location"] == f"/v1/crm/jobs/{response.get_json()['id']}"
    job = wait_for_job(db, response.get_json()["id"])
    assert job["status"] == "completed", job.get("error")
    return job["result"]


def report_jobs(db, tenant, kind) -> int:
    return db["queues"].count_documents({"account_id": tenant.account_id, "type": f"reports.{kind}"})


@pytest.mark.parametrize("per_period", [False, True], ids=["one pass", "a pass per period"])
@pytest.mark.parametrize(
    "tz, interval",
    [("Europe/Berlin", "day"), ("America/New_York", "week"), ("Asia/Kolkata", "month"), ("America/New_York", "day")],
)
def test_new_contacts_match_an_independent_count_per_local_period(
    client, db, worker, tenant, other_tenant, tz, interval, per_period, monkeypatch
):
    """Either way of reading (one pass with the server's local day, or a pass per period on Python's boundaries,
    for big ranges) gives the same independent numbers."""
    from crm_workers.services.reports import contacts_report

    monkeypatch.setattr(contacts_report, "PER_PERIOD_FROM", 1 if per_period else 10_000)
    world = seed_account(db, tenant, tz=tz, seed=7)
    seed_account(db, other_tenant, tz="UTC", seed=8, n=40)  # the same days: never counted

    got = report(client, db, tenant, "new_contacts", {**RANGE, "interval": interval})

    assert got["kind"] == "new_contacts" and got["params"] == {**RANGE, "interval": interval}
    assert got["data"] == expected_new_contacts(world, FIRST, LAST, interval)
    assert got["data"]["series"][0]["period"] == (
        "2026-03-03" if interval == "day" else "2026-03-02" if interval == "week" else "2026-03-01"
    )


@pytest.mark.parametrize("per_day", [False, True], ids=["one pass", "a pass per day"])
@pytest.mark.parametrize("tz, account_currency", [("Europe/Berlin", "EUR"), ("America/New_York", None)])
def test_the_pipeline_report_matches_independent_sums_in_base_currency_by_closing_day(
    client, db, worker, tenant, other_tenant, stored_rates, tz, account_currency, per_day, monkeypatch
):
    from crm_workers.services.reports import pipeline_report

    monkeypatch.setattr(pipeline_report, "PER_DAY_FROM", 1 if per_day else 10_000)
    world = seed_account(db, tenant, tz=tz, currency=account_currency, seed=3)
    seed_account(db, other_tenant, tz=tz, seed=4, n=40)

    got = report(client, db, tenant, "pipeline", RANGE)

    want = expected_pipeline(world, FIRST, LAST, "USD", load_rates())
    data = got["data"]
    assert data["base_currency"] == "USD" and data["rates_as_of"] == max(RATE_DAYS)
    assert data["pipelines"] == want["pipelines"]
    assert data["leaderboard"] == want["leaderboard"]
    assert sum(p["won_count"] for p in data["pipelines"]) > 10  # the seed closes deals in the range


def test_one_pipeline_only_and_every_stage_listed_with_zeros(client, db, worker, tenant, stored_rates):
    world = seed_account(db, tenant, tz="UTC", seed=5, n=8)
    renewals = world["pipelines"][1]

    got = report(client, db, tenant, "pipeline", {**RANGE, "pipeline_id": str(renewals["_id"])})

    assert [p["name"] for p in got["data"]["pipelines"]] == ["Renewals"]
    assert [s["name"] for s in got["data"]["pipelines"][0]["stages"]] == ["Lead", "Demo", "Won"]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_the_automations_report_matches_independent_counts(client, db, worker, tenant, other_tenant, tz):
    world = seed_account(db, tenant, tz=tz, seed=11)
    seed_account(db, other_tenant, tz=tz, seed=12, n=40)

    got = report(client, db, tenant, "automations", RANGE)

    assert got["data"] == expected_automations(world, FIRST, LAST)
    one = world["automations"][0]
    only = report(client, db, tenant, "automations", {**RANGE, "automation_id": str(one)})
    assert [a["automation_id"] for a in only["data"]["automations"]] == [str(one)]


def test_under_owner_only_a_user_sees_only_their_own_and_never_shares_the_owners_result(
    client, db, worker, stored_rates
):
    tenant = Tenant(db, visibility="owner_only")
    world = seed_account(db, tenant, tz="Europe/Berlin", seed=21)
    mine = tenant.user_uid

    contacts = report(client, db, tenant, "new_contacts", RANGE, owner=False)
    pipeline = report(client, db, tenant, "pipeline", RANGE, owner=False)
    runs = report(client, db, tenant, "automations", RANGE, owner=False)

    assert contacts["data"] == expected_new_contacts(world, FIRST, LAST, "day", owner=mine)
    want = expected_pipeline(world, FIRST, LAST, "USD", load_rates(), owner=mine)
    assert pipeline["data"]["pipelines"] == want["pipelines"]  # every pipeline and stage listed, their numbers
    assert [r["owner"] for r in pipeline["data"]["leaderboard"]] == [str(mine)]
    assert pipeline["data"]["leaderboard"] == want["leaderboard"]
    assert runs["data"] == expected_automations(world, FIRST, LAST, lambda d: d["owner"] == mine)
    # The owner's question is the same, their answer is not the user's: computed for them.
    owners = report(client, db, tenant, "new_contacts", RANGE)
    assert owners["data"] == expected_new_contacts(world, FIRST, LAST, "day")
    assert owners["data"]["total"] > contacts["data"]["total"]
    again = report(client, db, tenant, "new_contacts", RANGE, owner=False, expect=200)
    assert again["job_id"] == contacts["job_id"] and again["data"] == contacts["data"]


def test_a_fresh_result_is_served_at_once_and_a_stale_one_is_computed_again(client, db, worker, tenant, settings):
    seed_account(db, tenant, tz="Europe/Berlin", seed=31, n=40)
    first = report(client, db, tenant, "new_contacts", RANGE)

    cached = report(client, db, tenant, "new_contacts", RANGE, expect=200)

    assert cached == first and report_jobs(db, tenant, "new_contacts") == 1  # not recomputed
    # New data is not in a cached answer; once it is older than REPORT_MAX_AGE_SECONDS, it is recomputed.
    db["crm.contacts"].insert_one(
        {"account_id": tenant.account_id, "type": "person", "created_at": datetime(2026, 3, 15, 12, tzinfo=UTC)}
    )
    stale = db["crm.reports"].find_one({"account_id": tenant.account_id})["computed_at"] - timedelta(
        seconds=settings.report_max_age_seconds + 1
    )
    db["crm.reports"].update_many({"account_id": tenant.account_id}, {"$set": {"computed_at": stale}})
    recomputed = report(client, db, tenant, "new_contacts", RANGE)
    assert recomputed["job_id"] != first["job_id"] and recomputed["data"]["total"] == first["data"]["total"] + 1
    assert report_jobs(db, tenant, "new_contacts") == 2


def test_refresh_and_post_always_start_a_job(client, db, worker, tenant):
    seed_account(db, tenant, tz="UTC", seed=41, n=10)
    report(client, db, tenant, "automations", RANGE)

    refreshed = report(client, db, tenant, "automations", {**RANGE, "refresh": "1"})
    response = client.post("/v1/crm/reports/automations", json=RANGE, headers=tenant.headers())

    assert response.status_code == 202
    wait_for_job(db, response.get_json()["id"])
    assert refreshed["job_id"] and report_jobs(db, tenant, "automations") == 3


def test_the_default_range_is_the_last_30_days_in_the_accounts_timezone(client, db, worker, tenant):
    db["_accounts"].update_one({"_id": tenant.account_id}, {"$set": {"preferences.timezone": "Pacific/Kiritimati"}})

    got = report(client, db, tenant, "new_contacts")

    days = [s["period"] for s in got["data"]["series"]]
    assert len(days) == 30 and days[-1] == got["params"]["to"] == got["params"]["to"]
    assert date.fromisoformat(days[-1]) - date.fromisoformat(days[0]) == timedelta(days=29)


@pytest.mark.parametrize(
    "query, field",
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "from"),
        ({"interval": "hour"}, "interval"),
        ({"pipeline_id": "nope"}, "pipeline_id"),
        ({"shoe": "9"}, "shoe"),
        ({"from": "2000-01-01", "to": "2026-01-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "interval"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(client, tenant, query, field):
    response = client.get("/v1/crm/reports/new_contacts", query_string=query, headers=tenant.headers())

    assert response.status_code == 400, response.get_json()
    details = response.get_json()["error"]["details"]
    fields = [d["field"] for d in details] if isinstance(details, list) else [details["field"]]
    assert any(f == field or f.startswith(field) for f in fields), details


def test_an_unknown_report_is_404_and_a_service_token_is_refused(client, tenant):
    from crm_workers.domain.principal import issue_service_token
    from tests.conftest import JWT_SECRET

    assert client.get("/v1/crm/reports/revenue", headers=tenant.headers()).status_code == 404
    service = {"Authorization": f"Bearer {issue_service_token(JWT_SECRET)}"}
    assert client.get("/v1/crm/reports/pipeline", headers=service).status_code == 403


def test_another_accounts_pipeline_id_reports_nothing_of_it(client, db, worker, tenant, other_tenant):
    theirs = seed_account(db, other_tenant, tz="UTC", seed=51, n=10)

    got = report(client, db, tenant, "pipeline", {**RANGE, "pipeline_id": str(theirs["pipelines"][0]["_id"])})

    assert got["data"]["pipelines"] == [] and got["data"]["leaderboard"] == []
    assert ObjectId.is_valid(got["job_id"])
