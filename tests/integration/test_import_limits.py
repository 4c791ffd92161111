"""Import limits checked by the worker before any write."""

from __future__ import annotations

import io

import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.errors import PermanentJobError
from crm_workers.services.imports.run import run_import


def claimed_import(settings, db, content: bytes):
    """A stored file and its import job, claimed as a worker would: (account, job)."""
    account = ObjectId()
    key = f"accounts/{account}/imports/{ObjectId()}/contacts.csv"
    storage_from_settings(settings).put_stream(key, io.BytesIO(content))
    job, _ = jobs.create_job(
        db,
        account,
        "contacts.import",
        {"entity": "contact", "source": {"type": "upload", "key": key, "file_name": "contacts.csv"}, "options": {}},
    )
    return account, jobs.claim(db, job["_id"], stale_seconds=60)


def test_a_file_over_the_row_limit_fails_the_job_before_anything_is_written(settings, db):
    account, job = claimed_import(settings, db, b"email\na@x.com\nb@x.com\nc@x.com\n")

    with pytest.raises(PermanentJobError, match="more than 2 rows; the limit is 2"):
        run_import(db, settings.with_(import_max_rows=2), job, jobs.Progress(db, job), entity="contact")
    assert db["crm.contacts"].count_documents({"account_id": account}) == 0


def test_a_file_with_no_matching_column_fails_with_its_headers(settings, db):
    _, job = claimed_import(settings, db, b"foo,bar\n1,2\n")

    with pytest.raises(PermanentJobError, match="headers: foo, bar"):
        run_import(db, settings, job, jobs.Progress(db, job), entity="contact")
