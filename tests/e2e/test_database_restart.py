"""MongoDB going away in the middle of a job (a restart, a primary stepping down): the job waits the outage out
and ends with exact counts."""

from __future__ import annotations

import io
import uuid

import pytest
from bson import ObjectId

from crm_jobs.servers import EmbeddedMongo
from crm_workers.adapters.broker import make_broker
from crm_workers.adapters.mongo import connect, ensure_indexes
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.domain.principal import Principal
from crm_workers.services.imports.intake import import_upload
from tests.conftest import wait_for
from tests.e2e.test_worker_processes import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def restartable_mongo(tmp_path):
    server = EmbeddedMongo(
        tmp_path / "secantus",
        log_path=tmp_path / "secantus.log",  # data kept on disk
        extra_args=("--enable-test-commands",),
    )  # fail points, to play a step-down
    server.start()
    yield server
    server.stop()


def test_an_import_survives_a_secantusdb_restart_mid_way_with_exact_counts(settings, restartable_mongo):
    own = settings.with_(
        mongodb_uri=restartable_mongo.uri,
        mongodb_db=f"restart_{uuid.uuid4().hex[:6]}",
        redis_namespace=f"{settings.redis_namespace}-restart-{uuid.uuid4().hex[:6]}",
    )
    db = connect(own.mongodb_uri, own.mongodb_db)
    ensure_indexes(db)
    worker = WorkerProcess(own)
    try:
        rows, account = 5000, ObjectId()
        content = "email,first_name\n" + "".join(f"r{i}@example.com,R{i}\n" for i in range(rows))
        job = import_upload(
            db,
            make_broker(own, for_worker=False),
            storage_from_settings(own),
            own,
            Principal(account, ObjectId(), True, False),
            "contact",
            stream=io.BytesIO(content.encode()),
            file_name="big.csv",
            options={},
        )
        wait_for(
            lambda: 0 < db["queues"].find_one({"_id": job["_id"]})["progress"]["processed"],
            timeout=90,
            what="the import to write its first chunks",
        )

        restartable_mongo.stop()  # mid-way: the worker's next write meets a server that is gone
        restartable_mongo.start()  # the same port, the same data
        mid = db["queues"].find_one({"_id": job["_id"]})
        assert mid["status"] in ("running", "queued") and mid["progress"]["processed"] < rows

        done = wait_for(
            lambda: (
                (doc := db["queues"].find_one({"_id": job["_id"]}))["status"] in ("completed", "failed", "cancelled")
                and doc
            ),
            timeout=180,
            interval=0.5,
            what="the import to end",
        )
        assert done["status"] == "completed", done.get("error")
        assert done["result"]["counts"] == {"created": rows, "updated": 0, "skipped": 0, "failed": 0}
        emails = [c["email"] for c in db["crm.contacts"].find({"account_id": account}, {"email": 1})]
        assert len(emails) == rows and len(set(emails)) == rows
    finally:
        worker.stop()
        db.client.drop_database(own.mongodb_db)


def test_a_primary_stepping_down_mid_job_is_an_outage_waited_out_not_a_failure(settings, restartable_mongo):
    from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged

    # The run that meets the stepdown fails with the outage, records "waiting for retry" once the primary is
    # back, and Dramatiq's retry runs it again (attempt 2). The retry may reach its claim before that record
    # does (both wait for the primary, in either order): it takes the job from the run it retries (which has
    # ended), not skipped as "running elsewhere" (that race once left the job `queued` with no message at all,
    # about one run in six here). The session's 60 s stale window: the retry does not wait for it.
    own = settings.with_(
        mongodb_uri=restartable_mongo.uri,
        mongodb_db=f"stepdown_{uuid.uuid4().hex[:6]}",
        redis_namespace=f"{settings.redis_namespace}-stepdown-{uuid.uuid4().hex[:6]}",
    )
    db = connect(own.mongodb_uri, own.mongodb_db)
    ensure_indexes(db)
    worker = WorkerProcess(own)
    try:
        from crm_workers import jobs
        from crm_workers.adapters.broker import enqueue_job

        account = ObjectId()
        tag = make_tag(db, account)
        seed_tagged(db, account, tag, contacts=600, deals=0)
        job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(tag), "name": "VIP"})
        enqueue_job(make_broker(own, for_worker=False), job)
        wait_for(
            lambda: 0 < db["queues"].find_one({"_id": job["_id"]})["progress"]["processed"],
            timeout=90,
            what="the job to be under way",
        )

        # The next writes are answered "not writable primary" (with the retryable label), as in an election.
        db.client.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": 4},
                "data": {"failCommands": ["update"], "errorCode": 10107, "errorLabels": ["RetryableWriteError"]},
            }
        )

        # Each failed write costs the client one server selection (15 s) before it sees the primary again.
        done = wait_for(
            lambda: (
                (doc := db["queues"].find_one({"_id": job["_id"]}))["status"] in ("completed", "failed", "cancelled")
                and doc
            ),
            timeout=240,
            interval=0.5,
            what="the job to end",
        )
        assert done["status"] == "completed", done.get("error")
        assert done["result"]["contacts_updated"] == 600
        assert db["crm.contacts"].count_documents({"account_id": account, "tags": tag}) == 0
        assert db["crm.tags"].find_one({"_id": tag}) is None
    finally:
        worker.stop()
        db.client.drop_database(own.mongodb_db)
