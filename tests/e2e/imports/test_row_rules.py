"""Imports keep every person (docs/contract.md §6–§7), through the API and a worker, checked in MongoDB: a
column named as a target is never dropped for its values; a bad key fails its row unless a record holds it
exactly; any other bad value is left out with a warning (or fails the row under strict); phones, emails and
addresses of several columns are read row by row; an export imports back creating and changing nothing."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from crm_workers.jobs import now
from tests.conftest import wait_for_job
from tests.e2e.exports.test_exports import download
from tests.e2e.imports.helpers import add_field, contacts, run_import
from tests.e2e.imports.test_export_formats import OUTLOOK_DE, OUTLOOK_EN, _csv
from tests.e2e.imports.test_preview import preview

RESERVED = ["ann@corp.test", "bo@mail.invalid", "old..dots@legacy-co.com", "Mixed.Case@Legacy-Co.com"]


def _seed(db, tenant) -> None:
    """Contacts as other services wrote them: emails on reserved domains or no longer valid, legacy phones,
    tags, a business, custom fields, owners, cells an export guards."""
    add_field(db, tenant.account_id, "tier", "select", options=["Gold", "Silver"])
    add_field(db, tenant.account_id, "since", "date")
    ts = now().replace(microsecond=0)
    vip = (
        db["crm.tags"]
        .insert_one({"account_id": tenant.account_id, "name": "VIP", "created_at": ts, "updated_at": ts})
        .inserted_id
    )
    acme = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "business",
                "name": "Acme",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    people = [
        {
            "first_name": f"P{i}",
            "last_name": "=SUM(A1)" if i == 0 else f"Q{i}",
            "email": email,
            "phone": "12345" if i == 1 else f"+1415555013{i}",
            "tags": [vip] if i % 2 else [],
            "businesses": [acme] if i < 2 else [],
            "owner": tenant.owner_uid if i % 2 else tenant.user_uid,
            "custom_fields": {"tier": "Gold", "since": ts.replace(hour=0, minute=0, second=0)},
        }
        for i, email in enumerate(RESERVED)
    ]
    db["crm.contacts"].insert_many(
        [{"account_id": tenant.account_id, "type": "person", **p, "created_at": ts, "updated_at": ts} for p in people]
    )


def _export(client, db, tenant, fmt: str) -> bytes:
    response = client.post("/v1/crm/contacts/export", json={"format": fmt}, headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(db, response.get_json()["id"])
    assert job["status"] == "completed", job.get("error")
    return download(client, job["result"]["download_url"])


def _everything(db, tenant) -> list[dict]:
    return [
        d
        for c in ("crm.contacts", "crm.tags", "crm.fields")
        for d in db[c].find({"account_id": tenant.account_id}).sort("_id", 1)
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_of_contacts_with_reserved_and_legacy_emails_imports_back_creating_and_changing_nothing(
    client, db, worker, tenant, fmt
):
    _seed(db, tenant)
    before = _everything(db, tenant)
    data = _export(client, db, tenant, fmt)

    again = run_import(client, db, tenant, data, f"export.{fmt}")

    assert again["status"] == "completed", again.get("error")
    counts = again["result"]["counts"]
    assert counts == {"created": 0, "updated": 5, "skipped": 0, "failed": 0}, again["result"]["warnings"]
    assert again["result"]["unchanged"] == 5
    assert again["result"]["matches"]["email"]["target"] == "email"
    assert _everything(db, tenant) == before  # document by document, updated_at included


def test_an_email_column_whose_only_value_is_not_an_email_fails_its_row_and_is_not_dropped(client, db, worker, tenant):
    job = run_import(client, db, tenant, b"Email,First Name\nnot-an-email,Ana\n")

    assert job["result"]["counts"] == {"created": 0, "updated": 0, "skipped": 0, "failed": 1}
    assert job["result"]["mapping"] == {"Email": "email", "First Name": "first_name"}
    assert contacts(db, tenant.account_id) == []
    error = db["crm.import.errors"].find_one({"job_id": job["_id"]})
    assert error["kind"] == "failed" and error["error"].startswith("row 2, column 'Email', value 'not-an-email'")


def test_a_key_that_no_longer_validates_finds_the_record_holding_it_and_an_unknown_one_fails(
    client, db, worker, tenant
):
    ts = now()
    legacy = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": "Old",
                "email": "old..dots@legacy-co.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    content = b"email,first_name\nold..dots@legacy-co.com,Renamed\nnew..dots@legacy-co.com,Nobody\n"

    job = run_import(client, db, tenant, content)

    assert job["result"]["counts"] == {"created": 0, "updated": 1, "skipped": 0, "failed": 1}
    assert [(c["_id"], c["first_name"]) for c in contacts(db, tenant.account_id)] == [(legacy, "Renamed")]
    error = db["crm.import.errors"].find_one({"job_id": job["_id"]})
    assert error["row"] == 3 and "column 'email', value 'new..dots@legacy-co.com'" in error["error"]


def test_a_legacy_key_of_another_account_is_no_record_of_this_one(client, db, worker, tenant, other_tenant):
    ts = now()
    db["crm.contacts"].insert_one(
        {
            "account_id": other_tenant.account_id,
            "type": "person",
            "first_name": "Theirs",
            "email": "old..dots@legacy-co.com",
            "tags": [],
            "created_at": ts,
            "updated_at": ts,
        }
    )

    job = run_import(client, db, tenant, b"email,first_name\nold..dots@legacy-co.com,Mine\n")

    assert job["result"]["counts"]["failed"] == 1 and contacts(db, tenant.account_id) == []
    assert db["crm.contacts"].find_one({"account_id": other_tenant.account_id})["first_name"] == "Theirs"


def test_a_bad_phone_is_left_out_with_a_warning_and_strict_fails_the_row(client, db, worker, tenant):
    content = b"Email,Phone,Website\nana@example.com,12,no web\nbo@example.com,+1 415 555 0134,bo.example.com\n"

    job = run_import(client, db, tenant, content, options={"country": "US"})

    ana = contacts(db, tenant.account_id, email="ana@example.com")[0]
    assert "phone" not in ana and "website" not in ana
    assert job["result"]["counts"]["created"] == 2 and job["result"]["rows_with_warnings"] == 1
    warning = db["crm.import.errors"].find_one({"job_id": job["_id"]})
    assert warning["kind"] == "warning" and "column 'Phone', value '12'" in warning["error"]
    assert "column 'Website', value 'no web'" in warning["error"]

    strict = run_import(client, db, tenant, content.replace(b"ana@", b"cy@"), options={"country": "US", "strict": True})
    assert strict["result"]["counts"] == {"created": 0, "updated": 1, "skipped": 0, "failed": 1}
    assert contacts(db, tenant.account_id, email="cy@example.com") == []


def _outlook_row(labels: dict, **cells) -> bytes:
    name = labels.get
    return _csv([name(h, h) for h in OUTLOOK_EN], [{name(k, k): v for k, v in cells.items()}], "cp1252", ",")


@pytest.mark.parametrize(
    "labels,column",
    [
        (OUTLOOK_DE, "Business Phone"),
        (OUTLOOK_DE, "Home Phone"),
        ({}, "Business Phone"),
        ({}, "Home Phone"),
        ({}, "Other Phone"),
    ],
)
def test_an_outlook_contact_whose_only_phone_is_a_later_column_keeps_it(client, db, worker, tenant, labels, column):
    others = {
        "First Name": "Bo",
        "Last Name": "Lee",
        "E-mail Address": "bo@example.com",
        "Mobile Phone": "",
        column: "089 7654321",
    }
    content = _outlook_row(labels, **others) + b"Ana,,Lima\r\n"  # the first rows hold phones in other columns too
    content = _csv(
        [labels.get(h, h) for h in OUTLOOK_EN],
        [
            {
                labels.get(k, k): v
                for k, v in {
                    "First Name": "Ana",
                    "E-mail Address": "ana@example.com",
                    "Mobile Phone": "0170 5550123",
                    "Business Phone": "030 1234567",
                    "Home Phone": "030 7654321",
                    "Other Phone": "030 1111111",
                }.items()
            },
            {labels.get(k, k): v for k, v in others.items()},
        ],
        "cp1252",
        ",",
    )

    job = run_import(client, db, tenant, content, "Kontakte.csv", {"country": "DE"})

    assert job["result"]["counts"] == {"created": 2, "updated": 0, "skipped": 0, "failed": 0}
    assert contacts(db, tenant.account_id, email="bo@example.com")[0]["phone"] == "+49897654321"
    assert contacts(db, tenant.account_id, email="ana@example.com")[0]["phone"] == "+491705550123"


def test_google_and_hubspot_files_with_numbers_only_in_the_second_or_third_phone_column_keep_them(
    client, db, worker, tenant
):
    google = _csv(
        ["Name", "E-mail 1 - Value", "E-mail 2 - Value", "Phone 1 - Value", "Phone 2 - Value", "Phone 3 - Value"],
        [
            {"Name": "Ana", "E-mail 1 - Value": "ana@example.com", "Phone 1 - Value": "+351 912 345 678"},
            {"Name": "Bo", "E-mail 2 - Value": "bo@example.com", "Phone 2 - Value": "+44 20 7946 0958"},
            {"Name": "Cy", "E-mail 1 - Value": "cy@example.com", "Phone 3 - Value": "+1 415 555 0134"},
        ],
    )
    hubspot = _csv(
        ["First Name", "Email", "Phone Number", "Mobile Phone Number"],
        [
            {"First Name": "Di", "Email": "di@example.com", "Phone Number": "+1 415 555 0135"},
            {"First Name": "Ed", "Email": "ed@example.com", "Mobile Phone Number": "+1 415 555 0136"},
        ],
    )

    assert run_import(client, db, tenant, google, "google.csv")["result"]["counts"]["created"] == 3
    assert run_import(client, db, tenant, hubspot, "hubspot.csv")["result"]["counts"]["created"] == 2

    phones = {c["email"]: c.get("phone") for c in contacts(db, tenant.account_id)}
    assert phones == {
        "ana@example.com": "+351912345678",
        "bo@example.com": "+442079460958",
        "cy@example.com": "+14155550134",
        "di@example.com": "+14155550135",
        "ed@example.com": "+14155550136",
    }


def test_the_preview_says_why_each_column_is_matched_and_which_row_problems_fail_or_warn(client, db, tenant):
    content = b"Email,Phone,Mobile,First Name\nnot-an-email,,,Ana\nbo@example.com,12,+1 415 555 0134,Bo\n"
    body = preview(client, tenant, content, options={"country": "US"}).get_json()

    assert body["matches"]["Email"] == {"target": "email", "reason": "target name"}
    assert body["matches"]["Phone"]["row_by_row"] == 1 and body["matches"]["Mobile"]["row_by_row"] == 2
    ana, bo = body["rows"]
    assert [(e["column"], e["problem"]) for e in ana["errors"]] == [("Email", "failed")]
    assert [(e["column"], e["problem"]) for e in bo["errors"]] == [("Phone", "warning")]
    assert bo["record"]["phone"] == "+14155550134"


def test_an_xlsx_export_is_read_back_with_its_guarded_cells(client, db, worker, tenant):
    _seed(db, tenant)
    sheet = load_workbook(io.BytesIO(_export(client, db, tenant, "xlsx"))).active
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert "'=SUM(A1)" in values or "=SUM(A1)" not in values


def test_corrections_fix_cells_in_the_preview_and_the_import_and_the_fixed_rows_leave_the_errors_file(
    client, db, worker, tenant
):
    content = b"Email,Phone,First Name\nnot-an-email,12,Ana\nbo@example.com,13,Bo\ncy@example.com,,Cy\n"
    first = preview(client, tenant, content, options={"country": "US"}).get_json()
    assert [e["problem"] for e in first["rows"][0]["errors"]] == ["failed", "warning"]
    corrections = {"2": {"Email": "ana@example.com", "Phone": "+1 415 555 0134"}, "3": {"Phone": ""}}

    fixed = client.post(
        "/v1/crm/contacts/import/preview",
        headers=tenant.headers(),
        json={"source": first["source"], "options": {"country": "US", "corrections": corrections}},
    ).get_json()
    assert [r["errors"] for r in fixed["rows"]] == [[], [], []]
    assert fixed["rows"][0]["record"]["email"] == "ana@example.com"
    assert fixed["rows"][0]["values"] == ["ana@example.com", "+1 415 555 0134", "Ana"]
    started = client.post(
        "/v1/crm/contacts/import",
        headers=tenant.headers(),
        json={"source": fixed["source"], "options": {"country": "US", "corrections": corrections}},
    )
    job = wait_for_job(db, started.get_json()["id"])

    assert job["result"]["counts"] == {"created": 3, "updated": 0, "skipped": 0, "failed": 0}
    assert job["result"]["rows_with_warnings"] == 0
    assert contacts(db, tenant.account_id, email="ana@example.com")[0]["phone"] == "+14155550134"
    errors = client.get(f"/v1/crm/jobs/{job['_id']}/errors", headers=tenant.headers())
    assert errors.data.decode("utf-8-sig").splitlines() == ["row,Email,Phone,First Name,problem,error"]


@pytest.mark.parametrize(
    "corrections,field",
    [
        ({"two": {"Email": "x"}}, "options.corrections"),
        ({"2": "x"}, "options.corrections.2"),
        ({"0": {"Email": "x"}}, "options.corrections"),
    ],
)
def test_corrections_that_name_no_row_are_400_naming_the_field(client, tenant, corrections, field):
    response = client.post(
        "/v1/crm/contacts/import/preview",
        headers=tenant.headers(),
        json={
            "source": {"type": "records", "records": [{"email": "a@example.com"}]},
            "options": {"corrections": corrections},
        },
    )
    assert response.status_code == 400, response.get_json()
    details = response.get_json()["error"]["details"]
    fields = [d["field"] for d in details] if isinstance(details, list) else [details["field"]]
    assert any(f.startswith(field) for f in fields), fields


def _seed_deals(db, tenant) -> None:
    """Deals made here (no external_id) and one from another system (its own id), with what a deal carries:
    pipelines and stages, a value in another currency, a won deal closed on another day than expected, a
    contact, a business, tags, owners, a custom field."""
    from datetime import timedelta

    from tests.e2e.imports.helpers import add_pipeline

    add_field(db, tenant.account_id, "region", "text", entity="deal")
    sales, (lead, won) = add_pipeline(db, tenant.account_id)
    ts = now().replace(microsecond=0)
    day = ts.replace(hour=0, minute=0, second=0)
    vip = (
        db["crm.tags"]
        .insert_one({"account_id": tenant.account_id, "name": "VIP", "created_at": ts, "updated_at": ts})
        .inserted_id
    )
    acme = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "business",
                "name": "Acme",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    ann = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": "Ann",
                "email": "ann@example.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    deals = [
        {
            "name": '=HYPERLINK("x")',
            "stage_id": lead,
            "status": "open",
            "value": {"amount": 1200.5, "currency": "EUR"},
            "base_value": 1300.0,
            "contacts": [ann],
            "business_id": acme,
            "tags": [vip],
            "owner": tenant.user_uid,
            "expected_close_date": day + timedelta(days=30),
            "custom_fields": {"region": "North"},
        },
        {
            "name": "Won it",
            "stage_id": won,
            "status": "won",
            "value": {"amount": 99, "currency": "USD"},
            "base_value": 99.0,
            "contacts": [],
            "tags": [],
            "owner": tenant.owner_uid,
            "closed_at": ts - timedelta(days=2),
            "expected_close_date": day - timedelta(days=9),
            "custom_fields": {},
        },
        {
            "name": "Imported before",
            "stage_id": lead,
            "status": "open",
            "external_id": "SF-0061",
            "source": "import",
            "value": {"amount": 5, "currency": "USD"},
            "base_value": 5.0,
            "contacts": [],
            "tags": [],
            "custom_fields": {},
        },
    ]
    db["crm.deals"].insert_many(
        [
            {
                "account_id": tenant.account_id,
                "pipeline_id": sales,
                **d,
                "created_at": ts,
                "updated_at": ts,
                "stage_entered_at": ts,
            }
            for d in deals
        ]
    )


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_deals_export_imports_back_creating_and_changing_nothing(client, db, worker, tenant, fmt):
    """Deals are matched by external_id only: a deal made here is exported with its own id there, so the
    export imports back onto the same deals, document by document unchanged."""
    _seed_deals(db, tenant)
    before = [
        d
        for c in ("crm.deals", "crm.contacts", "crm.tags", "crm.pipelines", "crm.pipeline.stages")
        for d in db[c].find({"account_id": tenant.account_id}).sort("_id", 1)
    ]
    response = client.post("/v1/crm/deals/export", json={"format": fmt}, headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    exported = wait_for_job(db, response.get_json()["id"])
    data = download(client, exported["result"]["download_url"])

    again = run_import(client, db, tenant, data, f"deals.{fmt}", entity="deals")

    assert again["status"] == "completed", again.get("error")
    assert again["result"]["counts"] == {"created": 0, "updated": 3, "skipped": 0, "failed": 0}, again["result"]
    assert again["result"]["unchanged"] == 3
    after = [
        d
        for c in ("crm.deals", "crm.contacts", "crm.tags", "crm.pipelines", "crm.pipeline.stages")
        for d in db[c].find({"account_id": tenant.account_id}).sort("_id", 1)
    ]
    assert after == before


def test_an_exported_deal_id_names_no_deal_of_another_account(client, db, worker, tenant, other_tenant):
    """Another account's deal id in the external_id column is no deal of this one: a new deal, the other
    account's untouched."""
    _seed_deals(db, other_tenant)
    theirs = list(db["crm.deals"].find({"account_id": other_tenant.account_id}).sort("_id", 1))
    pipeline = db["crm.pipelines"].find_one({"account_id": other_tenant.account_id})
    from tests.e2e.imports.helpers import add_pipeline

    add_pipeline(db, tenant.account_id)
    rows = "".join(f"{d['name'].replace(',', ' ')},{d['_id']},Sales\n" for d in theirs[:2])

    job = run_import(client, db, tenant, ("name,external_id,pipeline\n" + rows).encode(), "d.csv", entity="deals")

    assert job["result"]["counts"]["created"] == 2, job["result"]
    mine = list(db["crm.deals"].find({"account_id": tenant.account_id}))
    assert {d["external_id"] for d in mine} == {str(d["_id"]) for d in theirs[:2]}
    assert list(db["crm.deals"].find({"account_id": other_tenant.account_id}).sort("_id", 1)) == theirs
    assert pipeline is not None


