"""Imports of one account running at the same time: one email, phone or external id is one record, whatever
they write together, and their counts add up exactly."""

from __future__ import annotations

import pytest

from crm_workers.adapters.middleware.account_fairness import AccountFairness
from tests.conftest import Tenant, wait_for_job
from tests.e2e.imports.helpers import add_pipeline, upload

COMPANIES = 20


@pytest.fixture
def four_at_once(broker):
    """Let four heavy jobs of one account run together (the default is two)."""
    fairness = next(m for m in broker.middleware if isinstance(m, AccountFairness))
    limit, fairness.limit = fairness.limit, 4
    yield
    fairness.limit = limit


def person(i: int) -> dict:
    """Person i; every fifth has no email and is known by phone alone."""
    return {
        "email": "" if i % 5 == 0 else f"p{i}@example.com",
        "first_name": f"P{i}",
        "phone": f"+1 415 555 {i:04d}",
        "company": f"Co{i % COMPANIES}",
    }


def people_csv(numbers) -> bytes:
    lines = ["email,first_name,phone,company"]
    lines += [",".join(person(i).values()) for i in numbers]
    return ("\n".join(lines) + "\n").encode()


def start(client, tenant, content: bytes, **kwargs) -> str:
    response = upload(client, tenant, content, options={"country": "US"}, **kwargs)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def finish(db, ids) -> list[dict]:
    jobs = [wait_for_job(db, i, timeout=180) for i in ids]
    assert all(j["status"] == "completed" for j in jobs), [j.get("error") for j in jobs]
    # They really ran together: every one started before any one finished.
    assert max(j["started_at"] for j in jobs) < min(j["finished_at"] for j in jobs)
    return jobs


def assert_each_person_once(db, account_id, numbers) -> None:
    persons = list(db["crm.contacts"].find({"account_id": account_id, "type": "person"}))
    assert len(persons) == len(numbers)
    assert sorted(p["first_name"] for p in persons) == sorted(f"P{i}" for i in numbers)
    assert len({p["phone"] for p in persons}) == len(numbers)
    businesses = list(db["crm.contacts"].find({"account_id": account_id, "type": "business"}))
    assert sorted(b["name"] for b in businesses) == sorted(f"Co{i}" for i in range(COMPANIES))
    ids = {b["_id"] for b in businesses}
    assert all(len(p["businesses"]) == 1 and p["businesses"][0] in ids for p in persons)


def assert_counts_exact(jobs, rows_each, distinct) -> None:
    counts = [j["result"]["counts"] for j in jobs]
    assert sum(c["created"] for c in counts) == distinct
    assert all(
        c["created"] + c["updated"] == rows and c["skipped"] == c["failed"] == 0
        for c, rows in zip(counts, rows_each, strict=True)
    )


def test_two_imports_of_the_same_file_started_together_make_each_person_once(client, db, worker, tenant):
    content = people_csv(range(600))

    jobs = finish(db, [start(client, tenant, content), start(client, tenant, content)])

    assert_each_person_once(db, tenant.account_id, range(600))
    assert_counts_exact(jobs, [600, 600], 600)


def test_four_imports_of_overlapping_files_started_together_make_each_person_once(
    client, db, worker, tenant, four_at_once
):
    files = [[i for i in range(400) if i % 4 != k] for k in range(4)]  # each person in three of the four

    jobs = finish(db, [start(client, tenant, people_csv(f)) for f in files])

    assert_each_person_once(db, tenant.account_id, range(400))
    assert_counts_exact(jobs, [300] * 4, 400)


def test_an_import_racing_a_records_import_of_the_same_people_makes_each_person_once(client, db, worker, tenant):
    body = {"source": {"type": "records", "records": [person(i) for i in range(500)]}, "options": {"country": "US"}}

    records = client.post("/v1/crm/contacts/import", json=body, headers=tenant.headers())
    jobs = finish(db, [records.get_json()["id"], start(client, tenant, people_csv(range(500)))])

    assert_each_person_once(db, tenant.account_id, range(500))
    assert_counts_exact(jobs, [500, 500], 500)


def test_an_owner_and_a_non_owner_importing_the_same_people_at_once_never_cross(client, db, worker):
    shop = Tenant(db, visibility="owner_only")
    owners, users = people_csv(range(400)), people_csv(range(400)).replace(b",P", b",User P")

    jobs = finish(db, [start(client, shop, owners), start(client, shop, users, owner=False)])

    persons = list(db["crm.contacts"].find({"account_id": shop.account_id, "type": "person"}))
    assert len(persons) == 400 and len({p["phone"] for p in persons}) == 400
    # The user changed nothing the owner's import made; what the user made is theirs.
    assert not [p for p in persons if p.get("owner") != shop.user_uid and p["first_name"].startswith("User")]
    users_job = jobs[1]["result"]["counts"]
    made_by_user = [p for p in persons if p.get("owner") == shop.user_uid]
    assert users_job["created"] == len(made_by_user) and users_job["skipped"] + users_job["created"] == 400
    assert jobs[0]["result"]["counts"]["created"] + users_job["created"] == 400


def test_two_deal_imports_of_the_same_file_at_once_make_each_deal_pipeline_and_stage_once(client, db, worker, tenant):
    add_pipeline(db, tenant.account_id, "Sales", stages=("Lead",))
    lines = ["Deal ID,Deal Name,Pipeline,Stage,Amount"]
    lines += [f"D{i},Deal {i},{'Renewals' if i % 2 else 'Sales'},Stage {i % 7},{i}" for i in range(400)]
    content = ("\n".join(lines) + "\n").encode()
    options = {
        "country": "US",
        "create_missing": True,
        "mapping": {
            "Deal ID": "external_id",
            "Deal Name": "name",
            "Pipeline": "pipeline",
            "Stage": "stage",
            "Amount": "value",
        },
    }

    ids = [upload(client, tenant, content, "deals.csv", options, entity="deals").get_json()["id"] for _ in range(2)]
    jobs = finish(db, ids)

    deals = list(db["crm.deals"].find({"account_id": tenant.account_id}))
    assert len(deals) == 400 and len({d["external_id"] for d in deals}) == 400
    assert sorted(p["name"] for p in db["crm.pipelines"].find({"account_id": tenant.account_id})) == [
        "Renewals",
        "Sales",
    ]
    stages = [(s["pipeline_id"], s["name"]) for s in db["crm.pipeline.stages"].find({"account_id": tenant.account_id})]
    assert len(stages) == len(set(stages)) == 1 + 7 + 7
    assert_counts_exact(jobs, [400, 400], 400)
