"""Bad input gets a 4xx with a code (the API) or fails its job at once with a code (the
worker), never a 500 nor a retry counted as transient. Each test sends the finding's exact request and a variant."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from bson import ObjectId

from tests.e2e.imports.helpers import contacts, run_import, upload
from tests.e2e.imports.test_hostile_files import CONTENT_TYPES, MAIN, ROOT_RELS, WORKBOOK
from tests.e2e.imports.test_preview import preview

DEEP = 100_000

RELS = (
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'sharedStrings" Target="sharedStrings.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)
STYLES = (
    f'<styleSheet {MAIN}><numFmts count="1"><numFmt numFmtId="{{fmt}}" formatCode="yyyy-mm-dd"/></numFmts>'
    '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="{fmt}"/></cellXfs></styleSheet>'
)
SHARED = f"<sst {MAIN}><si><t>Ana</t></si></sst>"


def book(rows_xml: str, *, fmt: str = "164") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", RELS)
        z.writestr("xl/styles.xml", STYLES.replace("{fmt}", fmt))
        z.writestr("xl/sharedStrings.xml", SHARED)
        z.writestr("xl/worksheets/sheet1.xml", f"<worksheet {MAIN}><sheetData>{rows_xml}</sheetData></worksheet>")
    return out.getvalue()


HEADER = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>first_name</t></is></c></row>'
)


def person_row(r: str, email: str, *, style: str = "", first: str = '<c r="B{n}" t="s"><v>0</v></c>') -> str:
    n = r if r.isascii() and r.isdigit() else "9"
    return (
        f'<row r="{r}"><c r="A{n}" t="inlineStr"{style}><is><t>{email}</t></is></c>'
        + first.replace("{n}", n)
        + "</row>"
    )


def assert_4xx(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == code


def test_a_json_body_nested_100k_levels_is_a_400(client, db, tenant):
    """The finding's request: a JSON body nested ~100k levels was a RecursionError (500)."""
    body = "[" * DEEP + "]" * DEEP
    for path in ("/v1/crm/contacts/import", "/v1/crm/contacts/import/preview", "/v1/crm/deals/import"):
        response = client.post(path, data=body, content_type="application/json", headers=tenant.headers())
        assert_4xx(response, 400, "invalid_request")
    # Variants: the multipart form's options, and connector records nested past 16 levels.
    deep_options = {"file": (io.BytesIO(b"email\na@x.com\n"), "c.csv"), "options": '{"a":' * 5000 + "1" + "}" * 5000}
    response = client.post(
        "/v1/crm/contacts/import", data=deep_options, content_type="multipart/form-data", headers=tenant.headers()
    )
    assert_4xx(response, 400, "invalid_request")
    assert response.get_json()["error"]["details"] == {"field": "options"}
    record: dict = {"email": "a@x.com"}
    for _ in range(40):
        record = {"n": record}
    response = client.post(
        "/v1/crm/contacts/import", json={"source": {"type": "records", "records": [record]}}, headers=tenant.headers()
    )
    assert_4xx(response, 400, "invalid_request")
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(person_row("2", "style@example.com", first='<c r="B{n}" s="zz"><v>42</v></c>'), id="s=zz"),
        pytest.param(person_row("²", "super@example.com"), id="row r=²"),
        pytest.param(person_row("2", "index@example.com", first='<c r="B{n}" t="s"><v>²</v></c>'), id="string-index-²"),
        pytest.param(
            person_row("2", "digits@example.com", first='<c r="B{n}" t="s"><v>' + "9" * 5000 + "</v></c>"),
            id="string-index-5000-digits",
        ),
        pytest.param(person_row("2", "ref@example.com", first='<c r="B²" t="s"><v>0</v></c>'), id="cell r=B²"),
    ],
)
def test_xlsx_numbers_that_are_no_numbers_are_read_past_not_a_500(client, db, worker, tenant, rows):
    """The finding's files (`s="zz"`, `<row r="²">`) and variants (a string index `²` or of 5000 digits, a cell
    reference `B²`): the preview answers 200 and the import completes with the row."""
    content = book(HEADER + rows)
    email = rows.split("<t>")[1].split("</t>")[0]

    shown = preview(client, tenant, content, "c.xlsx")
    job = run_import(client, db, tenant, content, "c.xlsx")

    assert shown.status_code == 200, shown.get_json()
    assert job["status"] == "completed" and job["attempts"] == 1, job.get("error")
    assert contacts(db, tenant.account_id, email=email)


