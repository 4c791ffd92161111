"""A chunk read by vectorised operations (domain/column_cells.py) gives the same rows as its rows read one at a
time (parse_row: `cell_value`, the libraries behind it): values, errors and their order."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_workers.domain.import_columns import parse_row, parse_rows
from crm_workers.domain.import_rows import RowContext
from crm_workers.domain.row_rules import plan

TARGETS = [
    "email",
    "phone",
    "address.street",
    "address.city",
    "first_name",
    "last_name",
    "name",
    "email",
    "phone",
    "website",
    "tags",
    "owner",
    "business",
    "type",
    "company",
    "address.city",
    "address.country",
    "custom.size",
    "custom.kind",
    "custom.multi",
    "custom.when",
    "custom.flag",
    "custom.mail",
    "custom.tel",
    "custom.site",
    "custom.note",
    "custom.missing",
    "external_id",
    "value",
    "currency",
    "status",
    "expected_close_date",
    "pipeline",
    "stage",
    "contact_email",
    "notes",
]
FIELDS = {
    "size": {"key": "size", "field_type": "number"},
    "kind": {"key": "kind", "field_type": "select", "options": ["Gold", {"value": "Silver"}, "bronze"]},
    "multi": {"key": "multi", "field_type": "multiselect", "options": ["A", "b", "C d"]},
    "when": {"key": "when", "field_type": "date"},
    "flag": {"key": "flag", "field_type": "checkbox"},
    "mail": {"key": "mail", "field_type": "email"},
    "tel": {"key": "tel", "field_type": "phone"},
    "site": {"key": "site", "field_type": "url"},
    "note": {"key": "note", "field_type": "text"},
}
DEAL_TARGETS = {"value", "currency", "status", "expected_close_date", "pipeline", "stage", "contact_email"}
TEXTS_SAMPLED = [
    "",
    " ",
    "  \t",
    "Ana",
    "ana@example.com",
    "ANA@Example.COM",
    "josé@x.fr",
    "a@b",
    "not an email",
    "(415) 555-0123",
    "+44 20 7946 0123",
    "555-0123",
    "0044 20 7946 0123",
    "12",
    "x",
    "business",
    "Person",
    "person",
    "VIP; vip, Press",
    '"VIP","Press"',
    "* myContacts, Lead",
    "Gold",
    "gold",
    "silver",
    "A; b; zz",
    "a, c D",
    "2024-05-01",
    "05/01/2024",
    "13/01/2024",
    "1 Jan 2024",
    "0.0.00",
    "$1,234.50",
    "1.234,5 EUR",
    "(12)",
    "abc",
    "usd",
    "US",
    "pt",
    "Portugal",
    "Closed Won",
    "lost",
    "open",
    "maybe",
    "yes",
    "no",
    "✓",
    "example.com",
    "http://x",
    "ftp://x.y",
    "'=SUM(A1)",
    "'+1",
    '=HYPERLINK("x")',
    "'",
    "a ::: b",
    "x" * 300,
    str(ObjectId()),
    "1832.0",
    "Acme",
    "acme",
    "Ana Lima",
    "Pipeline A",
    "Stage 1",
    "2024-02-30",
    "2024-12-31",
    "31/12/2024",
    "12/31/2024",
    "1/2/0099",
    "01.02.2024",
    "2024-1-5",
    "-0",
    "-12",
    "007",
    "12.50",
    "-3.0",
    "1" * 16,
    "9" * 15 + ".5",
    "1,5",
    "١٢",
    "２０２４-01-01",
]
TEXTS = st.one_of(
    st.sampled_from(TEXTS_SAMPLED),
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(" \t\xa0\u3000\x1c\x85\u200ba@.+-()0123456789'="), max_size=12),
    st.sampled_from(["", " "]).map(lambda pad: pad + "+1 415 555 0123" + pad),
    st.from_regex(r"\+?[0-9]{1,3}[ .\-]?[0-9]{2,4}[ .\-]?[0-9]{2,8}", fullmatch=True),
    st.from_regex(r"[a-zA-Z0-9._%+\-]{1,12}@[a-zA-Z0-9\-]{1,10}\.(com|org|de|co\.uk|x)", fullmatch=True),
)
CELLS = st.one_of(
    TEXTS,
    st.none(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.just(datetime(2024, 1, 2)),
)


@st.composite
def chunks(draw):
    width = draw(st.integers(1, 7))
    headers = [f"H{i}" for i in range(width)]
    mapping = {h: draw(st.sampled_from(TARGETS)) for h in headers if draw(st.booleans()) or h == "H0"}
    rows = []
    cells = TEXTS if draw(st.booleans()) else CELLS  # text alone: what a CSV gives, read by vectorised operations
    for n in range(draw(st.integers(1, 12))):
        values = draw(st.lists(cells, min_size=max(0, width - 1), max_size=width + 1))
        rows.append((n + 2, values))
    if draw(st.booleans()) and rows:  # repeats, as real files have them
        rows += [(len(rows) + 2 + i, list(values)) for i, (_, values) in enumerate(rows)]
    # Several columns of one target read row by row, addresses by slot (domain/row_rules.py).
    if draw(st.booleans()):
        headers = [draw(st.sampled_from(["", "Business ", "Home ", "Other ", "Address 2 "])) + h for h in headers]
        mapping = {
            draw(st.sampled_from(["", "Business ", "Home ", "Other ", "Address 2 "])) + h: t for h, t in mapping.items()
        }
        mapping = {h: t for h, t in mapping.items() if h in headers} or {headers[0]: "email"}
    alternatives, slots = plan(mapping, draw(st.permutations(headers)))
    ctx = RowContext(
        entity=draw(st.sampled_from(["contact", "deal"])),
        mapping=mapping,
        fields=FIELDS,
        country=draw(st.sampled_from([None, "US", "GB"])),
        day_first={h: draw(st.booleans()) for h in headers},
        contact_type=draw(st.sampled_from(["person", "business"])),
        default_pipeline=draw(st.sampled_from([None, "Sales"])),
        dedupe=draw(st.sampled_from(["email", "phone", "none"])),
        strict=draw(st.booleans()),
        alternatives=alternatives,
        slots=slots,
    )
    tags = draw(st.sampled_from([(), ("Imported",), ("vip", "New")]))
    owner = draw(st.sampled_from([None, ObjectId("65f000000000000000000001")]))
    return ctx, headers, rows, tags, owner


def _shape(parsed):
    return (parsed, list(parsed.record), {k: list(v) for k, v in parsed.record.items() if isinstance(v, dict)})


@settings(
    max_examples=int(os.environ.get("FAST_PATH_EXAMPLES", 400)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(chunks())
def test_a_chunk_parsed_by_columns_equals_it_parsed_row_by_row(chunk):
    ctx, headers, rows, tags, owner = chunk
    by_rows = [parse_row(ctx, n, headers, values, default_tags=tags, owner=owner) for n, values in rows]
    by_columns = parse_rows(ctx, rows, headers, default_tags=tags, owner=owner, vectorise=True)
    assert [_shape(p) for p in by_columns] == [_shape(p) for p in by_rows]


def test_a_custom_multiselect_value_is_its_rows_own_list():
    ctx = RowContext(entity="contact", mapping={"M": "custom.multi", "N": "first_name"}, fields=FIELDS, country=None)
    first, second = parse_rows(ctx, [(2, ["A; b", "Ana"]), (3, ["A; b", "Bo"])], ["M", "N"])
    first.record["custom_fields"]["multi"].append("C d")
    assert second.record["custom_fields"]["multi"] == ["A", "b"]


PLAIN = st.one_of(
    st.from_regex(r"-?[0-9]{1,17}(\.[0-9]{0,16})?", fullmatch=True),
    st.from_regex(r"[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,5}", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
)


@settings(
    max_examples=int(os.environ.get("FAST_PATH_EXAMPLES", 400)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(PLAIN, min_size=1, max_size=8),
    st.sampled_from(["value", "expected_close_date", "custom.size", "custom.when"]),
    st.booleans(),
)
def test_dates_and_numbers_read_by_their_column_equal_parse_date_and_parse_number(cells, target, day_first):
    ctx = RowContext(
        entity="deal",
        mapping={"C": target},
        fields=FIELDS,
        country=None,
        day_first={"C": day_first},
        default_pipeline="Sales",
    )
    rows = [(n + 2, [cell]) for n, cell in enumerate(cells)]
    by_rows = [parse_row(ctx, n, ["C"], values) for n, values in rows]
    assert [_shape(p) for p in parse_rows(ctx, rows, ["C"], vectorise=True)] == [_shape(p) for p in by_rows]


def test_arrow_strips_what_str_strip_strips():
    """column_cells.stripped trims with Arrow's Unicode whitespace: the same characters as str.strip."""
    spaces = [c for c in map(chr, range(0x110000)) if c.isspace()]
    others = ["\u200b", "\ufeff", "\x00", "x"]
    column = [f"{c}{c}a{c}" for c in spaces + others]
    rows = [(n + 2, [cell]) for n, cell in enumerate(column)]
    ctx = RowContext(entity="contact", mapping={"C": "first_name"}, fields={}, country=None)
    by_rows = [parse_row(ctx, n, ["C"], values) for n, values in rows]
    assert [_shape(p) for p in parse_rows(ctx, rows, ["C"], vectorise=True)] == [_shape(p) for p in by_rows]


