"""Files from other systems imported twice with no mapping, as a user retrying would: the second import creates
nothing and changes nothing. Deal samples import with no mapping too (the pipelines and stages they name
created), at least 95 % of their rows, with name, value and stage where they belong."""

from __future__ import annotations

import csv

import pytest

from tests.e2e.imports.helpers import run_import
from tests.e2e.imports.test_export_formats import (
    GOOGLE_NEW,
    LINKEDIN_PREAMBLE,
    MAILCHIMP,
    OUTLOOK_DE,
    OUTLOOK_ES,
    _csv,
    _outlook,
)
from tests.e2e.imports.test_realworld_files import MIN_SHARE, REALWORLD, samples


def _records(db, tenant, collection: str) -> list[dict]:
    return sorted(db[collection].find({"account_id": tenant.account_id}), key=lambda d: str(d["_id"]))


def _twice(client, db, tenant, content: bytes, name: str, *, entity: str = "contacts", options=None):
    collection = f"crm.{entity}"
    first = run_import(client, db, tenant, content, name, options, entity=entity, timeout=180)
    assert first["status"] == "completed", first.get("error")
    counts = first["result"]["counts"]
    assert counts["created"] + counts["updated"] >= MIN_SHARE * first["result"]["rows"], counts
    before = _records(db, tenant, collection)

    second = run_import(client, db, tenant, content, name, options, entity=entity, timeout=180)

    assert second["status"] == "completed" and second["result"]["counts"]["created"] == 0, second["result"]
    assert _records(db, tenant, collection) == before  # not a value, not an updated_at changed
    return first, before


@samples
@pytest.mark.parametrize(
    "name",
    ["google-csv-utf16-roundcube.csv", "salesforce-contacts-sfdc-assets.csv", "hubspot-style-contacts-synthetic.csv"],
)
def test_a_contacts_sample_imported_again_creates_and_changes_nothing(client, db, worker, tenant, name):
    first = run_import(client, db, tenant, (REALWORLD / name).read_bytes(), name, timeout=180)
    counts = first["result"]["counts"]
    assert counts["created"] + counts["updated"] >= MIN_SHARE * first["result"]["rows"], counts
    before = _records(db, tenant, "crm.contacts")

    second = run_import(client, db, tenant, (REALWORLD / name).read_bytes(), name, timeout=180)

    assert second["result"]["counts"]["created"] == 0, second["result"]["counts"]
    assert _records(db, tenant, "crm.contacts") == before


WRITTEN = {
    "Kontakte.csv": lambda: _outlook(OUTLOOK_DE, delimiter=";"),
    "contactos.csv": lambda: _outlook(OUTLOOK_ES, encoding="utf-8-sig"),
    "google.csv": lambda: _csv(
        GOOGLE_NEW,
        [
            {
                "First Name": "Ana",
                "Last Name": "Lima",
                "Organization Name": "Acme",
                "Labels": "* myContacts ::: Friends",
                "E-mail 1 - Value": "ana@acme.com ::: ana.lima@acme.com",
                "Phone 1 - Value": "+1 415-555-0134",
            },
            {"First Name": "Bob", "E-mail 1 - Value": "", "Phone 1 - Value": "+44 20 7946 0958"},
        ],
    ),
    "Connections.csv": lambda: (
        LINKEDIN_PREAMBLE.encode()
        + _csv(
            ["First Name", "Last Name", "URL", "Email Address", "Company"],
            [
                {
                    "First Name": "Ana",
                    "Last Name": "Lima",
                    "URL": "https://www.linkedin.com/in/ana",
                    "Email Address": "ana@example.com",
                    "Company": "Acme",
                },
                {"First Name": "Bob", "Email Address": "bob@example.com", "Company": "Globex"},
            ],
        )
    ),
    "audience.csv": lambda: _csv(
        MAILCHIMP,
        [
            {"Email Address": "ana@example.com", "First Name": "Ana", "CC": "US", "TAGS": '"Lorem Editors","VIP"'},
            {"Email Address": "bob@example.com", "First Name": "Bob", "TAGS": '"Lorem Editors"'},
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_a_written_export_imported_again_creates_and_changes_nothing(client, db, worker, tenant, name):
    # Rows with neither email nor phone (a LinkedIn connection who hides their email) are new contacts again:
    # there is nothing to know them by. The files here give every person an email or a phone.
    _twice(client, db, tenant, WRITTEN[name](), name, options={"country": "DE"})


@samples
@pytest.mark.parametrize(
    "name, stage_header, value_header",
    [
        ("hubspot-style-deals-synthetic.csv", "Deal Stage", "Amount"),
        ("salesforce-dataloader-opportunities.csv", "STAGENAME", "AMOUNT"),
        ("zoho-analytics-potentials.csv", "Stage", "Amount"),
    ],
)
def test_a_deals_sample_imports_with_no_mapping_and_again_changes_nothing(
    client, db, worker, tenant, name, stage_header, value_header
):
    options = {"create_missing": True, "pipeline": "Imported"}
    first, deals = _twice(client, db, tenant, (REALWORLD / name).read_bytes(), name, entity="deals", options=options)

    assert first["result"]["mapping"][stage_header] == "stage" and first["result"]["mapping"][value_header] == "value"
    stages = {s["_id"]: s["name"] for s in db["crm.pipeline.stages"].find({"account_id": tenant.account_id})}
    assert all(d.get("name") and d["stage_id"] in stages for d in deals)
    with_amount = sum(
        1 for row in csv.DictReader((REALWORLD / name).open(encoding="utf-8-sig")) if row[value_header].strip()
    )  # some rows of the samples have none
    assert sum(1 for d in deals if (d.get("value") or {}).get("amount") is not None) == with_amount
