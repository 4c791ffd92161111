"""An export bigger than one S3 part goes up as a multipart upload, streamed, and downloads whole through its
presigned link (moto's S3 server over HTTP)."""

from __future__ import annotations

import csv
import io

import pytest
import requests

from crm_workers import jobs
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.jobs import now
from crm_workers.services.exports.run import run_export
from tests.conftest import Tenant

pytestmark = pytest.mark.slow

ROWS = 9_000
#: boto3 switches to a multipart upload over 8 MiB: 9,000 rows of about 1 KiB make two parts.
WIDE = "x" * 1_000


@pytest.fixture(scope="module")
def s3(settings):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = settings.with_(storage_url="s3://crm-big/prefix", s3_endpoint_url=f"http://{host}:{port}",
                        s3_region="us-east-1", s3_access_key_id="key", s3_secret_access_key="secret")
    storage_from_settings(s3).client.create_bucket(Bucket="crm-big")
    yield s3
    server.stop()


def test_an_export_over_8_mib_is_a_multipart_upload_that_downloads_whole(s3, db):
    tenant, ts = Tenant(db), now()
    db["crm.contacts"].insert_many([{"account_id": tenant.account_id, "type": "person", "first_name": f"P{i}",
                                     "last_name": WIDE, "email": f"p{i}@example.com", "tags": [],
                                     "created_at": ts, "updated_at": ts} for i in range(ROWS)])
    job, _ = jobs.create_job(db, tenant.account_id, "contacts.export", {
        "filter": {}, "columns": ["email", "first_name", "last_name"], "format": "csv",
        "principal": {"uid": str(tenant.owner_uid), "is_owner": True}})
    job = jobs.claim(db, job["_id"], stale_seconds=60)

    result = run_export(db, s3, job, jobs.Progress(db, job), entity="contact")

    assert result["rows"] == ROWS and result["bytes"] > 8 * 1024 * 1024
    head = storage_from_settings(s3).client.head_object(Bucket="crm-big", Key=f"prefix/{result['file_key']}")
    etag = head["ETag"].strip('"')
    assert "-" in etag and int(etag.rsplit("-", 1)[1]) >= 2  # S3 names a multipart object "<md5>-<parts>"
    body = requests.get(result["download_url"], timeout=60).content
    assert len(body) == result["bytes"] == head["ContentLength"]
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == ROWS and {r["last_name"] for r in rows} == {WIDE}
    assert sorted(int(r["first_name"][1:]) for r in rows) == list(range(ROWS))  # every row once, none cut at a part
