"""Pure import rules: header matching, cell parsing, row building, encodings and delimiters."""

from __future__ import annotations

import pytest

from crm_workers.adapters.tabular import detect_delimiter, detect_encoding
from crm_workers.domain.currency import convert
from crm_workers.domain.headers import auto_mapping, clean_headers
from crm_workers.domain.import_columns import parse_row
from crm_workers.domain.import_rows import RowContext
from crm_workers.domain.values import (
    numeric_date_order,
    parse_checkbox,
    parse_date,
    parse_email,
    parse_number,
    parse_phone,
    parse_url,
    split_list,
)


def test_headers_match_targets_ignoring_case_spaces_and_separators_with_synonyms():
    headers = ["E-mail", "Email Address", "Phone Number", "Mobile", "Company", "Zip", "first_name", "LAST-NAME", "?"]
    mapping, ignored = auto_mapping(headers, "contact", ["tier"], {"tier": "Customer Tier"})

    assert mapping == {
        "E-mail": "email",
        "Phone Number": "phone",
        "Company": "business",
        "Zip": "address.postal_code",
        "first_name": "first_name",
        "LAST-NAME": "last_name",
    }
    assert ignored == ["Email Address", "Mobile", "?"]  # a target is taken once


def test_deal_headers_match_deal_targets_and_custom_fields_by_label():
    mapping, _ = auto_mapping(
        ["Deal Name", "Amount", "Close Date", "Customer Tier"], "deal", ["tier"], {"tier": "Customer Tier"}
    )
    assert mapping == {
        "Deal Name": "name",
        "Amount": "value",
        "Close Date": "expected_close_date",
        "Customer Tier": "custom.tier",
    }


def test_empty_and_duplicate_headers_get_usable_names():
    assert clean_headers(["Email", "", None, "email", " Name "]) == [
        "Email",
        "column_2",
        "column_3",
        "email (2)",
        "Name",
    ]


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("  Ana@Example.COM ", "ana@example.com"),
        ("x.y+tag@sub.example.org", "x.y+tag@sub.example.org"),
    ],
)
def test_emails_are_normalised_to_lower_case(raw, expected):
    assert parse_email(raw) == expected


@pytest.mark.parametrize("raw", ["ana", "ana@", "@x.com", "a b@x.com"])
def test_bad_emails_are_refused(raw):
    with pytest.raises(ValueError):
        parse_email(raw)


@pytest.mark.parametrize(
    "raw,country,expected",
    [
        ("(415) 555-0134", "US", "+14155550134"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_phones_become_e164(raw, country, expected):
    assert parse_phone(raw, country) == expected


def test_a_national_phone_without_a_country_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="no default country"):
        parse_phone("415 555 0134", None)


@pytest.mark.parametrize(
    "raw,day_first,iso",
    [
        ("2024-02-01", False, "2024-02-01"),
        ("02/01/2024", False, "2024-02-01"),
        ("01/02/2024", True, "2024-02-01"),
        ("1.2.2024", True, "2024-02-01"),
        ("5 Jan 2024", False, "2024-01-05"),
        ("Jan 5, 2024", False, "2024-01-05"),
        ("3/4/24", False, "2024-03-04"),
    ],
)
def test_dates_in_the_common_formats(raw, day_first, iso):
    assert parse_date(raw, day_first=day_first).date().isoformat() == iso


@pytest.mark.parametrize("raw", ["soon", "13/13/2024", "2024-02-30", "5"])
def test_things_that_are_not_dates_are_refused(raw):
    with pytest.raises(ValueError):
        parse_date(raw)


def test_the_order_of_a_numeric_date_is_known_only_when_a_part_is_over_12():
    assert numeric_date_order("25/12/2024") == "dmy"
    assert numeric_date_order("12/25/2024") == "mdy"
    assert numeric_date_order("01/02/2024") is None and numeric_date_order("2024-01-02") is None


@pytest.mark.parametrize(
    "raw,number,currency",
    [
        ("1,234.56", 1234.56, None),
        ("1.234,56", 1234.56, None),
        ("$1,234", 1234, "USD"),
        ("€ 99,90", 99.9, "EUR"),
        ("(250)", -250, None),
        ("1 000 000", 1000000, None),
        ("12.5 USD", 12.5, "USD"),
        ("-3", -3, None),
        ("1.234.567", 1234567, None),
    ],
)
def test_numbers_with_separators_and_currencies(raw, number, currency):
    assert parse_number(raw) == (number, currency)


@pytest.mark.parametrize("raw", ["abc", "1,2,3.4.5", "", "$"])
def test_things_that_are_not_numbers_are_refused(raw):
    with pytest.raises(ValueError):
        parse_number(raw)


def test_checkboxes_urls_and_lists():
    assert parse_checkbox("Yes") is True and parse_checkbox("0") is False
    with pytest.raises(ValueError):
        parse_checkbox("maybe")
    assert parse_url("example.com/x") == "https://example.com/x"
    with pytest.raises(ValueError):
        parse_url("not a site")
    assert split_list("VIP; vip, Newsletter,,") == ["VIP", "Newsletter"]


def test_a_row_without_name_email_or_phone_fails_and_a_full_name_is_split():
    ctx = RowContext(entity="contact", mapping={"Name": "name", "Tel": "phone"}, fields={}, country="US")

    empty = parse_row(ctx, 2, ["Name", "Tel"], ["", ""])
    named = parse_row(ctx, 3, ["Name", "Tel"], ["Mary Ann Lee", ""])

    assert empty.errors == ["row 2: a person needs a name, an email or a phone"]
    assert named.record["first_name"] == "Mary" and named.record["last_name"] == "Ann Lee"


def test_every_bad_cell_of_a_row_is_reported_the_key_failing_the_row_the_others_warned():
    ctx = RowContext(entity="contact", mapping={"E": "email", "P": "phone", "N": "first_name"}, fields={}, country="US")

    row = parse_row(ctx, 9, ["E", "P", "N"], ["nope", "12", "Ana"])

    assert len(row.errors) == 1 and row.errors[0].startswith("row 9, column 'E', value 'nope'")
    assert len(row.warnings) == 1 and row.warnings[0].startswith("row 9, column 'P', value '12'")


def test_encodings_and_delimiters_are_detected():
    text = "name;city\nJosé;Zürich\n"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(text.encode("utf-8-sig")) == "utf-8-sig"
    assert detect_encoding(text.encode("utf-16")) == "utf-16"
    assert detect_encoding(text.encode("utf-16-le")) == "utf-16-le"
    assert detect_encoding(text.encode("cp1252")) == "windows-1252"
    assert detect_delimiter(text, "f.csv") == ";"
    assert detect_delimiter("a\tb\n1\t2\n", "f.txt") == "\t"
    assert detect_delimiter("a,b\n", "f.tsv") == "\t"


def test_values_convert_to_the_base_currency_through_usd():
    rates = {"USD": 1.0, "EUR": 0.5, "GBP": 0.25}
    assert convert(10, "EUR", "GBP", rates) == 5.0
    assert convert(10, "USD", "USD", rates) == 10.0
    with pytest.raises(KeyError):
        convert(1, "XXX", "USD", rates)
