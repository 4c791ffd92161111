"""Undo of an import, deal imports, and the import endpoints' answers to bad requests."""

from __future__ import annotations

import io
import json

import pytest
from bson import ObjectId

from crm_api import create_app
from crm_workers.jobs import now
from tests.conftest import wait_for_job
from tests.e2e.imports.helpers import add_field, add_pipeline, contacts, run_import, upload


def snapshot(db, account_id):
    return {
        name: list(db[name].find({"account_id": account_id}).sort("_id", 1))
        for name in ("crm.contacts", "crm.deals", "crm.tags")
    }


def seed(db, account_id):
    ts = now().replace(microsecond=0)
    vip = (
        db["crm.tags"]
        .insert_one({"account_id": account_id, "name": "VIP", "locked": False, "created_at": ts, "updated_at": ts})
        .inserted_id
    )
    db["crm.contacts"].insert_many(
        [
            {
                "account_id": account_id,
                "type": "person",
                "first_name": "Old",
                "last_name": "Name",
                "email": "old@example.com",
                "address": {"city": "Porto"},
                "tags": [vip],
                "created_at": ts,
                "updated_at": ts,
            },
            {
                "account_id": account_id,
                "type": "person",
                "first_name": "Keep",
                "email": "keep@example.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            },
        ]
    )


UNDO_FILE = (
    b"email,first_name,city,tags,company\n"
    b"old@example.com,New,Braga,Fresh,Initech\n"
    b"brand@example.com,Brand,Faro,VIP,\n"
    b"keep@example.com,Kept,,,\n"
)


def test_undo_restores_the_database_as_it_was_before_the_import(client, db, worker, tenant):
    add_field(db, tenant.account_id, "unused", "text")
    seed(db, tenant.account_id)
    before = snapshot(db, tenant.account_id)
    job = run_import(client, db, tenant, UNDO_FILE)
    assert job["result"]["counts"] == {"created": 1, "updated": 2, "skipped": 0, "failed": 0}
    assert snapshot(db, tenant.account_id) != before

    response = client.post(f"/v1/crm/jobs/{job['_id']}/undo", headers=tenant.headers())
    undo = wait_for_job(db, response.get_json()["id"])

    assert response.status_code == 202 and response.get_json()["type"] == "imports.undo"
    assert undo["status"] == "completed"
    assert undo["result"]["deleted"] == 2 and undo["result"]["restored"] == 2  # a person and Initech; two updates
    assert snapshot(db, tenant.account_id) == before


def test_undo_leaves_a_record_changed_after_the_import_and_lists_it(client, db, worker, tenant):
    seed(db, tenant.account_id)
    job = run_import(client, db, tenant, UNDO_FILE)
    later = now()
    changed = db["crm.contacts"].find_one({"account_id": tenant.account_id, "email": "old@example.com"})
    db["crm.contacts"].update_one({"_id": changed["_id"]}, {"$set": {"first_name": "Edited", "updated_at": later}})
    brand = db["crm.contacts"].find_one({"account_id": tenant.account_id, "email": "brand@example.com"})
    db["crm.contacts"].update_one({"_id": brand["_id"]}, {"$set": {"last_name": "Edited", "updated_at": later}})

    undo_id = client.post(f"/v1/crm/jobs/{job['_id']}/undo", headers=tenant.headers()).get_json()["id"]
    undo = wait_for_job(db, undo_id)

    assert undo["result"]["left_changed"] == 2
    assert set(undo["result"]["left_changed_records"]) == {
        f"crm.contacts:{changed['_id']}",
        f"crm.contacts:{brand['_id']}",
    }
    assert contacts(db, tenant.account_id, email="old@example.com")[0]["first_name"] == "Edited"
    assert contacts(db, tenant.account_id, email="brand@example.com")  # created, then edited: kept
    assert contacts(db, tenant.account_id, email="keep@example.com")[0]["first_name"] == "Keep"  # restored


def test_an_import_is_undone_once_and_only_by_its_account(client, db, worker, tenant, other_tenant):
    job = run_import(client, db, tenant, b"email\nu@example.com\n")

    assert client.post(f"/v1/crm/jobs/{job['_id']}/undo", headers=other_tenant.headers()).status_code == 404
    first = client.post(f"/v1/crm/jobs/{job['_id']}/undo", headers=tenant.headers())
    wait_for_job(db, first.get_json()["id"])
    second = client.post(f"/v1/crm/jobs/{job['_id']}/undo", headers=tenant.headers())

    assert first.status_code == 202 and second.status_code == 409
    assert second.get_json()["error"]["code"] == "already_undone"


# ------------------------------------------------------------------ deals


def test_deals_import_finds_pipeline_and_stage_by_name_converts_values_and_links_contacts(client, db, worker, tenant):
    pipeline, (lead, won) = add_pipeline(db, tenant.account_id, "Sales", "USD")
    ts = now()
    contact = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "person",
                "email": "c@x.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    content = (
        "Deal Name,Pipeline,Stage,Amount,Currency,Status,Close Date,Contact Email,Company\n"
        'Big one,sales,WON,"€1,000.00",,won,2025-01-31,C@X.com,Initech\n'
        "Small,Sales,,250,GBP,,,,\n"
        "Ghost,Nope,,1,,,,,\n"
        ",Sales,,,,,,,\n"
        "Orphan,Sales,,,,,,nobody@x.com,\n"
    ).encode()

    job = run_import(client, db, tenant, content, "deals.csv", entity="deals")

    assert job["result"]["counts"] == {"created": 3, "updated": 0, "skipped": 0, "failed": 2}
    deals = {d["name"]: d for d in db["crm.deals"].find({"account_id": tenant.account_id})}
    big, small = deals["Big one"], deals["Small"]
    assert (big["pipeline_id"], big["stage_id"], big["status"]) == (pipeline, won, "won")
    assert big["value"] == {"amount": 1000, "currency": "EUR"} and big["base_value"] == pytest.approx(1086.96)
    assert big["contacts"] == [contact] and big["expected_close_date"].date().isoformat() == "2025-01-31"
    assert db["crm.contacts"].find_one({"_id": big["business_id"]})["name"] == "Initech"
    assert small["stage_id"] == lead and small["value"] == {"amount": 250, "currency": "GBP"}
    assert small["base_value"] == pytest.approx(316.46) and small["status"] == "open"
    errors = [e["error"] for e in db["crm.import.errors"].find({"job_id": job["_id"]}).sort("row", 1)]
    assert "no pipeline named 'Nope'" in errors[0]
    assert "a deal needs a name" in errors[1]
    assert len(errors) == 2  # a contact_email with no contact leaves the deal unlinked, and says so:
    assert deals["Orphan"]["contacts"] == []
    assert "1 rows name a contact_email that no contact you can see has" in " ".join(job["result"]["warnings"])


