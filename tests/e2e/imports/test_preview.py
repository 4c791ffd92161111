"""POST /{contacts,deals}/import/preview through the API: the mapping and why, warnings, the first rows parsed,
nothing written, and an import started from the key it returns."""

from __future__ import annotations

import io
import json

from openpyxl import Workbook

from tests.conftest import wait_for_job
from tests.e2e.imports.helpers import add_field, contacts

OWNER_IDS = ["005Ec000004oBPNIA2", "005Ec000004oBPNIA3"]


def preview(
    client, tenant, content: bytes, name: str = "contacts.csv", options: dict | None = None, *, entity: str = "contacts"
):
    data = {"file": (io.BytesIO(content), name)}
    if options is not None:
        data["options"] = json.dumps(options)
    return client.post(
        f"/v1/crm/{entity}/import/preview", data=data, content_type="multipart/form-data", headers=tenant.headers()
    )


def _people_csv(rows: int = 25) -> bytes:
    lines = ["Vorname,Nachname,E-Mail-Adresse,Mobiltelefon,Tier,Primary,OwnerId,Notes,Met On"]
    for i in range(rows):
        email = "not-an-email" if i == 3 else f"Person{i}@Example.com"
        lines.append(
            f"P{i},Q{i},{email},030 1234{i:03d},Gold,alt{i}@example.org,{OWNER_IDS[i % 2]},n{i},"
            f"{(i % 28) + 1}/0{(i % 9) + 1}/2024"
        )
    return ("\n".join(lines) + "\n").encode()


def _no_writes(db, tenant):
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id}) == 0
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0
    assert db["crm.import.errors"].count_documents({"account_id": tenant.account_id}) == 0


def test_a_preview_proposes_a_mapping_with_its_reasons_and_parses_the_first_20_rows_writing_nothing(client, db, tenant):
    add_field(db, tenant.account_id, "customer_tier", "select", options=["Gold", "Silver"], label="Tier")
    add_field(db, tenant.account_id, "met_on", "date", label="First met")
    response = preview(client, tenant, _people_csv(), options={"country": "DE"})
    body = response.get_json()

    assert response.status_code == 200, body
    assert body["file"] == {
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "header_row": 1,
        "name": "contacts.csv",
    }
    assert body["mapping"] == {
        "Vorname": "first_name",
        "Nachname": "last_name",
        "E-Mail-Adresse": "email",
        "Mobiltelefon": "phone",
        "Tier": "custom.customer_tier",
        "Met On": "custom.met_on",
    }
    assert body["matches"]["E-Mail-Adresse"] == {"target": "email", "reason": "synonym", "source": "Outlook (German)"}
    assert body["matches"]["Tier"]["reason"] == "label of custom field"
    assert body["matches"]["Met On"]["reason"] == "key of custom field"
    assert body["matches"]["Primary"] == {"target": None, "reason": "no target of this name"}
    assert body["matches"]["OwnerId"] == {"target": None, "reason": "values are not user ids"}
    assert body["ignored_columns"] == ["Primary", "OwnerId", "Notes"]
    assert "`OwnerId` values are not user ids: left unmatched" in body["warnings"]
    assert "phones without country read as DE" in body["warnings"]
    assert "dates in `Met On` read as day-first (DD/MM/YYYY)" in body["warnings"]
    assert [r["row"] for r in body["rows"]] == list(range(2, 22))
    first = body["rows"][0]
    assert first["values"][:3] == ["P0", "Q0", "Person0@Example.com"]
    assert first["record"] == {
        "type": "person",
        "first_name": "P0",
        "last_name": "Q0",
        "email": "person0@example.com",
        "phone": "+49301234000",
        "custom_fields": {"customer_tier": "Gold", "met_on": "2024-01-01T00:00:00+00:00"},
    }
    bad = body["rows"][3]
    assert bad["errors"][0]["column"] == "E-Mail-Adresse" and "not a valid email address" in bad["errors"][0]["message"]
    assert body["source"]["type"] == "storage" and body["source"]["key"].startswith(f"accounts/{tenant.account_id}/")
    _no_writes(db, tenant)


def test_an_unnamed_column_of_emails_is_matched_by_its_values(client, db, tenant):
    content = b"Who,Primary,Remarks\nAna,ana@example.com,x\nBob,bob@example.com,y\n"
    body = preview(client, tenant, content).get_json()

    assert body["matches"]["Primary"] == {"target": "email", "reason": "values look like emails"}
    assert body["mapping"] == {"Primary": "email"}


def test_a_full_name_column_is_split_into_first_and_last_name(client, tenant):
    body = preview(client, tenant, b"Full Name,Email\nAna Maria Lima,ana@example.com\n").get_json()

    assert body["matches"]["Full Name"]["note"] == "split into first_name and last_name"
    assert body["rows"][0]["record"]["first_name"] == "Ana" and body["rows"][0]["record"]["last_name"] == "Maria Lima"


def test_options_mapping_overrides_one_header_ignores_another_and_the_rest_still_match(client, db, tenant):
    add_field(db, tenant.account_id, "note", "text", label="Remark")
    options = {"mapping": {"Notes": "custom.note", "Mobiltelefon": None}, "country": "DE"}
    body = preview(client, tenant, _people_csv(3), options=options).get_json()

    assert body["mapping"]["Notes"] == "custom.note" and body["matches"]["Notes"]["reason"] == "mapping option"
    assert "Mobiltelefon" not in body["mapping"] and body["matches"]["Mobiltelefon"]["target"] is None
    assert body["mapping"]["Vorname"] == "first_name" and body["mapping"]["E-Mail-Adresse"] == "email"
    assert "phone" not in body["rows"][0]["record"]


