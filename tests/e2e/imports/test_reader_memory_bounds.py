"""Hostile XLSX files left the readers' caches (element names, column references) holding
every name they invented, for the life of the worker (186 -> 274 MB over three 700 KB files). Every cache in the
readers is bounded: what three such files leave behind is measured, through the preview and through the import."""

from __future__ import annotations

import gc
import random
import string
import tracemalloc

import pytest

from tests.e2e.imports.helpers import run_import
from tests.e2e.imports.test_hostile_files import MAIN, xlsx
from tests.e2e.imports.test_preview import preview

CELLS = 8_000


def hostile_book(seed: int) -> bytes:
    """A sheet whose every cell has an element name and a column reference of its own (empty cells: nothing
    to import, all to remember)."""
    rng = random.Random(seed)
    letters = string.ascii_uppercase
    cells = "".join(f'<p{seed}x{i}:c r="{"".join(rng.choices(letters, k=8))}{i + 2}"/>' for i in range(CELLS))
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row>'
    person = '<row r="2"><c r="A2" t="inlineStr"><is><t>cache@example.com</t></is></c></row>'
    return xlsx(f"<worksheet {MAIN}><sheetData>{header}{person}<row>{cells}</row></sheetData></worksheet>")


def retained_after(read_three) -> int:
    """Bytes still allocated after three files were read (and everything collectable collected)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        read_three()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.slow  # tracemalloc makes it slow
def test_three_hostile_spreadsheets_leave_the_preview_no_bigger(client, tenant):
    """The finding's request: three previews of files inventing names; before the fix they left ~20 MB."""
    books = [hostile_book(seed) for seed in (1, 2, 3)]

    def read_three():
        for content in books:
            assert preview(client, tenant, content, "c.xlsx").status_code == 200

    retained = retained_after(read_three)
    print(f"retained after three files: {retained / 1e6:.2f} MB")
    assert retained < 2 * 1024 * 1024


@pytest.mark.slow
def test_three_hostile_spreadsheets_leave_the_import_path_no_bigger(client, db, worker, tenant):
    """Variant: the import path (the in-process worker reads them)."""
    books = [hostile_book(seed) for seed in (4, 5, 6)]

    def read_three():
        for content in books:
            assert run_import(client, db, tenant, content, "c.xlsx")["status"] == "completed"

    retained = retained_after(read_three)
    print(f"retained after three files: {retained / 1e6:.2f} MB")
    assert retained < 2 * 1024 * 1024
