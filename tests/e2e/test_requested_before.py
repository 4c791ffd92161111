"""A mass operation or an export acts only on records that existed when the job was requested: one created after
the request (its `created_at` later than the job's) is not exported, updated, linked or deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers.jobs import now
from tests.conftest import wait_for_job
from tests.e2e.exports.test_exports import download, rows_of


def _person(db, tenant, name: str, created_at) -> ObjectId:
    return (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": name,
                "email": f"{name.lower()}@example.com",
                "tags": [],
                "businesses": [],
                "created_at": created_at,
                "updated_at": created_at,
            }
        )
        .inserted_id
    )


@pytest.fixture
def before_and_after(db, tenant):
    """Two people who exist before the request, and one whose record is created after it (a record written
    while the job waits in its queue carries a `created_at` after the job's)."""
    ts = now()
    earlier = [_person(db, tenant, "Early", ts - timedelta(minutes=5)), _person(db, tenant, "Prior", ts)]
    later = _person(db, tenant, "Later", ts + timedelta(minutes=10))
    return earlier, later


def _run(client, db, tenant, path: str, body: dict) -> dict:
    response = client.post(f"/v1/crm/{path}", json=body, headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(db, response.get_json()["id"])
    assert job["status"] == "completed", job.get("error")
    return job


def test_a_record_created_after_the_request_is_not_exported(client, db, worker, tenant, before_and_after):
    job = _run(client, db, tenant, "contacts/export", {"filter": {}, "columns": ["first_name", "email"]})

    names = sorted(row["first_name"] for row in rows_of(download(client, job["result"]["download_url"])))
    assert names == ["Early", "Prior"] and job["result"]["rows"] == 2


def test_a_record_created_after_the_request_is_not_updated_or_linked(client, db, worker, tenant, before_and_after):
    earlier, later = before_and_after
    ts = now()
    business = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "business",
                "name": "Acme",
                "tags": [],
                "created_at": ts - timedelta(hours=1),
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    later_before = db["crm.contacts"].find_one({"_id": later})

    _run(client, db, tenant, "contacts/bulk-update", {"filter": {"type": "person"}, "tags_add": ["Reached"]})
    _run(client, db, tenant, "contacts/link", {"filter": {"type": "person"}, "business_id": str(business)})

    tag = db["crm.tags"].find_one({"account_id": tenant.account_id, "name": "Reached"})["_id"]
    for person in db["crm.contacts"].find({"_id": {"$in": earlier}}):
        assert tag in person["tags"] and person["businesses"] == [business]
    assert db["crm.contacts"].find_one({"_id": later}) == later_before  # not a byte changed


def test_a_record_created_after_the_request_is_not_deleted(client, db, worker, tenant, before_and_after):
    earlier, later = before_and_after

    job = _run(client, db, tenant, "contacts/bulk-delete", {"filter": {}})

    assert job["result"]["deleted"] == 2
    assert db["crm.contacts"].count_documents({"_id": {"$in": earlier}}) == 0
    assert db["crm.contacts"].find_one({"_id": later})["first_name"] == "Later"
