"""Nothing lost: lost broker messages, Redis or MongoDB down, outages inside a job."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.errors import AutoReconnect, OperationFailure

from crm_api import create_app
from crm_jobs.servers import EmbeddedValkey
from crm_workers import jobs
from crm_workers.adapters.broker import make_broker
from crm_workers.adapters.middleware.account_fairness import waiting_key
from crm_workers.adapters.outages import OUTAGE_MAX_RETRIES, is_outage, retry_policy, wait_out
from crm_workers.services.housekeeping import requeue_lost_jobs
from tests.conftest import wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged


def later(seconds: float):
    return jobs.now() + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def dead_redis_url():
    """The address of a Valkey that was started and stopped: nothing listens there any more."""
    server = EmbeddedValkey()
    url = server.start()
    server.stop()
    return url


def test_jobs_whose_messages_were_flushed_from_redis_complete(settings, db, broker, worker, tenant):
    # Jobs recorded and enqueued on a broker namespace no worker reads, whose messages are then flushed:
    # the records say `queued` and nothing would ever run them.
    elsewhere = settings.with_(redis_namespace=f"{settings.redis_namespace}-lost-{uuid.uuid4().hex[:6]}")
    lost_app = create_app(elsewhere, db=db, broker=make_broker(elsewhere, for_worker=False))
    tags = [make_tag(db, tenant.account_id, f"Lost{i}") for i in range(3)]
    for tag in tags:
        seed_tagged(db, tenant.account_id, tag, contacts=5, deals=1)
    ids = [lost_app.test_client().delete(f"/v1/crm/tags/{t}", headers=tenant.headers()).get_json()["id"] for t in tags]
    flushed = lost_app.extensions["crm"]["broker"].client
    flushed.delete(*flushed.keys(f"{elsewhere.redis_namespace}-dramatiq:*"))

    swept = requeue_lost_jobs(
        db,
        broker,
        lost_seconds=settings.job_lost_seconds,
        accounts=[tenant.account_id],
        namespace=settings.redis_namespace,
        at=later(settings.job_lost_seconds + 1),
    )

    assert swept == 3
    done = [wait_for_job(db, i) for i in ids]
    assert [j["status"] for j in done] == ["completed"] * 3
    assert all(j["reenqueues"] == 1 and j["attempts"] == 1 for j in done)
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": {"$in": tags}}) == 0
    # Swept again later, a finished job is left alone.
    assert (
        requeue_lost_jobs(
            db,
            broker,
            lost_seconds=settings.job_lost_seconds,
            namespace=settings.redis_namespace,
            at=later(2 * settings.job_lost_seconds),
            accounts=[tenant.account_id],
        )
        == 0
    )
    assert [db["queues"].find_one({"_id": ObjectId(i)})["reenqueues"] for i in ids] == [1, 1, 1]


def test_a_job_waiting_for_its_accounts_slot_or_a_retry_is_not_sent_twice(settings, db, broker):
    account = ObjectId()
    waiting, _ = jobs.create_job(db, account, "contacts.export", {})
    retrying, _ = jobs.create_job(db, account, "contacts.export", {})
    db["queues"].update_one({"_id": retrying["_id"]}, {"$set": {"attempts": 1}})
    broker.client.set(waiting_key(settings.redis_namespace, str(waiting["_id"])), 1, px=60_000)
    # A job waiting for a retry's backoff is not lost before the longest backoff has passed too.
    sweep_at = later(settings.job_lost_seconds + 1)

    assert (
        requeue_lost_jobs(
            db,
            broker,
            lost_seconds=settings.job_lost_seconds,
            namespace=settings.redis_namespace,
            at=sweep_at,
            accounts=[account],
        )
        == 0
    )

    for job in (waiting, retrying):
        assert "reenqueues" not in db["queues"].find_one({"_id": job["_id"]})
    # A retry due by a time now long past, whose message was flushed with Redis: sent again.
    db["queues"].update_one({"_id": retrying["_id"]}, {"$set": {"retry_by": jobs.now() - timedelta(seconds=1)}})
    assert [
        j["_id"]
        for j in jobs.lost_candidates(db, lost_seconds=settings.job_lost_seconds, retry_wait_seconds=300, at=sweep_at)
        if j["_id"] == retrying["_id"]
    ] == [retrying["_id"]]
    broker.client.delete(waiting_key(settings.redis_namespace, str(waiting["_id"])))
    db["queues"].delete_many({"_id": {"$in": [waiting["_id"], retrying["_id"]]}})  # keep the worker away


def test_while_redis_is_down_the_api_answers_503_with_retry_after_and_records_nothing(
    settings, db, tenant, dead_redis_url
):
    down = settings.with_(redis_url=dead_redis_url)
    app = create_app(down, db=db, broker=make_broker(down, for_worker=False))
    tag = make_tag(db, tenant.account_id, "Kept")

    response = app.test_client().delete(f"/v1/crm/tags/{tag}", headers=tenant.headers(**{"Idempotency-Key": "k-down"}))

    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.get_json()["error"]["code"] == "broker_unavailable"
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0
    assert db["crm.idempotency_keys"].count_documents({"account_id": tenant.account_id}) == 0
    assert db["crm.tags"].find_one({"_id": tag}) is not None


def test_a_job_the_system_starts_while_redis_is_down_waits_queued_for_the_sweeper(settings, db, dead_redis_url):
    from crm_workers.services.job_submission import start_job

    account = ObjectId()
    job = start_job(
        db,
        make_broker(settings.with_(redis_url=dead_redis_url), for_worker=False),
        account,
        "reminders.digest",
        {"date": "2026-11-25"},
        idempotency_key="digest:2026-11-25",
    )

    assert db["queues"].find_one({"_id": job["_id"]})["status"] == "queued"
    assert [
        c["_id"]
        for c in jobs.lost_candidates(
            db, lost_seconds=settings.job_lost_seconds, retry_wait_seconds=0, at=later(settings.job_lost_seconds + 1)
        )
        if c["_id"] == job["_id"]
    ] == [job["_id"]]
    db["queues"].delete_one({"_id": job["_id"]})


def test_while_mongodb_is_down_the_api_answers_503_with_retry_after(settings, broker, tenant, dead_redis_url):
    port = int(dead_redis_url.rsplit(":", 1)[1].split("/")[0])  # nothing listens there either
    unreachable = MongoClient(
        f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=300, tz_aware=True
    )["crm"]
    app = create_app(settings, db=unreachable, broker=broker)

    response = app.test_client().get("/v1/crm/jobs", headers=tenant.headers())

    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert "127.0.0.1" not in response.get_data(as_text=True)  # no internals in the answer


# ------------------------------------------------------------------ outages inside a job


@pytest.mark.parametrize(
    "exc, outage",
    [
        (AutoReconnect("connection reset"), True),
        (OperationFailure("not primary", code=10107), True),
        (OperationFailure("interrupted at shutdown", code=11600), True),
        (OperationFailure("duplicate key", code=11000), False),
        (ValueError("a bug"), False),
    ],
)
def test_outages_are_told_from_errors(exc, outage):
    assert is_outage(exc) is outage


def test_an_outage_is_retried_longer_than_a_jobs_own_errors():
    retry_when = retry_policy(3)

    assert retry_when(2, ValueError("x")) and not retry_when(3, ValueError("x"))
    assert retry_when(OUTAGE_MAX_RETRIES - 1, AutoReconnect("x")) and not retry_when(
        OUTAGE_MAX_RETRIES, AutoReconnect("x")
    )


def test_the_lifecycle_waits_out_a_short_outage_to_record_an_outcome():
    calls, naps = [], []

    def write():
        calls.append(1)
        if len(calls) < 3:
            raise AutoReconnect("primary stepped down")
        return "written"

    assert wait_out(write, what="test", sleep=naps.append) == "written"
    assert len(calls) == 3 and len(naps) == 2
    with pytest.raises(ValueError):
        wait_out(lambda: (_ for _ in ()).throw(ValueError("a bug is not waited out")), what="test", sleep=naps.append)
