"""contacts.import through the API and a real worker, checked in MongoDB afterwards."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from crm_workers.jobs import now
from tests.conftest import wait_for_job
from tests.e2e.imports.helpers import add_field, contacts, run_import, upload

MESSY = (
    b"First Name,Last Name,E-mail,Phone Number,Company,Zip,Tags,Tier,Favourite Colour\n"
    b"Ana,Lima,ANA@Example.COM,(415) 555-0134,Acme,94107,VIP; Newsletter,Gold,blue\n"
    b"Bob,Stone,bob@example.com,+44 20 7946 0958,Acme,,vip,silver,\n"
    b",,,,,,,,\n"
    b"Ana,,ana@example.com,,Globex,,Partner,,\n"
    b"Cid,Moss,not-an-email,,,,,,\n"
    b"Dee,Ray,dee@example.com,12,,,,,\n"
    b"Eve,Kay,eve@example.com,,,,,Platinum,\n"
)


@pytest.fixture
def imported(client, db, worker, tenant):
    add_field(db, tenant.account_id, "tier", "select", options=["Gold", "Silver"], label="Tier")
    job = run_import(client, db, tenant, MESSY, options={"country": "US"})
    return job


def test_a_messy_file_imports_what_is_good_and_counts_the_rest(imported, db, tenant):
    job = imported
    assert job["status"] == "completed"
    # Cid's email (the key) fails his row; Dee's phone and Eve's tier are left out, their rows imported.
    assert job["result"]["counts"] == {"created": 4, "updated": 1, "skipped": 1, "failed": 1}
    assert job["result"]["merged_duplicates"] == 1 and job["result"]["rows_with_warnings"] == 2
    assert job["progress"] == {"total": 7, "processed": 7, "succeeded": 5, "failed": 1, "percent": 100.0}
    assert job["result"]["ignored_columns"] == ["Favourite Colour"]
    assert job["result"]["mapping"]["Phone Number"] == "phone" and job["result"]["mapping"]["Tier"] == "custom.tier"


def test_emails_are_lower_cased_phones_are_e164_and_custom_selects_take_the_option_spelling(imported, db, tenant):
    people = {c["first_name"]: c for c in contacts(db, tenant.account_id, type="person")}

    assert set(people) == {"Ana", "Bob", "Dee", "Eve"}
    assert "phone" not in people["Dee"] and "custom_fields" not in people["Eve"]
    assert people["Ana"]["email"] == "ana@example.com" and people["Ana"]["phone"] == "+14155550134"
    assert people["Bob"]["phone"] == "+442079460958"
    assert people["Bob"]["custom_fields"] == {"tier": "Silver"}
    assert all(c["import_id"] == imported["_id"] for c in people.values())


def test_rows_repeating_an_email_are_merged_into_one_contact(imported, db, tenant):
    ana = contacts(db, tenant.account_id, email="ana@example.com")

    assert len(ana) == 1
    assert ana[0]["last_name"] == "Lima" and ana[0]["address"]["postal_code"] == "94107"
    tags = {t["_id"]: t["name"] for t in db["crm.tags"].find({"account_id": tenant.account_id})}
    assert sorted(tags[t] for t in ana[0]["tags"]) == ["Newsletter", "Partner", "VIP"]
    businesses = {b["_id"]: b["name"] for b in contacts(db, tenant.account_id, type="business")}
    assert sorted(businesses[b] for b in ana[0]["businesses"]) == ["Acme", "Globex"]


def test_tags_are_created_once_case_insensitively_and_businesses_once_and_linked(imported, db, tenant):
    names = sorted(t["name"] for t in db["crm.tags"].find({"account_id": tenant.account_id}))
    businesses = contacts(db, tenant.account_id, type="business")
    bob = contacts(db, tenant.account_id, email="bob@example.com")[0]

    assert names == ["Newsletter", "Partner", "VIP"]
    assert sorted(b["name"] for b in businesses) == ["Acme", "Globex"]
    acme = next(b for b in businesses if b["name"] == "Acme")
    assert bob["businesses"] == [acme["_id"]]
    assert imported["result"]["businesses_created"] == 2


def test_a_business_of_another_account_with_the_same_name_is_never_matched(client, db, worker, tenant, other_tenant):
    ts = now()
    theirs = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": other_tenant.account_id,
                "type": "business",
                "name": "Initech",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    theirs_before = db["crm.contacts"].find_one({"_id": theirs})

    job = run_import(client, db, tenant, b"E-mail,Company\nzed@example.com,Initech\n")

    [mine] = contacts(db, tenant.account_id, type="business")
    [zed] = contacts(db, tenant.account_id, email="zed@example.com")
    assert job["status"] == "completed" and job["result"]["businesses_created"] == 1
    assert mine["name"] == "Initech" and mine["_id"] != theirs and zed["businesses"] == [mine["_id"]]
    assert db["crm.contacts"].find_one({"_id": theirs}) == theirs_before


def test_bad_values_fail_their_row_or_are_left_out_with_row_column_value_and_reason(imported, db, tenant, client):
    errors = {e["row"]: e["error"] for e in db["crm.import.errors"].find({"job_id": imported["_id"]})}
    kinds = {e["row"]: e["kind"] for e in db["crm.import.errors"].find({"job_id": imported["_id"]})}

    assert kinds == {6: "failed", 7: "warning", 8: "warning"}
    assert "row 6, column 'E-mail', value 'not-an-email': not a valid email address" in errors[6]
    assert "row 7, column 'Phone Number', value '12'" in errors[7]
    assert "row 8, column 'Tier', value 'Platinum': not one of the options (Gold, Silver)" in errors[8]
    result = db["crm.contact.import.results"].find_one({"job_id": imported["_id"]})
    assert result["counts"]["failed"] == 1 and result["rows_with_warnings"] == 2
    assert [(e["row"], e["problem"]) for e in result["errors"]] == [(6, "failed"), (7, "warning"), (8, "warning")]


def test_the_errors_csv_has_the_row_number_then_each_row_as_it_was_then_problem_and_error_columns(
    imported, client, tenant
):
    response = client.get(f"/v1/crm/jobs/{imported['_id']}/errors", headers=tenant.headers())

    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.data.decode("utf-8-sig").splitlines()
    assert lines[0] == (
        "row,First Name,Last Name,E-mail,Phone Number,Company,Zip,Tags,Tier,Favourite Colour,problem,error"
    )
    assert lines[1].startswith("6,Cid,Moss,not-an-email,,,,,,,failed,") and "not a valid email" in lines[1]
    assert lines[2].startswith("7,Dee,Ray,dee@example.com,12,,,,,,warning,")
    assert lines[3].startswith("8,Eve,Kay,eve@example.com,,,,,Platinum,,warning,")
    assert len(lines) == 4


def test_one_import_activity_entry_is_written_per_import(imported, db, tenant):
    entries = list(db["crm.activity"].find({"account_id": tenant.account_id, "type": "import"}))

    assert len(entries) == 1 and entries[0]["entity_id"] == imported["_id"]
    assert entries[0]["data"]["counts"]["created"] == 4


def test_running_the_same_import_again_in_upsert_mode_creates_nothing_new(imported, client, db, tenant):
    before = len(contacts(db, tenant.account_id))

    again = run_import(client, db, tenant, MESSY, options={"country": "US"})

    assert again["result"]["counts"]["created"] == 0 and again["result"]["counts"]["updated"] == 5
    assert len(contacts(db, tenant.account_id)) == before
    assert db["crm.tags"].count_documents({"account_id": tenant.account_id}) == 3


def test_another_account_with_the_same_emails_is_left_untouched(client, db, worker, tenant, other_tenant):
    ts = now()
    db["crm.contacts"].insert_one(
        {
            "account_id": other_tenant.account_id,
            "type": "person",
            "first_name": "Other",
            "email": "ana@example.com",
            "tags": [],
            "created_at": ts,
            "updated_at": ts,
        }
    )
    before = contacts(db, other_tenant.account_id)

    job = run_import(client, db, tenant, MESSY, options={"country": "US"})

    assert job["result"]["counts"]["created"] == 4  # Dee's phone is left out; no "tier" field here
    assert job["result"]["rows_with_warnings"] == 1
    assert contacts(db, other_tenant.account_id) == before
    assert db["crm.tags"].count_documents({"account_id": other_tenant.account_id}) == 0


# ------------------------------------------------------------------ file formats


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_common_encodings_are_read(client, db, worker, tenant, encoding):
    content = "First Name;Last Name;Email\nJosé;Müller;jose@example.com\nFrançoise;Ø;fr@example.com\n"

    job = run_import(client, db, tenant, content.encode(encoding))

    assert job["result"]["counts"]["created"] == 2
    assert job["result"]["file"]["delimiter"] == ";"
    assert {(c["first_name"], c["last_name"]) for c in contacts(db, tenant.account_id)} == {
        ("José", "Müller"),
        ("Françoise", "Ø"),
    }


def test_quoted_newlines_ragged_rows_blank_lines_and_odd_headers_are_handled(client, db, worker, tenant):
    content = (
        b"Email\tName\t\tEmail\n"
        b'a@example.com\t"Ann\nMarie"\tx\tdup@example.com\n'
        b"\n"
        b"b@example.com\n"
        b"c@example.com\tCarl\ty\tz\textra\textra\n"
    )

    job = run_import(client, db, tenant, content, "people.tsv")

    assert job["result"]["headers"] == ["Email", "Name", "column_3", "Email (2)"]
    assert job["result"]["counts"] == {"created": 3, "updated": 0, "skipped": 0, "failed": 0}
    by_email = {c["email"]: c for c in contacts(db, tenant.account_id)}
    assert by_email["a@example.com"]["first_name"] == "Ann" and by_email["a@example.com"]["last_name"] == "Marie"
    assert set(by_email) == {"a@example.com", "b@example.com", "c@example.com"}


def test_a_pipe_delimited_file_is_detected_and_commas_and_semicolons_stay_inside_values(client, db, worker, tenant):
    content = (
        b"First Name|Last Name|Email|Company|Tags\n"
        b"Ann|Lee, Jr.|ann@example.com|Acme; Sons|VIP\n"
        b"Bo|Ray|bo@example.com|Globex, Inc.|Press\n"
    )

    job = run_import(client, db, tenant, content, "people.txt")

    assert job["result"]["file"]["delimiter"] == "|"
    assert job["result"]["counts"] == {"created": 2, "updated": 0, "skipped": 0, "failed": 0}
    by_email = {c["email"]: c for c in contacts(db, tenant.account_id, type="person")}
    assert by_email["ann@example.com"]["last_name"] == "Lee, Jr."
    businesses = {c["name"] for c in contacts(db, tenant.account_id, type="business")}
    assert businesses == {"Acme; Sons", "Globex, Inc."}


def test_an_xlsx_file_imports_with_dates_and_numeric_phones(client, db, worker, tenant):
    add_field(db, tenant.account_id, "since", "date", label="Customer Since")
    book = Workbook()
    sheet = book.active
    sheet.append(["Email", "Mobile", "Customer Since"])
    sheet.append(
        [
            "x@example.com",
            4155550134,
            now().replace(year=2023, month=3, day=9, hour=0, minute=0, second=0, microsecond=0, tzinfo=None),
        ]
    )
    sheet.append(["y@example.com", "+33 1 42 68 53 00", "2024-12-25"])
    buffer = io.BytesIO()
    book.save(buffer)

    job = run_import(client, db, tenant, buffer.getvalue(), "people.xlsx", {"country": "US"})

    assert job["result"]["file"]["format"] == "xlsx"
    by_email = {c["email"]: c for c in contacts(db, tenant.account_id)}
    assert by_email["x@example.com"]["phone"] == "+14155550134"
    assert by_email["x@example.com"]["custom_fields"]["since"].date().isoformat() == "2023-03-09"
    assert by_email["y@example.com"]["phone"] == "+33142685300"
    assert by_email["y@example.com"]["custom_fields"]["since"].date().isoformat() == "2024-12-25"


def test_dates_are_read_day_first_when_the_file_shows_it_and_numbers_lose_separators(client, db, worker, tenant):
    add_field(db, tenant.account_id, "renewal", "date")
    add_field(db, tenant.account_id, "revenue", "number")
    add_field(db, tenant.account_id, "active", "checkbox")
    add_field(db, tenant.account_id, "products", "multiselect", options=["CRM", "Mail", "Chat"])
    content = (
        "email,renewal,revenue,active,products\n"
        'a@example.com,01/02/2024,"$1,234.50",yes,crm; mail\n'
        'b@example.com,25/12/2024,"1.234.567,8 €",0,Chat\n'
        "c@example.com,2024-07-04,(250),x,Fax\n"
    ).encode()

    job = run_import(client, db, tenant, content)

    by_email = {c["email"]: c["custom_fields"] for c in contacts(db, tenant.account_id)}
    assert by_email["a@example.com"]["renewal"].date().isoformat() == "2024-02-01"  # the file is d/m/y
    assert by_email["b@example.com"]["renewal"].date().isoformat() == "2024-12-25"
    assert by_email["a@example.com"]["revenue"] == 1234.5 and by_email["b@example.com"]["revenue"] == 1234567.8
    assert by_email["a@example.com"]["active"] is True and by_email["b@example.com"]["active"] is False
    assert by_email["a@example.com"]["products"] == ["CRM", "Mail"]
    assert by_email["c@example.com"]["renewal"].date().isoformat() == "2024-07-04"
    assert "products" not in by_email["c@example.com"]  # `Fax` is no option: left out, the row imported
    warning = db["crm.import.errors"].find_one({"job_id": job["_id"]})
    assert "value 'Fax': not one of the options" in warning["error"] and warning["kind"] == "warning"


def test_us_dates_stay_month_first(client, db, worker, tenant):
    add_field(db, tenant.account_id, "renewal", "date")
    content = b"email,renewal\na@example.com,02/01/2024\nb@example.com,12/31/2024\n"

    run_import(client, db, tenant, content)

    by_email = {c["email"]: c["custom_fields"]["renewal"].date().isoformat() for c in contacts(db, tenant.account_id)}
    assert by_email == {"a@example.com": "2024-02-01", "b@example.com": "2024-12-31"}


# ------------------------------------------------------------------ modes, dedupe, options


def seed_contact(db, account_id, **fields):
    ts = now()
    return (
        db["crm.contacts"]
        .insert_one(
            {"account_id": account_id, "type": "person", "tags": [], **fields, "created_at": ts, "updated_at": ts}
        )
        .inserted_id
    )


def test_create_mode_skips_existing_contacts_and_update_mode_skips_new_ones(client, db, worker, tenant):
    seed_contact(db, tenant.account_id, first_name="Old", email="old@example.com")
    content = b"email,first_name\nold@example.com,Changed\nnew@example.com,New\n"

    created = run_import(client, db, tenant, content, options={"mode": "create"})
    assert created["result"]["counts"] == {"created": 1, "updated": 0, "skipped": 1, "failed": 0}
    assert contacts(db, tenant.account_id, email="old@example.com")[0]["first_name"] == "Old"

    content = b"email,first_name\nold@example.com,Changed\nnewer@example.com,Newer\n"
    updated = run_import(client, db, tenant, content, options={"mode": "update"})
    assert updated["result"]["counts"] == {"created": 0, "updated": 1, "skipped": 1, "failed": 0}
    assert contacts(db, tenant.account_id, email="old@example.com")[0]["first_name"] == "Changed"
    assert not contacts(db, tenant.account_id, email="newer@example.com")


def test_dedupe_by_phone_finds_the_existing_contact(client, db, worker, tenant):
    seed_contact(db, tenant.account_id, first_name="Phoney", phone="+14155550100")

    job = run_import(
        client, db, tenant, b"phone,last_name\n(415) 555-0100,Found\n", options={"dedupe": "phone", "country": "US"}
    )

    assert job["result"]["counts"]["updated"] == 1
    assert [c["last_name"] for c in contacts(db, tenant.account_id)] == ["Found"]


def test_options_tags_and_owner_apply_to_every_created_row(client, db, worker, tenant):
    owner = str(tenant.user_uid)
    run_import(
        client,
        db,
        tenant,
        b"email\na@example.com\nb@example.com\n",
        options={"tags": ["Trade Show"], "owner": owner, "dedupe": "none"},
    )

    people = contacts(db, tenant.account_id)
    tag = db["crm.tags"].find_one({"account_id": tenant.account_id, "name": "Trade Show"})
    assert len(people) == 2 and all(c["tags"] == [tag["_id"]] and str(c["owner"]) == owner for c in people)


def test_an_explicit_mapping_is_used_and_unmapped_headers_are_listed(client, db, worker, tenant):
    job = run_import(
        client,
        db,
        tenant,
        b"Col A,Col B\nx@example.com,Zed\n",
        options={"mapping": {"Col A": "email", "Col B": "first_name"}},
    )

    assert job["result"]["ignored_columns"] == []
    assert [(c["email"], c["first_name"]) for c in contacts(db, tenant.account_id)] == [("x@example.com", "Zed")]


def test_records_from_a_connector_import_like_a_file(client, db, worker, tenant):
    body = {
        "source": {
            "type": "records",
            "records": [
                {"email": "r1@example.com", "first_name": "R1", "address": {"city": "Lisbon"}},
                {"email": "r2@example.com", "first_name": "R2", "tags": ["a", "b"]},
            ],
        },
        "options": {},
    }

    response = client.post("/v1/crm/contacts/import", json=body, headers=tenant.headers())
    job = wait_for_job(db, response.get_json()["id"])

    assert response.status_code == 202 and job["result"]["counts"]["created"] == 2
    by_email = {c["email"]: c for c in contacts(db, tenant.account_id)}
    assert by_email["r1@example.com"]["address"] == {"city": "Lisbon"} and len(by_email["r2@example.com"]["tags"]) == 2


def test_a_cancel_seen_when_a_chunk_is_saved_leaves_counts_equal_to_what_was_written(
    client, db, worker, tenant, hold, monkeypatch
):
    """The cancel comes while a chunk is written: its save is refused (that is how the run sees the cancel), and
    the job's saved counts still count that chunk, as its progress does and as the database holds."""
    from crm_workers.jobs import progress

    monkeypatch.setattr(progress, "PROGRESS_FLUSH_SECONDS", 3600)  # no timed write sees the cancel first
    rows = "".join(f"q{i}@example.com,Q{i}\n" for i in range(500))
    held = hold(tenant.account_id, after_processed=200)
    job_id = upload(client, tenant, ("email,first_name\n" + rows).encode()).get_json()["id"]
    held.reached()

    client.post(f"/v1/crm/jobs/{job_id}/cancel", headers=tenant.headers())
    held.release()  # the third chunk is written, then its save meets the cancel
    job = wait_for_job(db, job_id)

    written = len(contacts(db, tenant.account_id))
    assert job["status"] == "cancelled" and written == 300
    assert job["state"]["counts"]["created"] == job["progress"]["succeeded"] == written
    assert job["state"]["rows_done"] == job["progress"]["processed"] == 300


def test_a_cancelled_import_stops_at_the_next_chunk_with_its_counts(client, db, worker, tenant, hold):
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(500))
    held = hold(tenant.account_id, after_processed=200)  # after its second chunk of 100 rows
    response = upload(client, tenant, ("email,first_name\n" + rows).encode())
    job_id = response.get_json()["id"]
    held.reached()

    client.post(f"/v1/crm/jobs/{job_id}/cancel", headers=tenant.headers())
    held.release_for_the_next_checkpoint_to_write()
    job = wait_for_job(db, job_id)

    assert job["status"] == "cancelled"
    assert sorted(c["email"] for c in contacts(db, tenant.account_id)) == sorted(
        f"p{i}@example.com" for i in range(200)
    )
    assert job["progress"]["processed"] == job["progress"]["succeeded"] == 200 and job["progress"]["total"] == 500