def test_a_number_format_id_that_is_no_number_is_read_past(client, db, worker, tenant):
    """The finding's `numFmtId="abc"` (in styles.xml's numFmt and in a cell format): no date format, no 500."""
    content = book(HEADER + person_row("2", "fmt@example.com", style=' s="1"'), fmt="abc")

    assert preview(client, tenant, content, "c.xlsx").status_code == 200
    job = run_import(client, db, tenant, content, "c.xlsx")
    assert job["status"] == "completed" and contacts(db, tenant.account_id, email="fmt@example.com")


def test_a_header_with_5000_digits_is_a_header_not_a_500(client, db, worker, tenant):
    """The finding's header `E-mail <5000 digits> - Value` (int() of it raises), as CSV and as XLSX."""
    header = "E-mail " + "7" * 5000 + " - Value"
    csv_body = f"email,{header}\nlong@example.com,x\n".encode()
    sheet = book(
        f'<row r="1"><c r="A1" t="inlineStr"><is><t>{header}</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>email</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>x</t></is></c>'
        '<c r="B2" t="inlineStr"><is><t>sheet@example.com</t></is></c></row>'
    )

    for content, name, email in ((csv_body, "c.csv", "long@example.com"), (sheet, "c.xlsx", "sheet@example.com")):
        shown = preview(client, tenant, content, name)
        assert shown.status_code == 200 and header in shown.get_json()["headers"]
        assert run_import(client, db, tenant, content, name)["status"] == "completed"
        assert contacts(db, tenant.account_id, email=email)


def test_an_encoding_that_cannot_read_a_file_is_a_4xx_or_a_failed_job_with_a_code_never_retried(
    client, db, worker, tenant
):
    """The finding's `options.encoding` of `idna` (refused at the door) and `utf-32` (a UTF-8 file: no BOM);
    variant: `utf-16`. The job fails once with its code; no retry counted as transient."""
    content = b"email,first_name\nenc@example.com,Ena\n"
    refused = preview(client, tenant, content, options={"encoding": "idna"})
    assert_4xx(refused, 400, "invalid_request")
    assert refused.get_json()["error"]["details"][0]["field"] == "options.encoding"
    assert_4xx(upload(client, tenant, content, options={"encoding": "idna"}), 400, "invalid_request")
    for encoding in ("utf-32", "utf-16"):
        assert_4xx(preview(client, tenant, content, options={"encoding": encoding}), 422, "unreadable_encoding")
        job = run_import(client, db, tenant, content, options={"encoding": encoding})
        assert job["status"] == "failed" and job["error"]["code"] == "unreadable_encoding"
        assert job["attempts"] == 1 and "retry_by" not in job


def test_a_storage_key_naming_a_directory_is_404_like_a_missing_key(client, db, tenant):
    """The finding's request: the folder of one's own preview (it answered 500 where a missing key got 404)."""
    shown = preview(client, tenant, b"email\nd@example.com\n").get_json()
    folder = shown["source"]["key"].rsplit("/", 1)[0]
    for path in ("/v1/crm/contacts/import/preview", "/v1/crm/contacts/import", "/v1/crm/deals/import"):
        response = client.post(path, json={"source": {"type": "storage", "key": folder}}, headers=tenant.headers())
        assert_4xx(response, 404, "not_found")
        assert response.get_json()["error"]["details"] == {"field": "source.key"}