SAMPLES = [
    *TEXTS_SAMPLED,
    "'-1",
    "'@x",
    "'\t1",
    " '=1 ",
    "(415) 555-0123",
    "415 555 0123",
    "415.555.0123",
    "1 415 555 0123",
    "011 44 20 7946 0123",
    "+1 415 555 0123",
    "+44 20 7946 0123",
    "+44 (20) 7946 0123",
    "+44/20/7946/0123",
    "+1 415 555 012x",
    "+44 20 7946 012a",
    "415 555 012x",
    "+1 (415) 555-0123",
    "+1 415 555 0123 x9",
    "+4420 7946.0123",
    "(415)555-0123",
    "415/555/0123",
    "0044 20 7946 0123",
    "00 44 20 7946 0123",
    "+0 12",
    "+999 123",
    "+1" + "2" * 45,
    "020 7946 0123",
    "20 7946 0123",
    "7946 0123",
    "+49 30 1234567",
    "+33 1 23 45 67 89",
    "+7 495 123-45-67",
    "+86 10 1234 5678",
    "+1-800-555-0199",
    "1-800-FLOWERS",
    "ann@example.com",
    "Ann.Lee@Example.CO.UK",
    "ann@exa_mple.com",
    "ann@-example.com",
    "a" * 250 + "@x.com",
    "ann@münchen.de",
    "josé@example.com",
    "ann@example",
    "ann@@example.com",
    " ann@example.com\t",
    "ann@example.com ::: bob@example.com",
    "2024-05-01",
    "2024-13-01",
    "01/05/2024",
    "31/04/2024",
    "1.5.2024",
    "1-5-0099",
    "0.0.00",
    "0000-00-00",
    "-0",
    "12",
    "-12.50",
    "123456789012345",
    "1234567890123456",
    "1.5e3",
    " 7 ",
]


