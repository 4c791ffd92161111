"""An export shows linked records under the caller's visibility. `contact_email` of deals
and `business` of contacts (and of deals) were looked up without the rule: a non-owner under `owner_only` got
the email and name of records only the owner may see."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from crm_workers.jobs import now
from tests.conftest import Tenant, wait_for_job
from tests.e2e.exports.test_exports import download, rows_of


@pytest.fixture
def linked(db):
    """Under owner_only: the owner's business and person (secret), the user's person and deal linked to both."""
    t, ts = Tenant(db, visibility="owner_only"), now()
    a = t.account_id

    def contact(**fields):
        return (
            db["crm.contacts"]
            .insert_one({"account_id": a, "tags": [], "created_at": ts, "updated_at": ts, **fields})
            .inserted_id
        )

    hidden_business = contact(type="business", name="Secret Holdings", owner=t.owner_uid)
    own_business = contact(type="business", name="Mine Ltd", owner=t.user_uid)
    hidden_person = contact(type="person", first_name="Hidden", email="hidden@secret.example", owner=t.owner_uid)
    shown_person = contact(type="person", first_name="Shown", email="shown@mine.example", owner=t.user_uid)
    contact(
        type="person",
        first_name="Mine",
        email="mine@mine.example",
        owner=t.user_uid,
        businesses=[hidden_business, own_business],
    )
    pid = db["crm.pipelines"].insert_one({"account_id": a, "name": "Sales"}).inserted_id
    stage = (
        db["crm.pipeline.stages"]
        .insert_one({"account_id": a, "pipeline_id": pid, "name": "Lead", "position": 0})
        .inserted_id
    )
    db["crm.deals"].insert_one(
        {
            "account_id": a,
            "name": "Deal",
            "pipeline_id": pid,
            "stage_id": stage,
            "owner": t.user_uid,
            "contacts": [hidden_person, shown_person],
            "business_id": hidden_business,
            "tags": [],
            "status": "open",
            "created_at": ts,
            "updated_at": ts,
        }
    )
    return t


def exported(client, db, tenant, entity: str, fmt: str = "csv", **who) -> list[dict]:
    response = client.post(f"/v1/crm/{entity}/export", json={"format": fmt}, headers=tenant.headers(**who))
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(db, response.get_json()["id"])
    assert job["status"] == "completed", job.get("error")
    data = download(client, job["result"]["download_url"])
    if fmt == "csv":
        return rows_of(data)
    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    values = [[("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True)]
    return [dict(zip(values[0], row, strict=False)) for row in values[1:]]


def test_a_non_owner_export_shows_no_linked_record_they_cannot_see(client, db, worker, linked):
    """The finding's requests: the user's contacts export (`business`) and deals export (`contact_email`)."""
    people = {r["email"]: r for r in exported(client, db, linked, "contacts", owner=False)}
    [deal] = exported(client, db, linked, "deals", owner=False)

    assert people["mine@mine.example"]["business"] == "Mine Ltd"  # their own business, not the owner's
    assert deal["contact_email"] == "shown@mine.example"  # the first contact they can see
    assert deal["business"] == ""
    everything = str(people) + str(deal)
    assert "Secret Holdings" not in everything and "hidden@secret.example" not in everything


def test_the_same_in_xlsx_and_the_owner_still_sees_every_link(client, db, worker, linked):
    """Variants: the XLSX format, and the owner's export (the rule narrows only what a non-owner sees)."""
    [deal] = exported(client, db, linked, "deals", "xlsx", owner=False)
    assert deal["contact_email"] == "shown@mine.example" and "Secret" not in str(deal)

    people = {r["email"]: r for r in exported(client, db, linked, "contacts", owner=True)}
    [owners_deal] = exported(client, db, linked, "deals", owner=True)
    assert people["mine@mine.example"]["business"] == "Secret Holdings, Mine Ltd"
    assert owners_deal["contact_email"] == "hidden@secret.example"
    assert owners_deal["business"] == "Secret Holdings"