@pytest.mark.parametrize("sig", ["é", "\U0001f600", "%ED%A0%80", "a" * 64 + "é"])
def test_a_download_link_with_a_non_ascii_signature_is_403(client, sig):
    """The finding's `GET /files/…&sig=é` (compare_digest of a non-ASCII str raised); variants."""
    key = f"accounts/{ObjectId()}/exports/{ObjectId()}/contacts.csv"
    response = client.get(f"/files/{key}?expires={int(time.time()) + 60}&sig={sig}")
    assert_4xx(response, 403, "forbidden")


def test_a_records_import_is_refused_before_its_table_is_built(client, db, tenant):
    """Finding 4 (the quadratic JSON records): records with distinct keys were made an N x N table before any
    check (6,000 records of 95 KB: 3.5 s). Now 1,001 distinct keys are refused at once, as a file's columns are;
    variant: the preview route, and a body of many records that each bring new keys."""
    records = [{f"k{i}": "v"} for i in range(6000)]
    for path in ("/v1/crm/contacts/import", "/v1/crm/contacts/import/preview"):
        started = time.thread_time()  # this thread's CPU: the refusal's own work, not the machine's load
        response = client.post(path, json={"source": {"type": "records", "records": records}}, headers=tenant.headers())
        assert time.thread_time() - started < 2.0
        assert_4xx(response, 413, "too_many_columns")
        assert response.get_json()["error"]["details"]["field"] == "source.records"
    wide = [{f"c{j}": "v" for j in range(i * 40, i * 40 + 40)} for i in range(30)]  # 1,200 keys over 30 records
    assert_4xx(
        client.post(
            "/v1/crm/contacts/import", json={"source": {"type": "records", "records": wide}}, headers=tenant.headers()
        ),
        413,
        "too_many_columns",
    )
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0
    assert json.dumps(records)  # (the body itself is well-formed JSON)


JOB_ROUTES = [
    "/v1/crm/contacts/export",
    "/v1/crm/deals/export",
    "/v1/crm/contacts/bulk-delete",
    "/v1/crm/deals/bulk-update",
    "/v1/crm/contacts/link",
    "/v1/crm/automations/trigger",
    "/v1/crm/reports/new_contacts",
    "/v1/crm/webhooks",
]


@pytest.mark.parametrize("path", JOB_ROUTES)
def test_a_malformed_body_is_refused_never_read_as_no_filter(client, db, tenant, path):
    """The second audit's finding: `{"filter": {"tags": ` cut short was read as an empty body, so an export (or
    a bulk delete) acted on everything the caller may see. A body that is not a JSON object is refused, naming
    `body` (or `Content-Type` for a form), and no job is made."""
    cut_short = client.post(
        path, data='{"filter": {"tags": ', content_type="application/json", headers=tenant.headers()
    )
    a_list = client.post(path, data='[{"filter": {}}]', content_type="application/json", headers=tenant.headers())
    a_form = client.post(path, data={"filter": "x"}, headers=tenant.headers())

    assert_4xx(cut_short, 400, "invalid_request")
    assert cut_short.get_json()["error"]["details"] == {"field": "body"}
    assert_4xx(a_list, 400, "invalid_request")
    assert a_list.get_json()["error"]["details"] == {"field": "body"}
    assert_4xx(a_form, 415, "unsupported_media_type")
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0
    assert db["crm.webhooks"].count_documents({"account_id": tenant.account_id}) == 0


def test_an_export_with_no_body_still_exports_everything_visible(client, db, tenant):
    """No body at all stays what it was: no filter (the contract's default, docs/contract.md), a job made."""
    response = client.post("/v1/crm/contacts/export", headers=tenant.headers())

    assert response.status_code == 202, response.get_json()
    assert db["queues"].count_documents({"account_id": tenant.account_id, "type": "contacts.export"}) == 1
