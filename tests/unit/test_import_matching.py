"""Pure rules of reading other systems' files: header names, the label tables, matching by values, the header
row under a preamble, values as other systems write them, encodings, row numbers."""

from __future__ import annotations

import io

import pytest

from crm_workers.adapters.encodings import guess_encoding
from crm_workers.adapters.limits import UnreadableFile
from crm_workers.adapters.tabular import data_blocks, describe
from crm_workers.domain import synonyms
from crm_workers.domain.column_fit import column_misfit
from crm_workers.domain.header_row import find_header_row
from crm_workers.domain.headers import (
    CONTACT_TARGETS,
    DEAL_TARGETS,
    auto_mapping,
    clean_headers,
    match_by_name,
    normalise_header,
)
from crm_workers.domain.matching import match_columns
from crm_workers.domain.values import first_value, is_blank, parse_date, parse_number, split_list

OID = "65f1c0ffee0000000000abcd"


@pytest.mark.parametrize(
    "raw,normal",
    [
        ("E-Mail 2: Adresse", "email2adresse"),
        ("Straße geschäftlich", "strassegeschaftlich"),
        ("Téléphone (bureau)", "telephonebureau"),
        ("  first_name ", "firstname"),
        ("Account.Name", "accountname"),
    ],
)
def test_headers_are_compared_without_case_accents_or_punctuation(raw, normal):
    assert normalise_header(raw) == normal


@pytest.mark.parametrize(
    "entity,key,targets", [("contact", "CONTACT", CONTACT_TARGETS), ("deal", "DEAL", DEAL_TARGETS)]
)
def test_every_label_table_names_real_targets_and_no_label_means_two_targets(entity, key, targets):
    seen: dict[str, tuple[str, str]] = {}
    for module in synonyms.MODULES:
        for target, labels in getattr(module, key).items():
            assert target in targets, (module.SYSTEM, target)
            for label in labels:
                normal = normalise_header(label)
                if normal in seen:
                    assert seen[normal][0] == target, (label, module.SYSTEM, seen[normal])
                seen.setdefault(normal, (target, module.SYSTEM))


@pytest.mark.parametrize(
    "header,target,source",
    [
        ("E-mail 3 - Value", "email", "Google Contacts"),
        ("Organization 1 - Name", "business", "Google Contacts"),
        ("Address 2 - Postal Code", "address.postal_code", "Google Contacts"),
        ("Mobiltelefon", "phone", "Outlook (German)"),
        ("Pays/Région (domicile)", "address.country", "Outlook (French)"),
        ("Dirección de correo electrónico", "email", "Outlook (Spanish)"),
        ("MailingCity", "address.city", "Salesforce"),
        ("Person - Email - Work", "email", "Pipedrive"),
        ("TAGS", "tags", None),
        ("CC", "address.country", "Mailchimp"),
        ("Contact ID", "external_id", "common"),
    ],
)
def test_labels_of_other_systems_name_their_targets(header, target, source):
    found = match_by_name(header, "contact")
    assert (found.target, found.source) == (target, source)


@pytest.mark.parametrize(
    "header,target",
    [
        ("Potential Name", "name"),
        ("Deal - Title", "name"),
        ("STAGENAME", "stage"),
        ("Deal Stage", "stage"),
        ("Closing Date", "expected_close_date"),
        ("Deal ID", "external_id"),
        ("Record ID", "external_id"),
        ("Id", "external_id"),
        ("Associated Contact Email", "contact_email"),
        ("LEADID", "external_id"),
    ],
)
def test_deal_labels_of_other_systems_name_their_targets(header, target):
    assert match_by_name(header, "deal").target == target