# ------------------------------------------------------------------ bad requests


def test_a_file_of_the_wrong_type_is_415(client, tenant):
    response = upload(client, tenant, b"%PDF-1.4", "contacts.pdf")

    assert response.status_code == 415 and response.get_json()["error"]["details"] == {"field": "file"}


def test_an_empty_file_is_400_naming_the_file(client, tenant, db):
    response = upload(client, tenant, b"", "contacts.csv")

    assert response.status_code == 400 and response.get_json()["error"]["details"] == {"field": "file"}
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_a_file_over_the_size_limit_is_413(settings, db, broker, tenant):
    small = create_app(settings.with_(import_max_bytes=100), db=db, broker=broker).test_client()

    response = upload(small, tenant, b"email\n" + b"x@example.com\n" * 20)

    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


@pytest.mark.parametrize(
    "options,field",
    [
        ({"dedupe": "fax"}, "options.dedupe"),
        ({"mode": "merge"}, "options.mode"),
        ({"owner": "bob"}, "options.owner"),
        ({"mapping": {"Email": "e-mail-address"}}, "options.mapping.Email"),
        ({"mapping": {"Tier": "custom.nope"}}, "options.mapping.Tier"),
        ({"mode": "update", "dedupe": "none"}, "options"),
        ({"colour": "red"}, "options.colour"),
    ],
)
def test_bad_options_are_400_naming_the_field(client, tenant, options, field):
    response = upload(client, tenant, b"email\na@example.com\n", options=options)

    assert response.status_code == 400
    error = response.get_json()["error"]
    details = error["details"]
    fields = [d["field"] for d in details] if isinstance(details, list) else [details["field"]]
    assert field in fields