@pytest.mark.parametrize("country", [None, "US", "GB", "DE"])
@pytest.mark.parametrize("target", sorted(set(TARGETS)))
def test_every_sample_cell_reads_the_same_by_its_column_and_alone(target, country):
    """Each sample cell (and the same cells shuffled into one column, with repeats) read by vectorised
    operations gives what the cell gives read alone, in every target and country."""
    for day_first in (False, True):
        ctx = RowContext(
            entity="deal" if target in DEAL_TARGETS else "contact",
            mapping={"C": target, "N": "name"},
            fields=FIELDS,
            country=country,
            day_first={"C": day_first},
            default_pipeline="Sales",
        )
        rows = [(n + 2, [cell, "Row name"]) for n, cell in enumerate(SAMPLES * 2)]
        by_rows = [parse_row(ctx, n, ["C", "N"], values) for n, values in rows]
        by_column = parse_rows(ctx, rows, ["C", "N"], vectorise=True)
        assert [_shape(p) for p in by_column] == [_shape(p) for p in by_rows]


def test_a_lone_surrogate_in_a_text_column_is_read_as_each_cell_alone():
    """A str Arrow cannot hold (a lone surrogate, which a correction or a connector may carry): the column is
    read a cell at a time, as parse_row reads it, instead of failing the block."""
    ctx = RowContext(entity="contact", mapping={"C": "first_name", "E": "email"}, fields={}, country=None)
    rows = [(n + 2, ["\ud800" if n % 2 else "Ana", "\ud800@x.com"]) for n in range(70)]
    by_rows = [parse_row(ctx, n, ["C", "E"], values) for n, values in rows]
    assert [_shape(p) for p in parse_rows(ctx, rows, ["C", "E"], vectorise=True)] == [_shape(p) for p in by_rows]