def test_of_several_headers_naming_one_target_the_preferred_label_wins_whatever_the_order():
    headers = ["OtherStreet", "OtherCity", "MailingStreet", "MailingCity", "E-mail 2 - Value", "E-mail 1 - Value"]
    mapping, ignored = auto_mapping(headers, "contact", [], {})

    assert mapping == {"MailingStreet": "address.street", "MailingCity": "address.city", "E-mail 1 - Value": "email"}
    assert ignored == ["OtherStreet", "OtherCity", "E-mail 2 - Value"]


def test_a_header_keeps_no_formula_guard():
    assert clean_headers(["'=x", "'@owner", "'plain", "+1"]) == ["=x", "@owner", "'plain", "+1"]


def _match(headers, rows, *, entity="contact", country=None, requested=None, fields=None):
    return match_columns(headers, entity, fields=fields or {}, sample=rows, country=country, requested=requested)


def test_a_column_whose_values_do_not_fit_its_target_is_left_unmatched_with_a_warning():
    m = _match(["Email", "OwnerId", "Deal Status"], [["a@x.com", "005Ec000004oBPNIA2", "Junk"]], entity="deal")

    assert m.mapping == {"Email": "contact_email"}
    assert m.warnings == [
        "`OwnerId` values are not user ids: left unmatched",
        "`Deal Status` values are not deal statuses (open, won, lost): left unmatched",
    ]


@pytest.mark.parametrize(
    "header,target",
    [
        ("email", "email"),
        ("Email", "email"),
        ("phone", "phone"),
        ("owner", "owner"),
        ("custom.tier", "custom.tier"),
        ("tier", "custom.tier"),
        ("Customer Tier", "custom.tier"),
    ],
)
def test_a_header_naming_a_target_or_a_custom_field_is_matched_whatever_its_values(header, target):
    fields = {"tier": {"key": "tier", "label": "Customer Tier", "field_type": "number"}}
    m = _match([header], [["not-an-email"], ["x"]], fields=fields)

    assert m.mapping == {header: target}
    assert m.warnings == [] and m.matches[header]["target"] == target


def test_a_synonym_is_still_checked_by_its_values():
    m = _match(["E-mail Address"], [["not-an-email"], ["x"]])
    assert m.mapping == {} and m.matches["E-mail Address"]["reason"] == "values are not email addresses"


def test_phones_emails_and_addresses_of_several_columns_are_all_matched_in_the_systems_order():
    headers = [
        "Mobile Phone",
        "Primary Phone",
        "Business Phone",
        "E-mail 2 Address",
        "E-mail Address",
        "Home Street",
        "Business Street",
        "Home City",
        "First Name",
    ]
    m = _match(headers, [["+351 912 345 678", "", "+44 20 7946 0958", "b@x.com", "a@x.com", "h", "b", "c", "Ana"]])

    assert set(m.mapping) == set(headers)
    phones = sorted((m.matches[h]["row_by_row"], h) for h in headers[:3])
    assert phones == [(1, "Primary Phone"), (2, "Mobile Phone"), (3, "Business Phone")]
    assert (m.matches["E-mail Address"]["row_by_row"], m.matches["E-mail 2 Address"]["row_by_row"]) == (1, 2)
    assert "its address's parts go together" in m.matches["Home City"]["note"]


def test_a_column_of_user_ids_is_matched_to_the_owner():
    assert _match(["Owner"], [[OID], [""]]).mapping == {"Owner": "owner"}


def test_ids_that_repeat_are_not_the_records_ids():
    assert column_misfit("external_id", ["1", "2", "1"], fields={}, country=None) == "unique ids (values repeat)"
    assert column_misfit("external_id", ["1", "2", ""], fields={}, country=None) is None


def test_national_phones_fit_with_a_country_and_say_so_and_not_without_one():
    rows = [["030 1234567"], ["+49 89 7654321"], ["0170 5550123"]]

    assert _match(["Phone Number"], rows, country="DE").warnings == ["phones without country read as DE"]
    assert _match(["Phone Number"], rows).mapping == {}
    assert "no default country is set, see options.country" in _match(["Phone Number"], rows).warnings[0]