def test_options_that_are_not_json_are_400(client, tenant):
    data = {"file": (io.BytesIO(b"email\na@b.com\n"), "c.csv"), "options": "{not json"}
    response = client.post(
        "/v1/crm/contacts/import", data=data, content_type="multipart/form-data", headers=tenant.headers()
    )

    assert response.status_code == 400 and response.get_json()["error"]["details"] == {"field": "options"}


def test_a_stored_file_of_another_account_is_404(client, tenant, other_tenant):
    key = f"accounts/{other_tenant.account_id}/imports/x/contacts.csv"
    response = client.post(
        "/v1/crm/contacts/import", json={"source": {"type": "storage", "key": key}}, headers=tenant.headers()
    )

    assert response.status_code == 404 and response.get_json()["error"]["details"] == {"field": "source.key"}


def test_a_body_that_is_neither_multipart_nor_json_is_415(client, db, tenant):
    response = client.post(
        "/v1/crm/contacts/import", data="email\na@b.com", content_type="text/csv", headers=tenant.headers()
    )

    assert response.status_code == 415
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_records_that_are_not_objects_are_400_naming_the_field(client, tenant):
    response = client.post(
        "/v1/crm/contacts/import",
        data=json.dumps({"source": {"type": "records", "records": ["a"]}}),
        content_type="application/json",
        headers=tenant.headers(),
    )

    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"].startswith("source.records")


def test_the_same_idempotency_key_returns_the_first_import_job(client, db, worker, tenant):
    first = upload(client, tenant, b"email\ni@example.com\n", **{"Idempotency-Key": "imp-1"}).get_json()
    second = upload(client, tenant, b"email\ni@example.com\n", **{"Idempotency-Key": "imp-1"}).get_json()

    assert first["id"] == second["id"]
    wait_for_job(db, first["id"])
    assert db["queues"].count_documents({"account_id": tenant.account_id, "type": "contacts.import"}) == 1
    assert len(contacts(db, tenant.account_id)) == 1
    assert ObjectId.is_valid(first["id"])


def test_rates_file_replaces_the_shipped_rates_for_base_value(client, db, settings, tenant, tmp_path):
    from crm_api import create_app
    from crm_workers import jobs
    from crm_workers.actors import JOB_HANDLERS
    from crm_workers.adapters.broker import make_broker
    from crm_workers.runtime import Runtime

    add_pipeline(db, tenant.account_id, "Sales", "USD")
    rates = tmp_path / "rates.json"
    rates.write_text('{"per_usd": {"USD": 1.0, "EUR": 0.5, "GBP": 0.25}}')  # as the shipped rates.json
    # The job recorded by the API on a broker no worker listens to, then run as a worker with RATES_FILE would.
    quiet = make_broker(settings.with_(redis_namespace=f"{settings.redis_namespace}-rates"), for_worker=False)
    api = create_app(settings, db=db, broker=quiet).test_client()
    response = api.post(
        "/v1/crm/deals/import",
        headers=tenant.headers(),
        json={
            "source": {
                "type": "records",
                "records": [
                    {"name": "Euro deal", "value": 100, "currency": "EUR"},
                    {"name": "Pound deal", "value": 100, "currency": "GBP"},
                ],
            },
            "options": {"pipeline": "Sales"},
        },
    )
    assert response.status_code == 202, response.get_json()
    job = jobs.claim(db, response.get_json()["id"], stale_seconds=60)

    JOB_HANDLERS["deals.import"](
        Runtime(settings=settings.with_(rates_file=str(rates)), db=db), job, jobs.Progress(db, job)
    )

    deals = {d["name"]: d for d in db["crm.deals"].find({"account_id": tenant.account_id})}
    assert deals["Euro deal"]["base_value"] == pytest.approx(200.0)
    assert deals["Pound deal"]["base_value"] == pytest.approx(400.0)
    quiet.close()


def test_options_type_business_imports_business_contacts(client, db, worker, tenant):
    content = b"Name,Email,Website\nAcme Corp,hello@acme.example,acme.example\nGlobex,,globex.example\n"

    job = run_import(client, db, tenant, content, "companies.csv", {"type": "business"})

    assert job["status"] == "completed" and job["result"]["counts"]["created"] == 2
    made = {c["name"]: c for c in db["crm.contacts"].find({"account_id": tenant.account_id})}
    assert set(made) == {"Acme Corp", "Globex"} and {c["type"] for c in made.values()} == {"business"}
    assert made["Acme Corp"]["email"] == "hello@acme.example"
    assert not any("first_name" in c for c in made.values())