def test_an_import_started_from_the_preview_key_imports_the_file_with_the_chosen_mapping(client, db, worker, tenant):
    add_field(db, tenant.account_id, "note", "text", label="Remark")
    body = preview(client, tenant, _people_csv(5), options={"country": "DE"}).get_json()
    mapping = {"Notes": "custom.note", "Mobiltelefon": None}

    started = client.post(
        "/v1/crm/contacts/import",
        headers=tenant.headers(),
        json={"source": body["source"], "options": {"mapping": mapping, "country": "DE"}},
    )
    assert started.status_code == 202, started.get_json()
    job = wait_for_job(db, started.get_json()["id"])

    assert job["status"] == "completed" and job["result"]["counts"]["created"] == 4
    person = contacts(db, tenant.account_id, email="person0@example.com")[0]
    assert person["custom_fields"] == {"note": "n0"} and "phone" not in person
    assert person["first_name"] == "P0" and job["params"]["source"]["key"] == body["source"]["key"]
    assert job["result"]["mapping"]["Notes"] == "custom.note"


def test_a_header_under_linkedin_notes_is_found_and_rows_keep_their_spreadsheet_numbers(client, tenant):
    content = (
        b'Notes:\n"When exporting your connection data, you may notice that some of the email addresses '
        b'are missing. You will only see email addresses for connections who have allowed it."\n\n'
        b"First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
        b"Ana,Lima,https://www.linkedin.com/in/ana,ana@example.com,Acme,CEO,15 Jan 2025\n"
    )
    body = preview(client, tenant, content, "Connections.csv").get_json()

    assert body["file"]["header_row"] == 4
    assert body["rows"][0]["row"] == 5
    assert body["mapping"]["Email Address"] == "email" and body["mapping"]["Company"] == "business"
    assert "the header is on row 4; the rows above it are not imported" in body["warnings"]


def test_an_unsure_encoding_is_said_and_options_encoding_overrides_it(client, tenant):
    content = "Prénom,Nom\nRené,Dupré\n".encode("cp1252")
    guessed = preview(client, tenant, content).get_json()
    chosen = preview(client, tenant, content, options={"encoding": "iso-8859-2"}).get_json()

    assert guessed["file"]["encoding"] == "windows-1252"
    assert "encoding guessed as windows-1252 (unsure): set options.encoding to override" in guessed["warnings"]
    assert guessed["rows"][0]["record"]["first_name"] == "René"
    assert chosen["file"]["encoding"] == "iso-8859-2" and not any("encoding" in w for w in chosen["warnings"])


def test_an_xlsx_preview_reads_dates_and_numbers_as_the_sheet_holds_them(client, tenant):
    from datetime import datetime

    book = Workbook()
    sheet = book.active
    sheet.append(["Deal Name", "Amount", "Close Date", "Pipeline", "Stage"])
    sheet.append(["Big one", 1200.5, datetime(2025, 3, 1), "Sales", "Lead"])
    out = io.BytesIO()
    book.save(out)
    body = preview(client, tenant, out.getvalue(), "deals.xlsx", entity="deals").get_json()

    assert body["file"] == {
        "format": "xlsx",
        "encoding": None,
        "delimiter": None,
        "header_row": 1,
        "name": "deals.xlsx",
    }
    assert body["rows"][0]["record"] == {
        "name": "Big one",
        "value": 1200.5,
        "pipeline": "Sales",
        "stage": "Lead",
        "expected_close_date": "2025-03-01T00:00:00+00:00",
    }


def test_a_records_source_and_a_stored_key_preview_like_a_file(client, db, tenant, other_tenant):
    records = client.post(
        "/v1/crm/contacts/import/preview",
        headers=tenant.headers(),
        json={"source": {"type": "records", "records": [{"email": "a@example.com", "address": {"city": "Porto"}}]}},
    )
    body = records.get_json()
    stored = client.post("/v1/crm/contacts/import/preview", headers=tenant.headers(), json={"source": body["source"]})
    foreign = client.post(
        "/v1/crm/contacts/import/preview", headers=other_tenant.headers(), json={"source": body["source"]}
    )

    assert records.status_code == 200 and body["mapping"] == {"email": "email", "address.city": "address.city"}
    assert stored.status_code == 200 and stored.get_json()["rows"] == body["rows"]
    assert foreign.status_code == 404
    _no_writes(db, tenant)


def test_bad_previews_are_4xx_naming_the_problem(client, tenant):
    empty = preview(client, tenant, b"")
    not_xlsx = preview(client, tenant, b"PK\x03\x04 not really a zip", "x.xlsx")
    bad_target = preview(client, tenant, b"a,b\n1,2\n", options={"mapping": {"a": "nope"}})
    bad_encoding = preview(client, tenant, b"a,b\n1,2\n", options={"encoding": "klingon"})
    bad_type = preview(client, tenant, b"a,b\n", "x.exe")

    assert empty.status_code == 400 and empty.get_json()["error"]["details"]["field"] == "file"
    assert not_xlsx.status_code == 422 and not_xlsx.get_json()["error"]["code"] == "unreadable_file"
    assert bad_target.status_code == 400 and bad_target.get_json()["error"]["details"]["field"] == "options.mapping.a"
    assert bad_encoding.status_code == 400 and "encoding" in bad_encoding.get_json()["error"]["message"]
    assert bad_type.status_code == 415
