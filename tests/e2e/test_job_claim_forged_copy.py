"""The claim from a message's copy trusted fields it never compared (`created_at`, `state`):
a forged copy moved a selection's cut-off or where a run resumes. Every field the worker runs from is compared
with the record now, each as a value (`$eq`: a forged operator matches nothing); a copy that differs is claimed
the long way, from the record."""

from __future__ import annotations

import json
from datetime import timedelta

from crm_workers import jobs
from crm_workers.adapters.broker import job_message
from crm_workers.jobs.snapshot import read_snapshot
from tests.conftest import wait_for_job
from tests.e2e.exports.test_exports import download, rows_of
from tests.e2e.test_requested_before import before_and_after  # noqa: F401 (two people before, one after)

OWNER = {"is_owner": True, "owner_only": False}


def test_a_copy_with_a_later_created_at_does_not_move_the_cut_off(client, db, broker, worker, tenant, before_and_after):  # noqa: F811
    """The finding's forgery: the export's copy says it was requested 20 minutes later, which would take in the
    record created after the request."""
    job, _ = jobs.create_job(
        db,
        tenant.account_id,
        "contacts.export",
        {
            "filter": {},
            "columns": ["first_name", "email"],
            "format": "csv",
            "principal": {"uid": str(tenant.owner_uid), **OWNER},
        },
    )
    message = job_message(job)
    forged = json.loads(message.options["job"])
    forged["created_at"] = {
        "$date": {"$numberLong": str(int((job["created_at"] + timedelta(minutes=20)).timestamp() * 1000))}
    }
    message.options["job"] = json.dumps(forged)

    broker.enqueue(message)
    done = wait_for_job(db, job["_id"])

    assert done["status"] == "completed"
    rows = rows_of(download(client, done["result"]["download_url"]))
    assert sorted(r["first_name"] for r in rows) == ["Early", "Prior"] and done["result"]["rows"] == 2


def test_a_copy_that_adds_a_resume_point_or_an_operator_is_not_believed(db, tenant):
    """Variants at the claim itself: a copy carrying a `state` (where a run resumes), and one whose values are
    query operators (`{"$exists": true}` matches any record)."""
    job, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": "0" * 24})
    copy = read_snapshot(job_message(job))

    with_state = {**copy, "state": {"rows_done": 9000}}
    claimed = jobs.claim(db, job["_id"], stale_seconds=60, snapshot=with_state)
    assert claimed is not None and "state" not in claimed  # claimed, the long way: from the record
    assert claimed["created_at"] == job["created_at"]

    other, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {"tag_id": "1" * 24})
    operators = {
        **read_snapshot(job_message(other)),
        "params": {"$exists": True},
        "created_at": {"$exists": True},
        "state": {"$exists": False},
    }
    taken = jobs.claim(db, other["_id"], stale_seconds=60, snapshot=operators)
    assert taken["params"]["tag_id"] == "1" * 24 and taken["created_at"] == other["created_at"]
    assert db["queues"].find_one({"_id": other["_id"]})["params"] == {"tag_id": "1" * 24}