def test_under_owner_only_a_deal_id_of_a_deal_the_user_cannot_see_changes_nothing(client, db, worker):
    """A user's file naming, in its external_id column, the id of a deal only the owner sees: that row is
    skipped (a record exists that they cannot change), never a write to the owner's deal."""
    from tests.conftest import Tenant
    from tests.e2e.imports.helpers import add_pipeline

    tenant = Tenant(db, visibility="owner_only")
    sales, (lead, _) = add_pipeline(db, tenant.account_id)
    ts = now().replace(microsecond=0)
    hidden = (
        db["crm.deals"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "name": "Owner's",
                "pipeline_id": sales,
                "stage_id": lead,
                "status": "open",
                "owner": tenant.owner_uid,
                "contacts": [],
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    before = db["crm.deals"].find_one({"_id": hidden})
    response = client.post(
        "/v1/crm/deals/import",
        data={"file": (io.BytesIO(f"name,external_id,pipeline\nMine now,{hidden},Sales\n".encode()), "d.csv")},
        content_type="multipart/form-data",
        headers=tenant.headers(owner=False),
    )
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(db, response.get_json()["id"])

    assert job["status"] == "completed" and job["result"]["counts"]["skipped"] == 1, job["result"]
    assert db["crm.deals"].find_one({"_id": hidden}) == before
    assert db["crm.deals"].count_documents({"account_id": tenant.account_id}) == 1
