"""contacts.export / deals.export on the local backend through the API and a worker; S3 through moto over HTTP."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from bson import ObjectId
from openpyxl import load_workbook

from crm_workers import jobs
from crm_workers.adapters.storage import link_signature, storage_from_settings
from crm_workers.jobs import now
from crm_workers.services.exports.run import run_export
from crm_workers.services.housekeeping import delete_expired_exports
from tests.conftest import Tenant, wait_for_job
from tests.e2e.imports.helpers import add_field, add_pipeline, contacts, run_import


def seed_people(db, tenant):
    add_field(db, tenant.account_id, "tier", "select", options=["Gold", "Silver"])
    add_field(db, tenant.account_id, "balance", "number")
    add_field(db, tenant.account_id, "since", "date")
    ts = now()
    vip = (
        db["crm.tags"]
        .insert_one({"account_id": tenant.account_id, "name": "VIP", "created_at": ts, "updated_at": ts})
        .inserted_id
    )
    acme = (
        db["crm.contacts"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "type": "business",
                "name": "Acme",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    db["crm.contacts"].insert_many(
        [
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": "Zoë",
                "last_name": "Ångström",
                "email": "zoe@example.com",
                "phone": "+14155550134",
                "address": {"city": "Porto", "country": "PT"},
                "tags": [vip],
                "businesses": [acme],
                "owner": tenant.owner_uid,
                "custom_fields": {
                    "tier": "Gold",
                    "balance": -12.5,
                    "since": ts.replace(year=2023, month=5, day=1, hour=0, minute=0, second=0, microsecond=0),
                },
                "created_at": ts,
                "updated_at": ts,
            },
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": '=HYPERLINK("http://evil")',
                "last_name": "@SUM(A1)",
                "email": "mal@example.com",
                "tags": [],
                "owner": tenant.user_uid,
                "custom_fields": {"balance": 3},
                "created_at": ts,
                "updated_at": ts,
            },
        ]
    )


def export(client, db, tenant, body=None, **headers) -> dict:
    response = client.post("/v1/crm/contacts/export", json=body or {}, headers=tenant.headers(**headers))
    assert response.status_code == 202, response.get_json()
    return wait_for_job(db, response.get_json()["id"])


def download(client, url: str) -> bytes:
    parsed = urlparse(url)
    response = client.get(f"{parsed.path}?{parsed.query}")  # no bearer token: the link is the credential
    assert response.status_code == 200, response.status_code
    return response.data


def rows_of(data: bytes) -> list[dict]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_a_csv_export_has_every_standard_and_custom_column_with_names_not_ids(client, db, worker, tenant):
    seed_people(db, tenant)

    job = export(client, db, tenant)

    result = job["result"]
    assert job["status"] == "completed" and result["rows"] == 3 and result["format"] == "csv"
    assert result["columns"][-3:] == ["custom.balance", "custom.since", "custom.tier"]
    data = download(client, result["download_url"])
    assert result["bytes"] == len(data)
    rows = {r["email"] or r["name"]: r for r in rows_of(data)}
    zoe = rows["zoe@example.com"]
    assert (zoe["first_name"], zoe["last_name"], zoe["address.city"]) == ("Zoë", "Ångström", "Porto")
    assert zoe["tags"] == "VIP" and zoe["business"] == "Acme" and zoe["owner"] == str(tenant.owner_uid)
    assert zoe["custom.tier"] == "Gold" and zoe["custom.since"] == "2023-05-01"
    assert zoe["custom.balance"] == "-12.5"  # a plain negative number stays a number
    assert zoe["phone"] == "'+14155550134"  # would run as a formula: neutralised
    assert rows["Acme"]["type"] == "business"


def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(client, db, worker, tenant):
    seed_people(db, tenant)
    ts = now()
    db["crm.contacts"].insert_many(
        [  # every start a spreadsheet runs: = + - @, a tab, a carriage return
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": "-2+3+cmd|' /C calc'!A0",
                "last_name": "\t=1+1",
                "email": "minus@example.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            },
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": "\r=2+2",
                "last_name": "+1415",
                "email": "cr@example.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            },
        ]
    )

    rows = rows_of(download(client, export(client, db, tenant)["result"]["download_url"]))

    by_email = {r["email"]: r for r in rows}
    mal, minus, cr = by_email["mal@example.com"], by_email["minus@example.com"], by_email["cr@example.com"]
    assert mal["first_name"] == '\'=HYPERLINK("http://evil")' and mal["last_name"] == "'@SUM(A1)"
    assert minus["first_name"] == "'-2+3+cmd|' /C calc'!A0" and minus["last_name"] == "'\t=1+1"
    assert cr["first_name"] == "'\r=2+2" and cr["last_name"] == "'+1415"


def test_an_xlsx_export_keeps_numbers_as_numbers_and_text_safe(client, db, worker, tenant):
    seed_people(db, tenant)

    job = export(client, db, tenant, {"format": "xlsx", "columns": ["email", "first_name", "custom.balance"]})

    sheet = load_workbook(io.BytesIO(download(client, job["result"]["download_url"]))).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == ("email", "first_name", "custom.balance")
    body = {v[0]: v for v in values[1:]}
    assert body["zoe@example.com"][2] == -12.5 and body["mal@example.com"][2] == 3
    assert body["mal@example.com"][1].startswith("'=")


def test_a_filter_selects_what_is_exported_and_dry_run_counts_without_a_job(client, db, worker, tenant):
    seed_people(db, tenant)
    body = {"filter": {"tags_any": ["vip"], "q": "zo"}, "columns": ["email"]}

    count = client.post("/v1/crm/contacts/export?dry_run=1", json=body, headers=tenant.headers())
    job = export(client, db, tenant, body)

    assert count.status_code == 200 and count.get_json() == {"matched": 1}
    assert [r["email"] for r in rows_of(download(client, job["result"]["download_url"]))] == ["zoe@example.com"]
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 1


@pytest.mark.parametrize(
    "body,field",
    [
        ({"filter": {"tags_any": ["No Such Tag"]}}, "filter.tags_any"),
        ({"filter": {"owner": "me"}}, "filter.owner"),
        ({"filter": {"colour": "red"}}, "filter.colour"),
        ({"columns": ["email", "shoe_size"]}, "columns"),
        ({"format": "pdf"}, "format"),
    ],
)
def test_a_bad_export_request_is_400_naming_the_field(client, db, tenant, body, field):
    response = client.post("/v1/crm/contacts/export", json=body, headers=tenant.headers())

    assert response.status_code == 400
    details = response.get_json()["error"]["details"]
    fields = [d["field"] for d in details] if isinstance(details, list) else [details["field"]]
    assert field in fields


def test_another_accounts_records_are_never_exported(client, db, worker, tenant, other_tenant):
    seed_people(db, other_tenant)

    job = export(client, db, tenant)

    assert job["result"]["rows"] == 0
    assert rows_of(download(client, job["result"]["download_url"])) == []


def test_under_owner_only_a_user_exports_only_their_own_records(client, db, worker):
    acct = Tenant(db, visibility="owner_only")
    seed_people(db, acct)

    mine = export(client, db, acct, {"columns": ["email"]}, owner=False)
    everything = export(client, db, acct, {"columns": ["email"]})

    assert [r["email"] for r in rows_of(download(client, mine["result"]["download_url"]))] == ["mal@example.com"]
    assert everything["result"]["rows"] == 3


def test_local_links_refuse_expired_tampered_and_traversing_requests(client, db, settings, tenant):
    storage = storage_from_settings(settings)
    key = f"accounts/{tenant.account_id}/exports/x/file.csv"
    storage.put_stream(key, io.BytesIO(b"secret"))

    good, _ = storage.download_url(key, expires_in=60)
    expired, _ = storage.download_url(key, expires_in=-1)
    parsed = urlparse(good)

    assert download(client, good) == b"secret"
    assert client.get(urlparse(expired).path + "?" + urlparse(expired).query).status_code == 403
    assert client.get(parsed.path + "?" + parsed.query.replace("sig=", "sig=0")).status_code == 403
    assert client.get(parsed.path.replace("file.csv", "other.csv") + "?" + parsed.query).status_code == 403
    for traversal in ("../../../../etc/passwd", "accounts/../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd"):
        expires = int(now().timestamp()) + 60
        sig = link_signature(settings.jwt_secret, traversal, expires)
        response = client.get(f"/files/{traversal}?expires={expires}&sig={sig}")
        assert response.status_code in (403, 404) and b"root:" not in response.data


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_export_imported_back_with_no_mapping_creates_nothing_and_loses_no_field(
    client, db, worker, tenant, file_format
):
    seed_people(db, tenant)
    before = {c["_id"]: c for c in contacts(db, tenant.account_id)}
    job = export(client, db, tenant, {"format": file_format})

    again = run_import(client, db, tenant, download(client, job["result"]["download_url"]), f"export.{file_format}")

    assert again["result"]["counts"] == {"created": 0, "updated": 3, "skipped": 0, "failed": 0}
    assert again["result"]["ignored_columns"] == []
    after = {c["_id"]: c for c in contacts(db, tenant.account_id)}
    assert set(after) == set(before)
    volatile = {"updated_at", "import_id"}
    for _id, doc in before.items():
        assert {k: v for k, v in after[_id].items() if k not in volatile} == {
            k: v for k, v in doc.items() if k not in volatile
        }, doc.get("email")


def test_deals_export_names_pipeline_and_stage_and_shows_both_values(client, db, worker, tenant):
    pipeline, (lead, _) = add_pipeline(db, tenant.account_id, "Sales")
    ts = now()
    db["crm.deals"].insert_one(
        {
            "account_id": tenant.account_id,
            "name": "Big",
            "pipeline_id": pipeline,
            "stage_id": lead,
            "value": {"amount": 100, "currency": "EUR"},
            "base_value": 108.7,
            "status": "open",
            "contacts": [],
            "tags": [],
            "created_at": ts,
            "updated_at": ts,
        }
    )

    response = client.post("/v1/crm/deals/export", json={}, headers=tenant.headers())
    job = wait_for_job(db, response.get_json()["id"])

    row = rows_of(download(client, job["result"]["download_url"]))[0]
    assert (row["name"], row["pipeline"], row["stage"], row["value"], row["currency"], row["base_value"]) == (
        "Big",
        "Sales",
        "Lead",
        "100",
        "EUR",
        "108.7",
    )


# ------------------------------------------------------------------ S3 (moto's server over HTTP)


@pytest.fixture(scope="module")
def s3_settings(settings):
    """moto's S3 over HTTP with authentication enforced and real keys (tests/s3_server.py)."""
    from tests.s3_server import AuthenticatedS3

    server = AuthenticatedS3()
    key_id, secret = server.start()
    s3 = settings.with_(
        storage_url="s3://crm-exports/wasabi-prefix",
        s3_endpoint_url=server.endpoint,
        s3_region="us-east-1",
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
    )
    storage_from_settings(s3).client.create_bucket(Bucket="crm-exports")
    yield s3
    server.stop()


