"""A service token reads job records, never CRM data (docs/contract.md §3). No download link,
storage key, connector record or error row reaches it, through the job routes or the operator overview."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from bson import ObjectId

from crm_workers import jobs
from crm_workers.domain.principal import issue_service_token
from tests.conftest import JWT_SECRET, wait_for_job

SERVICE = {"Authorization": f"Bearer {issue_service_token(JWT_SECRET, name='operator')}"}


def seen_by_service(client, job_id, account_id) -> list[str]:
    """Every answer a service token can get that carries the job, as text."""
    one = client.get(f"/v1/crm/jobs/{job_id}", headers=SERVICE)
    listed = client.get(f"/v1/crm/jobs?account_id={account_id}&per_page=200", headers=SERVICE)
    operator = client.get("/v1/crm/operator", headers=SERVICE)
    assert one.status_code == listed.status_code == operator.status_code == 200
    assert job_id in listed.get_data(as_text=True)
    return [one.get_data(as_text=True), listed.get_data(as_text=True), operator.get_data(as_text=True)]


def test_a_service_token_never_gets_an_exports_download_link_or_file_key(client, db, worker, tenant):
    """The finding's request: GET /jobs/<export job> with a service token handed out `result.download_url`."""
    db["crm.contacts"].insert_one({"account_id": tenant.account_id, "type": "person", "email": "a@x.com", "tags": []})
    job_id = client.post("/v1/crm/contacts/export", json={}, headers=tenant.headers()).get_json()["id"]
    result = wait_for_job(db, job_id)["result"]
    # The job also appears among the operator's stale jobs: the overview is stripped the same way.
    db["queues"].update_one(
        {"_id": ObjectId(job_id)}, {"$set": {"status": "running", "heartbeat_at": jobs.now() - timedelta(days=1)}}
    )
    try:
        texts = seen_by_service(client, job_id, tenant.account_id)
        assert result["download_url"] and result["file_key"]
        for text in texts:
            assert result["file_key"] not in text and "download_url" not in text and "file_key" not in text
        assert json.loads(texts[0])["result"]["rows"] == result["rows"]  # the record itself is still there
        owner = client.get(f"/v1/crm/jobs/{job_id}", headers=tenant.headers()).get_json()
        assert owner["result"]["download_url"] == result["download_url"]  # the account's own user gets the link
    finally:
        db["queues"].update_one({"_id": ObjectId(job_id)}, {"$set": {"status": "completed"}})


def test_a_service_token_never_gets_an_imports_storage_key_or_error_rows(client, db, worker, tenant):
    """A variant: an import from a preview's key (params.source.key) with a failed row, and a records import."""
    preview = client.post(
        "/v1/crm/contacts/import/preview",
        data={"file": (io.BytesIO(b"email,first_name\nnot-an-email,Secret\n"), "c.csv")},
        content_type="multipart/form-data",
        headers=tenant.headers(),
    ).get_json()
    key = preview["source"]["key"]
    job_id = client.post(
        "/v1/crm/contacts/import", json={"source": preview["source"]}, headers=tenant.headers()
    ).get_json()["id"]
    records_id = client.post(
        "/v1/crm/contacts/import",
        json={"source": {"type": "records", "records": [{"email": "hidden-person@example.com"}]}},
        headers=tenant.headers(),
    ).get_json()["id"]
    wait_for_job(db, job_id), wait_for_job(db, records_id)

    for text in seen_by_service(client, job_id, tenant.account_id) + seen_by_service(
        client, records_id, tenant.account_id
    ):
        assert key not in text and "/imports/" not in text and "not-an-email" not in text
        assert "hidden-person" not in text and "errors_url" not in text
    assert client.get(f"/v1/crm/jobs/{job_id}/errors", headers=SERVICE).status_code == 403
    mine = client.get(f"/v1/crm/jobs/{job_id}", headers=tenant.headers()).get_json()
    assert mine["params"]["source"]["key"] == key  # the user who imported still sees their own key
