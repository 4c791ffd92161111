"""Imports and exports stream: the memory a run allocates does not grow with the file or the rows. Measured with
tracemalloc (every thread of this process, the in-process worker's included) on a small and a five times bigger
run of the same shape; a run holding its rows would need about five times as much."""

from __future__ import annotations

import tracemalloc

import pytest

from crm_workers.adapters import csv_fast, tabular
from crm_workers.jobs import now
from tests.conftest import Tenant, wait_for_job
from tests.e2e.imports.helpers import upload

pytestmark = pytest.mark.slow

SMALL, BIG = 1_000, 5_000


def _peak_while(start_job, db) -> tuple[dict, int]:
    """Starts a job with tracing on (the request's own upload excluded) and returns it ended, with the peak of
    memory allocated meanwhile (bytes)."""
    tracemalloc.start()
    try:
        job_id = start_job()
        tracemalloc.reset_peak()
        job = wait_for_job(db, job_id, timeout=120)
        return job, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


#: pandas reads its source in blocks of 256 KiB: a file smaller than that is read in one smaller block, so both
#: files compared are past it (rows of ~330 bytes: 330 KB and 1.6 MB), or the small one would seem to need less.
#: (A full run once measured 0.93 vs 1.87 MB with 60-byte rows: the small file was read in one 60 KB block.)
CITY = "Porto, " + "Rua de Santa Catarina " * 12


def _csv(rows: int) -> bytes:
    return (
        "First Name,Last Name,Email,Phone,City\n"
        + "".join(f"Person{i},Family{i % 97},p{i}@example.com,+1415555{i % 10000:04d},{CITY}\n" for i in range(rows))
    ).encode()


def test_an_imports_memory_does_not_grow_with_the_file(client, db, worker, monkeypatch):
    # The reader takes the file in blocks of BLOCK_ROWS (10,000) rows: here 500, so that both files span blocks
    # and the test stays small; what is measured is that memory follows the block, not the file.
    monkeypatch.setattr(csv_fast, "BLOCK_ROWS", 500)
    monkeypatch.setattr(tabular, "BLOCK_ROWS", 500)
    peaks = {}
    for rows in (SMALL, BIG):
        tenant, content = Tenant(db), _csv(rows)
        job, peaks[rows] = _peak_while(lambda t=tenant, c=content: upload(client, t, c).get_json()["id"], db)
        assert job["status"] == "completed" and job["result"]["counts"]["created"] == rows

    assert peaks[BIG] < 2 * peaks[SMALL], peaks  # not five times: the file is read and written in chunks


#: An export holds a bounded amount whatever the rows (two batches of 1,000 read ahead of the one it writes, the
#: cursor's own batch, 64 KiB on their way to the file): measured flat past it (6.2 MB at 20,000 rows, 6.3 MB at
#: 40,000; below 20,000 the read-ahead is still filling), so both sizes compared are past it.
EXPORT_SMALL, EXPORT_BIG = 20_000, 40_000


def test_an_exports_memory_does_not_grow_with_the_rows(client, db, worker):
    peaks = {}
    for rows in (EXPORT_SMALL, EXPORT_BIG):
        tenant, ts = Tenant(db), now()
        db["crm.contacts"].insert_many(
            [
                {
                    "account_id": tenant.account_id,
                    "type": "person",
                    "first_name": f"Person{i}",
                    "email": f"p{i}@example.com",
                    "tags": [],
                    "created_at": ts,
                    "updated_at": ts,
                }
                for i in range(rows)
            ]
        )
        headers = tenant.headers()
        job, peaks[rows] = _peak_while(
            lambda h=headers: client.post("/v1/crm/contacts/export", json={"filter": {}}, headers=h).get_json()["id"],
            db,
        )
        assert job["status"] == "completed" and job["result"]["rows"] == rows

    assert peaks[EXPORT_BIG] < 1.5 * peaks[EXPORT_SMALL], peaks  # the cursor feeds the writer, then the upload