def export_to_s3(db, s3_settings, tenant, columns) -> dict:
    job, _ = jobs.create_job(
        db,
        tenant.account_id,
        "contacts.export",
        {
            "filter": {},
            "columns": columns,
            "format": "csv",
            "principal": {"uid": str(tenant.owner_uid), "is_owner": True},
        },
    )
    job = jobs.claim(db, job["_id"], stale_seconds=60)
    return run_export(db, s3_settings, job, jobs.Progress(db, job), entity="contact")


def test_s3_refuses_a_wrong_secret_so_authentication_is_really_checked(s3_settings):
    wrong = storage_from_settings(s3_settings.with_(s3_secret_access_key="not-the-secret"))

    with pytest.raises(wrong.client.exceptions.ClientError) as refused:
        wrong.client.list_objects_v2(Bucket="crm-exports")

    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_an_export_to_s3_downloads_through_its_presigned_link_and_a_tampered_or_expired_link_is_refused(
    s3_settings, db
):
    tenant = Tenant(db)
    seed_people(db, tenant)
    storage = storage_from_settings(s3_settings)

    result = export_to_s3(db, s3_settings, tenant, ["email", "first_name"])

    assert "X-Amz-Expires=86400" in result["download_url"]  # 24 hours by default
    response = requests.get(result["download_url"], timeout=10)
    assert response.status_code == 200 and len(response.content) == result["bytes"]
    rows = rows_of(response.content)
    assert sorted(r["email"] for r in rows) == ["", "mal@example.com", "zoe@example.com"]
    head = storage.client.head_object(Bucket="crm-exports", Key=f"wasabi-prefix/{result['file_key']}")
    assert head["ContentLength"] == result["bytes"]
    # The same link for another file, a signature changed by one character, a link already expired: refused.
    other = result["download_url"].replace("contacts", "contactz", 1)
    url = result["download_url"]
    sig_at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    tampered = url[:sig_at] + ("0" if url[sig_at] != "0" else "1") + url[sig_at + 1 :]
    expired, _ = storage.download_url(result["file_key"], expires_in=-1)
    for bad, code in ((other, "SignatureDoesNotMatch"), (tampered, "SignatureDoesNotMatch"), (expired, "AccessDenied")):
        refused = requests.get(bad, timeout=10)
        assert refused.status_code == 403 and f"<Code>{code}</Code>".encode() in refused.content, bad
        assert b"zoe@example.com" not in refused.content