def test_two_address_groups_are_both_matched_and_each_row_reads_its_own():
    m = _match(["Business City", "Home City"], [["", "Porto"], ["", "Lisboa"]])
    assert m.mapping == {"Business City": "address.city", "Home City": "address.city"}
    assert m.order == ["Business City", "Home City"]


def test_of_two_headers_of_a_target_read_once_the_one_with_values_in_the_first_rows_wins():
    m = _match(["Company", "Organization"], [["", "Acme"], ["", "Initech"]])
    assert m.mapping == {"Organization": "business"}
    assert m.matches["Company"] == {"target": None, "reason": "business comes from `Organization`"}


def test_the_mapping_option_decides_for_the_headers_it_names_and_none_ignores_one():
    m = _match(
        ["First Name", "E-mail", "Notes"],
        [["Ana", "a@x.com", "hi"]],
        requested={"Notes": "custom.note", "E-mail": None, "Gone": "email"},
    )

    assert m.mapping == {"First Name": "first_name", "Notes": "custom.note"}
    assert m.matches["E-mail"] == {"target": None, "reason": "mapping option"}
    assert m.warnings == ["options.mapping names `Gone`, which is not a column of the file"]


def test_an_unnamed_column_of_emails_or_plus_phones_is_matched_by_its_values():
    m = _match(["A", "B", "C"], [["a@x.com", "+351 912 345 678", "123"], ["b@x.com", "+44 20 7946 0958", "456"]])
    assert m.mapping == {"A": "email", "B": "phone"}
    assert m.matches["A"]["reason"] == "values look like emails"


def test_a_full_name_alone_is_split_and_says_so():
    assert _match(["Name"], [["Ana Lima"]]).matches["Name"]["note"] == "split into first_name and last_name"
    assert "note" not in _match(["Name", "Last Name"], [["Ana Lima", "Lima"]]).matches["Name"]


def test_a_custom_field_column_fits_by_its_field_type():
    fields = {"size": {"key": "size", "label": "Size", "field_type": "number"}}
    assert _match(["Size"], [["12"], ["3.5"]], fields=fields).mapping == {"Size": "custom.size"}
    # Its label names it: its values are judged row by row (bad ones left out with a warning), never the column.
    assert _match(["Size"], [["big"], ["small"]], fields=fields).mapping == {"Size": "custom.size"}
    assert _match(["Größe"], [["big"], ["small"]], fields=fields, requested={"Größe": "custom.size"}).mapping == {
        "Größe": "custom.size"
    }


@pytest.mark.parametrize(
    "rows,header",
    [
        (
            [
                ["Notes:"],
                ["When exporting your connection data, you may notice…" * 3],
                ["First Name", "Last Name", "URL"],
                ["Ana", "Lima", "https://x"],
            ],
            2,
        ),
        ([["Contacts export"], ["Generated on 2024-01-01"], ["Name", "Email"], ["Ana", "a@x.com"]], 2),
        ([["email", "first_name"], ["a@x.com", "Ana"]], 0),
        ([["Ana", "a@x.com"], ["Bob", "b@x.com"]], 0),  # no header we can tell: the first row, as always
        ([["Name", "Company", ""], ["Ana", "Acme", "x"]], 0),
        ([["email"], ["a@x.com"]], 0),
    ],
)
def test_the_header_row_is_the_first_that_heads_the_rows_below(rows, header):
    assert find_header_row(rows) == header


@pytest.mark.parametrize(
    "raw,iso",
    [
        ("15 Apr, 2021 00:02:00", "2021-04-15T00:02:00+00:00"),
        ("15 Jan 2025", "2025-01-15T00:00:00+00:00"),
        ("2006-06-15T20:47:07.000Z", "2006-06-15T20:47:07+00:00"),
        ("2024-01-23T02:21:49.000+0000", "2024-01-23T02:21:49+00:00"),
        ("2024-01-23 02:21:49 +0000", "2024-01-23T02:21:49+00:00"),
    ],
)
def test_dates_as_other_systems_write_them(raw, iso):
    assert parse_date(raw).isoformat() == iso


