"""The row rules (docs/contract.md §7), pure: several columns of one target read row by row in each system's order,
addresses taken whole, a bad key failing its row, any other bad value left out with a warning (or failing the
row under strict), a bad key kept pending for the record that may hold it."""

from __future__ import annotations

import pytest

from crm_workers.domain import synonyms
from crm_workers.domain.headers import match_by_name
from crm_workers.domain.import_columns import parse_row, parse_rows
from crm_workers.domain.import_rows import RowContext
from crm_workers.domain.matching import match_columns
from crm_workers.domain.row_rules import address_slot

GOOGLE = {
    "phone": ["Phone 1 - Value", "Phone 2 - Value", "Phone 3 - Value"],
    "email": ["E-mail 1 - Value", "E-mail 2 - Value", "E-mail 3 - Value"],
}
VALUES = {"phone": ("+44 20 7946 0958", "+442079460958"), "email": ("Late@Example.com", "late@example.com")}


def _labels(module, target: str) -> list[str]:
    """The module's labels of a target that name it (a label another module claims first is that module's)."""
    labels = GOOGLE.get(target, []) if module is synonyms.google else module.CONTACT.get(target, [])
    return [label for label in labels if (found := match_by_name(label, "contact")) and found.target == target]


def _read(headers: list[str], row: list[str], *, sample=None, **options):
    m = match_columns(headers, "contact", fields={}, sample=sample or [row], country="US")
    from crm_workers.services.imports.run import row_context

    ctx = row_context("contact", m.mapping, m.order, {}, "US", options, day_first={})
    by_row = parse_row(ctx, 2, headers, row)
    assert parse_rows(ctx, [(2, row)], headers) == [by_row]  # the column reader agrees
    return m, by_row


CASES = [
    (module.SYSTEM, target, labels)
    for module in synonyms.MODULES
    for target in ("phone", "email")
    if len(labels := _labels(module, target)) > 1
]


def test_every_system_with_several_phone_or_email_columns_is_covered():
    systems = {system for system, _, _ in CASES}
    assert {
        "Google Contacts",
        "Outlook (English)",
        "Outlook (German)",
        "Outlook (French)",
        "Outlook (Spanish)",
        "HubSpot",
        "Salesforce",
        "Pipedrive",
        "common",
    } <= systems, systems


@pytest.mark.parametrize("system,target,labels", CASES, ids=[f"{s}-{t}" for s, t, _ in CASES])
def test_a_value_only_in_a_later_column_of_its_target_is_kept_for_every_system(system, target, labels):
    raw, read = VALUES[target]
    for position in range(1, len(labels)):
        row = [""] * len(labels)
        row[position] = raw
        if target == "phone":
            row[0] = "12"  # a bad first phone: left out, the later good one taken
        full = [raw] * len(labels) + ["Bo"]  # the file's first rows: every column fits its target
        m, parsed = _read([*labels, "First Name"], [*row, "Ana"], sample=[full, full])
        assert parsed.record[target] == read, (system, labels[position])
        assert parsed.ok
        assert all(m.mapping[label] == target for label in labels)


@pytest.mark.parametrize(
    "labels",
    [
        ["Primary Phone", "Mobile Phone", "Business Phone", "Home Phone", "Other Phone"],
        ["Haupttelefon", "Mobiltelefon", "Telefon geschäftlich", "Telefon privat", "Weiteres Telefon"],
        ["Phone", "MobilePhone", "HomePhone", "OtherPhone"],
        ["Person - Phone", "Person - Phone - Work", "Person - Phone - Mobile", "Person - Phone - Home"],
    ],
)
def test_the_first_valid_phone_in_the_systems_order_wins_whatever_the_files_order(labels):
    numbers = [f"+44 20 7946 09{n:02d}" for n in range(len(labels))]
    headers, row = list(reversed(labels)), list(reversed(numbers))
    _, parsed = _read(headers, row)
    assert parsed.record["phone"] == numbers[0].replace(" ", "")