def test_a_big_export_to_s3_is_uploaded_in_parts(s3_settings, db):
    tenant = Tenant(db)
    ts, note = now(), "x" * 1000
    db["crm.contacts"].insert_many(
        [
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": f"P{i} {note}",
                "email": f"p{i}@example.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
            for i in range(9000)
        ]
    )  # ~9 MB: over boto's 8 MB

    result = export_to_s3(db, s3_settings, tenant, ["email", "first_name"])

    assert result["rows"] == 9000 and result["bytes"] > 8 * 1024 * 1024
    client = storage_from_settings(s3_settings).client
    key = f"wasabi-prefix/{result['file_key']}"
    assert client.head_object(Bucket="crm-exports", Key=key, PartNumber=1)["PartsCount"] == 2
    assert client.head_object(Bucket="crm-exports", Key=key)["ETag"].strip('"').endswith("-2")  # multipart's ETag
    body = requests.get(result["download_url"], timeout=30).content
    assert len(body) == result["bytes"]
    emails = [r["email"] for r in rows_of(body)]
    assert len(emails) == 9000 and set(emails) == {f"p{i}@example.com" for i in range(9000)}


def test_housekeeping_deletes_export_files_past_their_retention(s3_settings, db):
    storage = storage_from_settings(s3_settings)
    account = ObjectId()
    key = f"accounts/{account}/exports/old/contacts.csv"
    storage.put_stream(key, io.BytesIO(b"a,b\n"))
    job, _ = jobs.create_job(db, account, "contacts.export", {})
    job = jobs.claim(db, job["_id"], stale_seconds=60)
    jobs.complete(db, job, {}, {"file_key": key, "download_url": "x"})
    db["queues"].update_one({"_id": job["_id"]}, {"$set": {"finished_at": now() - timedelta(days=8)}})

    deleted = delete_expired_exports(db, storage, retention_days=7, accounts=[account])

    assert deleted == 1 and not storage.exists(key)
    record = db["queues"].find_one({"_id": job["_id"]})
    assert record["file_deleted_at"] and record["result"]["download_url"] is None
    assert delete_expired_exports(db, storage, retention_days=7, accounts=[account]) == 0  # already done


def test_an_exports_link_lives_export_link_seconds_and_its_result_says_until_when(client, db, worker, settings, tenant):
    seed_people(db, tenant)

    job = export(client, db, tenant, {"format": "csv"})

    result = job["result"]
    assert set(result) >= {"download_url", "expires_at", "rows", "bytes", "format"}
    assert result["format"] == "csv" and result["rows"] == 3 and result["bytes"] > 0
    expires = int(parse_qs(urlparse(result["download_url"]).query)["expires"][0])
    assert settings.export_link_seconds == 24 * 3600
    lifetime = expires - job["finished_at"].timestamp()
    assert settings.export_link_seconds - 60 <= lifetime <= settings.export_link_seconds  # signed at the end
    stated = (
        result["expires_at"]
        if isinstance(result["expires_at"], datetime)
        else datetime.fromisoformat(result["expires_at"])
    )
    assert abs(stated.timestamp() - expires) <= 1  # the result says when the link stops working
    assert len(download(client, result["download_url"])) == result["bytes"]
