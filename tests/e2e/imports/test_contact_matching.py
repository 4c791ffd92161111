"""How a contacts import finds the contact a row is: its external id first, then the dedupe key, falling back to
the other of email and phone; a second import of the same file creates and changes nothing."""

from __future__ import annotations

from crm_workers.jobs import now
from tests.e2e.imports.helpers import contacts, run_import

IDS = {
    "mapping": {"Record ID": "external_id", "First Name": "first_name", "Email": "email", "Phone": "phone"},
    "country": "US",
}


def seed_contact(db, account_id, **fields):
    ts = now().replace(microsecond=0)
    return (
        db["crm.contacts"]
        .insert_one(
            {"account_id": account_id, "type": "person", "tags": [], **fields, "created_at": ts, "updated_at": ts}
        )
        .inserted_id
    )


def errors(db, job) -> dict[int, str]:
    return {e["row"]: e["error"] for e in db["crm.import.errors"].find({"job_id": job["_id"]})}


def test_dedupe_by_email_falls_back_to_the_phone_for_a_row_without_an_email(client, db, worker, tenant):
    phoned = seed_contact(db, tenant.account_id, first_name="Phoned", phone="+14155550100")
    mailed = seed_contact(db, tenant.account_id, first_name="Mailed", email="m@example.com", phone="+14155550199")
    content = b"first_name,email,phone\nBy phone,,(415) 555-0100\nBy email,m@example.com,(415) 555-0100\n"

    job = run_import(client, db, tenant, content, options={"country": "US"})

    assert job["result"]["counts"] == {"created": 0, "updated": 2, "skipped": 0, "failed": 0}
    by_id = {c["_id"]: c for c in contacts(db, tenant.account_id)}
    assert by_id[phoned]["first_name"] == "By phone"
    assert by_id[mailed]["first_name"] == "By email" and by_id[mailed]["phone"] == "+14155550100"


def test_dedupe_by_phone_falls_back_to_the_email_for_a_row_without_a_phone(client, db, worker, tenant):
    mailed = seed_contact(db, tenant.account_id, first_name="Mailed", email="m@example.com")

    job = run_import(
        client,
        db,
        tenant,
        b"first_name,email,phone\nFound,m@example.com,\n",
        options={"dedupe": "phone", "country": "US"},
    )

    assert job["result"]["counts"]["updated"] == 1
    assert [(c["_id"], c["first_name"]) for c in contacts(db, tenant.account_id)] == [(mailed, "Found")]


def test_rows_of_one_file_without_an_email_but_with_the_same_phone_are_one_contact(client, db, worker, tenant):
    job = run_import(
        client,
        db,
        tenant,
        b"first_name,last_name,phone\nAnn,,+1 415 555 0100\n,Lee,4155550100\n",
        options={"country": "US"},
    )

    assert job["result"]["counts"] == {"created": 1, "updated": 1, "skipped": 0, "failed": 0}
    assert [(c["first_name"], c["last_name"]) for c in contacts(db, tenant.account_id)] == [("Ann", "Lee")]


def test_an_external_id_matches_first_and_is_kept_with_its_source(client, db, worker, tenant):
    known = seed_contact(db, tenant.account_id, first_name="Known", email="old@example.com", external_id="HS-1")
    content = b"Record ID,First Name,Email,Phone\nHS-1,Moved,new@example.com,\nHS-2,Fresh,fresh@example.com,\n"

    job = run_import(client, db, tenant, content, options=IDS)

    assert job["result"]["counts"] == {"created": 1, "updated": 1, "skipped": 0, "failed": 0}
    by_id = {c["external_id"]: c for c in contacts(db, tenant.account_id)}
    assert by_id["HS-1"]["_id"] == known and by_id["HS-1"]["email"] == "new@example.com"
    assert by_id["HS-2"]["source"] == "import" and by_id["HS-2"]["first_name"] == "Fresh"


def test_an_external_id_and_an_email_of_two_different_contacts_fail_the_row(client, db, worker, tenant):
    seed_contact(db, tenant.account_id, first_name="One", email="one@example.com", external_id="HS-1")
    seed_contact(db, tenant.account_id, first_name="Two", email="two@example.com")
    before = contacts(db, tenant.account_id)

    job = run_import(
        client, db, tenant, b"Record ID,First Name,Email,Phone\nHS-1,Mixed,two@example.com,\n", options=IDS
    )

    assert job["result"]["counts"] == {"created": 0, "updated": 0, "skipped": 0, "failed": 1}
    assert errors(db, job) == {2: "row 2: its id and its email belong to different contacts"}
    assert contacts(db, tenant.account_id) == before


def test_a_row_whose_keys_point_at_two_rows_of_the_file_fails(client, db, worker, tenant):
    content = b"Record ID,First Name,Email,Phone\nHS-1,A,a@example.com,\n,B,b@example.com,\nHS-1,Both,b@example.com,\n"

    job = run_import(client, db, tenant, content, options=IDS)

    assert job["result"]["counts"] == {"created": 2, "updated": 0, "skipped": 0, "failed": 1}
    assert errors(db, job) == {4: "row 4: its id and its email belong to different rows of this file"}


def test_a_second_import_of_a_contacts_file_creates_and_changes_nothing(client, db, worker, tenant):
    content = (
        b"Record ID,First Name,Email,Phone,Company,Tags\n"
        b"HS-1,Ann,ann@example.com,,Acme,VIP\n"
        b",Bob,,+1 415 555 0101,Acme,\n"
        b"HS-3,Cy,,,,Lead; VIP\n"
        b",Dee,dee@example.com,(415) 555-0102,Globex,\n"
    )
    options = {"mapping": {**IDS["mapping"], "Company": "business", "Tags": "tags"}, "country": "US"}
    first = run_import(client, db, tenant, content, options=options)
    before = {
        name: list(db[name].find({"account_id": tenant.account_id}).sort("_id", 1))
        for name in ("crm.contacts", "crm.tags")
    }

    second = run_import(client, db, tenant, content, options=options)

    assert first["result"]["counts"]["created"] == 4 and first["result"]["businesses_created"] == 2
    assert second["result"]["counts"] == {"created": 0, "updated": 4, "skipped": 0, "failed": 0}
    assert second["result"]["unchanged"] == 4
    assert {
        name: list(db[name].find({"account_id": tenant.account_id}).sort("_id", 1))
        for name in ("crm.contacts", "crm.tags")
    } == before
    assert db["crm.import.undo"].count_documents({"job_id": second["_id"]}) == 0


def test_duplicates_already_in_an_account_do_not_stop_an_import_the_oldest_is_updated(client, db, worker, tenant):
    oldest = seed_contact(db, tenant.account_id, first_name="Old twin", email="twin@example.com")
    younger = seed_contact(db, tenant.account_id, first_name="Young twin", email="twin@example.com")

    job = run_import(client, db, tenant, b"email,first_name\ntwin@example.com,Updated\nnew@example.com,New\n")

    assert job["result"]["counts"] == {"created": 1, "updated": 1, "skipped": 0, "failed": 0}
    names = {c["_id"]: c["first_name"] for c in contacts(db, tenant.account_id)}
    assert names[oldest] == "Updated" and names[younger] == "Young twin" and len(names) == 3