ADDRESSES = [
    (
        "Outlook (English)",
        ["Business Street", "Business City", "Home Street", "Home City", "Other Street", "Other City"],
    ),
    (
        "Outlook (German)",
        ["Straße geschäftlich", "Ort geschäftlich", "Straße privat", "Ort privat", "Weitere Straße", "Weiterer Ort"],
    ),
    (
        "Outlook (French)",
        ["Rue (bureau)", "Ville (bureau)", "Rue (domicile)", "Ville (domicile)", "Rue (autre)", "Ville (autre)"],
    ),
    (
        "Outlook (Spanish)",
        [
            "Calle del trabajo",
            "Ciudad de trabajo",
            "Calle del domicilio",
            "Ciudad del domicilio",
            "Otra calle",
            "Otra ciudad",
        ],
    ),
    ("Salesforce", ["MailingStreet", "MailingCity", "OtherStreet", "OtherCity"]),
    ("Zoho", ["Mailing Street", "Mailing City", "Other Street", "Other City"]),
    ("Google Contacts", ["Address 1 - Street", "Address 1 - City", "Address 2 - Street", "Address 2 - City"]),
]


@pytest.mark.parametrize("system,headers", ADDRESSES, ids=[s for s, _ in ADDRESSES])
def test_a_row_takes_its_first_address_with_a_value_whole(system, headers):
    assert len({address_slot(h) for h in headers}) == len(headers) // 2, system
    for first in range(0, len(headers), 2):
        row = [""] * len(headers)
        row[first], row[first + 1] = "Street X", "City X"
        if first + 2 < len(headers):
            row[first + 3] = "City of the next address"  # a city alone in a later address: not joined
        _, parsed = _read(headers, row)
        assert parsed.record["address"] == {"street": "Street X", "city": "City X"}, (system, headers[first])
    row = [""] * len(headers)
    row[-1] = "Only a city"
    assert _read(headers, row)[1].record["address"] == {"city": "Only a city"}
    row = [""] * len(headers)
    row[0], row[3] = "A street of the first address", "A city of the second"
    assert _read(headers, row)[1].record["address"] == {"street": "A street of the first address"}  # never mixed


def test_a_bad_key_fails_the_row_and_other_bad_values_are_warnings():
    _, parsed = _read(["Email", "Phone", "Website", "First Name"], ["not-an-email", "12", "no web", "Ana"])
    assert [e.split(":")[0] for e in parsed.errors] == ["row 2, column 'Email', value 'not-an-email'"]
    assert [w.split(":")[0] for w in parsed.warnings] == [
        "row 2, column 'Phone', value '12'",
        "row 2, column 'Website', value 'no web'",
    ]
    assert parsed.legacy_key[:2] == ("email", "not-an-email") and parsed.key_pending


def test_without_an_email_the_phone_is_the_key_and_by_phone_the_email_is_not():
    _, no_email = _read(["Email", "Phone", "First Name"], ["", "12", "Ana"])
    assert not no_email.ok and no_email.legacy_key[:2] == ("phone", "12")
    _, by_phone = _read(["Email", "Phone", "First Name"], ["nope", "+1 415 555 0134", "Ana"], dedupe="phone")
    assert by_phone.ok and by_phone.record["phone"] == "+14155550134" and len(by_phone.warnings) == 1


def test_strict_fails_the_rows_that_would_have_a_warning():
    _, parsed = _read(["Email", "Phone", "First Name"], ["a@example.com", "12", "Ana"], strict=True)
    assert not parsed.ok and parsed.warnings == [] and "column 'Phone'" in parsed.errors[0]
    assert not parsed.key_pending


def test_a_person_whose_only_identity_was_a_bad_non_key_value_fails():
    _, parsed = _read(["Email", "Website"], ["", "no web"], dedupe="none")
    assert parsed.errors == ["row 2: a person needs a name, an email or a phone"]


def test_an_invalid_first_email_falls_to_the_second_with_a_warning():
    headers, row = ["E-mail Address", "E-mail 2 Address", "First Name"], ["broken@", "b@example.com", "Bo"]
    _, parsed = _read(headers, row, sample=[row, ["a@example.com", "", "Al"], ["c@example.com", "", "Cy"]])
    assert parsed.ok and parsed.record["email"] == "b@example.com"
    assert parsed.warnings and "column 'E-mail Address'" in parsed.warnings[0]


def test_deal_rows_fail_only_for_their_id_or_name():
    ctx = RowContext(
        entity="deal",
        mapping={"N": "name", "S": "status", "X": "external_id"},
        fields={},
        country=None,
        default_pipeline="Sales",
    )
    bad_status = parse_row(ctx, 2, ["N", "S", "X"], ["Big", "maybe", "D1"])
    too_long_id = parse_row(ctx, 3, ["N", "S", "X"], ["Big", "won", "x" * 300])
    assert bad_status.ok and len(bad_status.warnings) == 1
    assert not too_long_id.ok and too_long_id.legacy_key[0] == "external_id"
