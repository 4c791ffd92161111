"""An import or preview names only a file the caller's own upload, preview or records
stored (docs/contract.md §3); any other key answers 404 exactly like a missing one; uploads no import used are deleted
after 24 h and a user cannot pile them up."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers.adapters.storage import storage_from_settings
from crm_workers.jobs import now
from crm_workers.services import stored_files
from tests.conftest import Tenant, wait_for_job

CSV = b"email,first_name\nsecret1@example.com,Secret\nsecret2@example.com,Hidden\n"


@pytest.fixture
def store(settings):
    return storage_from_settings(settings)


@pytest.fixture
def guarded(db):
    return Tenant(db, visibility="owner_only")


def preview_file(client, tenant, body=CSV, name="contacts.csv", **who):
    response = client.post(
        "/v1/crm/contacts/import/preview",
        data={"file": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
        headers=tenant.headers(**who),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["source"]["key"]


def named(client, tenant, key, *, route="/v1/crm/contacts/import/preview", **who):
    return client.post(route, json={"source": {"type": "storage", "key": key}}, headers=tenant.headers(**who))


def assert_missing(response):
    """404 with the very body a key never written gets: nothing tells a stranger's file from no file."""
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["error"] == {
        "code": "not_found",
        "message": "no such file",
        "details": {"field": "source.key"},
    }


def test_a_non_owner_cannot_preview_or_import_another_users_export_file(client, db, worker, guarded):
    """The finding's request: U1 names the key of U2's export (under owner_only); 404 for the preview and the
    import, and nothing of U2's rows reaches U1."""
    u2 = ObjectId()
    db["crm.contacts"].insert_many(
        [
            {
                "account_id": guarded.account_id,
                "type": "person",
                "email": f"u2-{i}@x.com",
                "first_name": "Theirs",
                "owner": u2,
                "tags": [],
            }
            for i in range(3)
        ]
    )
    export = client.post("/v1/crm/contacts/export", json={}, headers=guarded.headers(owner=False, uid=u2))
    key = wait_for_job(db, export.get_json()["id"])["result"]["file_key"]
    assert key.startswith(f"accounts/{guarded.account_id}/exports/")

    for route in ("/v1/crm/contacts/import/preview", "/v1/crm/contacts/import", "/v1/crm/deals/import/preview"):
        assert_missing(named(client, guarded, key, route=route, owner=False))
    assert_missing(named(client, guarded, key))  # an owner neither: an export is no upload
    assert db["queues"].count_documents({"account_id": guarded.account_id, "type": "contacts.import"}) == 0


def test_another_users_upload_a_note_attachment_a_folder_and_a_made_up_key_all_answer_as_missing(
    client, db, guarded, other_tenant, store
):
    theirs = preview_file(client, guarded, owner=False, uid=ObjectId())
    attachment = f"accounts/{guarded.account_id}/attachments/{ObjectId()}/contract.pdf"
    store.put_stream(attachment, io.BytesIO(b"%PDF contract"))
    folder = theirs.rsplit("/", 1)[0]
    foreign = preview_file(client, other_tenant)
    for key in (
        theirs,
        attachment,
        folder,
        f"accounts/{guarded.account_id}",
        foreign,
        f"accounts/{guarded.account_id}/imports/{ObjectId()}/never.csv",
        "accounts/../etc/passwd",
    ):
        for route in ("/v1/crm/contacts/import/preview", "/v1/crm/contacts/import"):
            assert_missing(named(client, guarded, key, route=route, owner=False))
    # The owner of the account sees its users' uploads (owner visibility); another account's stay missing.
    assert named(client, guarded, theirs).status_code == 200
    assert_missing(named(client, guarded, foreign))


def test_the_callers_own_preview_imports_and_is_then_kept(client, db, worker, guarded, store):
    key = preview_file(client, guarded, owner=False)
    again = named(client, guarded, key, owner=False)
    job = named(client, guarded, key, route="/v1/crm/contacts/import", owner=False)

    assert again.status_code == 200 and job.status_code == 202
    assert wait_for_job(db, job.get_json()["id"])["status"] == "completed"
    stored_files.delete_unused(db, store, at=now() + timedelta(hours=25), accounts=[guarded.account_id])
    assert store.exists(key)  # an import used it: its retries and undo read it


def test_uploads_no_import_used_are_deleted_after_24_hours_by_housekeeping(client, db, guarded, store, settings):
    from scheduler.app import build_scheduler

    previewed = preview_file(client, guarded, owner=False)
    records = client.post(
        "/v1/crm/contacts/import/preview",
        json={"source": {"type": "records", "records": [{"email": "r@example.com"}]}},
        headers=guarded.headers(),
    ).get_json()["source"]["key"]
    assert stored_files.delete_unused(db, store, at=now() + timedelta(hours=23), accounts=[guarded.account_id]) == 0
    assert store.exists(previewed) and store.exists(records)

    assert stored_files.delete_unused(db, store, at=now() + timedelta(hours=25), accounts=[guarded.account_id]) == 2
    assert not store.exists(previewed) and not store.exists(records)
    assert_missing(named(client, guarded, previewed, owner=False))
    sched, _ = build_scheduler(settings, blocking=False, db=db)
    assert sched.get_job("unused-uploads") is not None  # the scheduler runs it


def test_a_user_cannot_pile_up_uploads_no_import_used(client, db, guarded):
    uid = ObjectId()
    db["crm.uploads"].insert_many(
        [
            {
                "account_id": guarded.account_id,
                "uid": uid,
                "key": f"k/{i}",
                "kind": "preview",
                "created_at": now(),
                "used_by": None,
            }
            for i in range(stored_files.PENDING_MAX - 1)
        ]
    )
    preview_file(client, guarded, owner=False, uid=uid)  # the last one allowed

    refused = client.post(
        "/v1/crm/contacts/import/preview",
        data={"file": (io.BytesIO(CSV), "c.xlsx")},
        content_type="multipart/form-data",
        headers=guarded.headers(owner=False, uid=uid),
    )
    records = client.post(
        "/v1/crm/contacts/import",
        json={"source": {"type": "records", "records": [{"email": "r@example.com"}]}},
        headers=guarded.headers(owner=False, uid=uid),
    )
    assert refused.status_code == records.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert preview_file(client, guarded, owner=False).startswith("accounts/")  # another user is not held up