@pytest.mark.parametrize(
    "raw,number", [("$22,700.00", (22700.0, "USD")), ("500000.0", (500000.0, None)), ("1.234,56 €", (1234.56, "EUR"))]
)
def test_amounts_as_other_systems_write_them(raw, number):
    assert parse_number(raw) == number


@pytest.mark.parametrize(
    "raw,blank",
    [
        ("0.0.00", True),
        ("00/00/0000", True),
        ("0000-00-00 00:00:00", True),
        (" ", True),
        ("0", False),
        ("0.5.20", False),
    ],
)
def test_placeholders_for_no_date_read_as_empty(raw, blank):
    assert is_blank(raw) is blank


def test_lists_lose_their_quotes_and_googles_system_groups_and_multi_values_take_the_first():
    assert split_list('"Lorem Editors"') == ["Lorem Editors"]
    assert split_list('"VIP","Press"') == ["VIP", "Press"]
    assert split_list("* myContacts ::: Friends ::: Work") == ["Friends", "Work"]
    assert first_value("a@x.com ::: b@x.com") == "a@x.com"


@pytest.mark.parametrize(
    "codec,name",
    [("iso8859_2", "iso-8859-2"), ("cp1251", "windows-1251"), ("koi8_r", "koi8-r"), ("shift_jis", "shift_jis")],
)
def test_legacy_encodings_are_guessed(codec, name):
    text = {
        "iso8859_2": "Imię,Miasto\nŁukasz Żółć,Łódź\nMałgorzata Wiśniewska,Gdańsk\nPaweł Wójcik,Kraków\n",
        "cp1251": "Имя,Город\nИван Петров,Москва\nМария Сидорова,Казань\n",
        "koi8_r": "Имя,Город\nИван Петров,Москва\nМария Сидорова,Казань\n",
        "shift_jis": "名,市区町村\n山田太郎,東京都\n鈴木花子,大阪市\n",
    }[codec] * 3
    assert guess_encoding(text.encode(codec)).encoding == name


def test_a_western_guess_that_other_code_pages_would_make_too_is_unsure():
    guess = guess_encoding("Prénom,Nom\nRené,Dupré\n".encode("cp1252"))
    assert (guess.encoding, guess.sure) == ("windows-1252", False)


def _table(content: bytes):
    def open_file():
        return io.BytesIO(content)

    info = describe(open_file, "f.csv")
    return info, [row for block in data_blocks(open_file, info) for row in block.numbered()]


def test_rows_keep_the_numbers_a_spreadsheet_shows_under_a_preamble_and_across_blank_lines():
    info, rows = _table(
        b'Notes:\n"a long note, with a comma"\n\nemail,name\na@x.com,Ana\n\nb@x.com,"B\nob"\nc@x.com,C\n'
    )

    assert (info.header_row, info.headers) == (4, ["email", "name"])
    assert [n for n, _ in rows] == [5, 7, 8]
    assert rows[1][1] == ["b@x.com", "B\nob"]


def test_a_resumed_read_starts_after_the_rows_done():
    content = b"email\n" + b"".join(b"p%d@x.com\n" % i for i in range(5))
    info = describe(lambda: io.BytesIO(content), "f.csv")
    rest = [row for block in data_blocks(lambda: io.BytesIO(content), info, start_after=3) for row in block.numbered()]
    assert rest == [(5, ["p3@x.com"]), (6, ["p4@x.com"])]


def test_a_line_over_the_cap_fails_the_file_before_it_is_held():
    with pytest.raises(UnreadableFile) as error:
        describe(lambda: io.BytesIO(b"a,b\n" + b"x" * 2_000_000 + b"\n"), "f.csv")
    assert error.value.code == "line_too_long"
