"""Pure rules of writing imports: deal statuses and ids as other systems write them, merging rows, changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_workers.domain.cells import safe_cell
from crm_workers.domain.import_columns import parse_row
from crm_workers.domain.import_rows import ParsedRow, RowContext, merge_into
from crm_workers.services.imports.changes import MISSING, changed, previous_of

DEALS = RowContext(
    entity="deal",
    mapping={"Id": "external_id", "Name": "name", "Stage": "stage", "Status": "status", "Pipeline": "pipeline"},
    fields={},
    country=None,
    default_pipeline="Sales",
)


def deal(**cells) -> ParsedRow:
    headers = list(cells)
    return parse_row(DEALS, 2, headers, [cells[h] for h in headers])


@pytest.mark.parametrize(
    "written,status",
    [
        ("Closed Won", "won"),
        ("closed-lost", "lost"),
        ("CLOSED_WON", "won"),
        (" won ", "won"),
        ("Lost", "lost"),
        ("Open", "open"),
        ("Closed - Won", "won"),
    ],
)
def test_deal_statuses_as_other_systems_write_them(written, status):
    assert deal(Name="A", Status=written).record["status"] == status


def test_a_deal_without_a_status_takes_it_from_a_stage_that_ends_it_and_has_none_otherwise():
    assert deal(Name="A", Stage="Closed Won").record["status"] == "won"
    assert deal(Name="A", Stage="Closed Lost").record["status"] == "lost"
    assert "status" not in deal(Name="A", Stage="Negotiation").record  # a new deal is open, an update keeps its own
    assert deal(Name="A", Stage="Closed Won", Status="open").record["status"] == "open"


def test_ids_of_other_systems_are_text_without_padding_or_a_spreadsheets_decimal():
    assert deal(Name="A", Id=" 006x0000001YtCrAAK ").record["external_id"] == "006x0000001YtCrAAK"
    assert deal(Name="A", Id=1832.0).record["external_id"] == "1832"
    assert deal(Name="  Padded  ").record["name"] == "Padded"
    assert "an id longer than 200" in deal(Name="A", Id="x" * 201).error_text()


def test_a_deal_needs_a_pipeline_only_when_no_default_is_given():
    no_default = RowContext(entity="deal", mapping={"Name": "name"}, fields={}, country=None)
    assert parse_row(no_default, 5, ["Name"], ["A"]).errors == [
        "row 5: a deal needs a pipeline (a column, or options.pipeline)"
    ]
    assert deal(Name="A").ok


def test_merged_deal_rows_keep_the_later_lookups():
    first, later = deal(Name="A", Stage="Lead", Pipeline="Sales"), deal(Name="A", Stage="Won")
    merge_into(first, later)
    assert first.extra == {"stage": "Won", "pipeline": "Sales"}


def test_changes_are_the_paths_that_differ_and_datetimes_compare_as_stored():
    stored = {
        "name": "A",
        "value": {"amount": 5, "currency": "USD"},
        "due": datetime(2025, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        "custom_fields": {"tier": "Gold"},
    }
    values = {
        "name": "A",
        "value": {"currency": "USD", "amount": 5.0},
        "due": datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "custom_fields.tier": "Silver",
        "address.city": "Porto",
    }

    assert changed(stored, values) == {"custom_fields.tier": "Silver", "address.city": "Porto"}
    assert previous_of(stored, ["custom_fields.tier", "address.city"]) == {
        "custom_fields.tier": "Gold",
        "address.city": MISSING,
    }


def test_headers_are_made_formula_safe_like_cells():
    assert [safe_cell(h) for h in ["row", "=cmd", "@x", "+1", "-1", "Name"]] == [
        "row",
        "'=cmd",
        "'@x",
        "'+1",
        "-1",
        "Name",
    ]
