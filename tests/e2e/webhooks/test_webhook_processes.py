"""Job-event webhooks through real `crm-jobs worker` processes: a worker SIGKILLed right after a job's end still
delivers it, once; a receiver failing twice gets the third attempt with the same event id."""

from __future__ import annotations

import uuid

import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.broker import enqueue_job, make_broker
from crm_workers.domain.principal import Principal
from crm_workers.services.webhooks import outbox
from crm_workers.services.webhooks.subscriptions import create_subscription
from tests.conftest import wait_for, wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged
from tests.e2e.test_worker_processes import WorkerProcess

pytestmark = pytest.mark.slow

WEBHOOK_ENV = {"WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_POLL_SECONDS": "0.2", "WEBHOOK_RETRY_SECONDS": "0.2"}


@pytest.fixture
def own(settings, db):
    """Settings on a database and broker namespace of their own: no other test's worker sends these deliveries."""
    run = uuid.uuid4().hex[:6]
    mine = settings.with_(
        redis_namespace=f"{settings.redis_namespace}-hooks-{run}",
        mongodb_db=f"{settings.mongodb_db}_hooks_{run}",
        job_stale_seconds=60,
    )
    from crm_workers.adapters.mongo import connect, ensure_indexes

    database = connect(mine.mongodb_uri, mine.mongodb_db)
    ensure_indexes(database)
    started: list[WorkerProcess] = []
    yield {
        "settings": mine,
        "db": database,
        "broker": make_broker(mine, for_worker=False),
        "start": lambda: started.append(WorkerProcess(mine, extra_env=WEBHOOK_ENV)) or started[-1],
    }
    for w in started:
        w.stop()
    database.client.drop_database(mine.mongodb_db)


def _tag_job(db, broker, account):
    tag = make_tag(db, account)
    seed_tagged(db, account, tag, contacts=5, deals=0)
    job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(tag)})
    enqueue_job(broker, job)
    return job


def test_a_worker_sigkilled_right_after_a_job_ends_still_delivers_it_once(own, hook_receiver):
    db, broker = own["db"], own["broker"]
    account = ObjectId()
    sub = create_subscription(
        db,
        Principal(account, ObjectId(), True, False),
        {"url": hook_receiver.url, "events": ["job.completed"]},
        allow_private=True,
    )
    from crm_workers.jobs import holds

    held = holds.hold(db, account, at="ended")
    first = own["start"]()
    job = _tag_job(db, broker, account)
    wait_for(lambda: holds.held(db, held), timeout=60, what="the job held right after its end")

    first.kill()  # the end is recorded; nothing after it ran
    ended = db["queues"].find_one({"_id": job["_id"]})
    assert ended["status"] == "completed" and ended["events_pending"] is True
    assert db["crm.webhook.deliveries"].count_documents({"job_id": job["_id"]}) == 0 and hook_receiver.calls == []

    own["start"]()
    # The end recorded twice, as the worker's hook and the scheduler's sweep could at once: one delivery all the same.
    assert outbox.record_deliveries(db, ended) == 1
    assert outbox.record_deliveries(db, ended) == 1
    assert outbox.record_pending_ends(db, accounts=[account]) == 0

    delivered = wait_for(
        lambda: (
            (d := db["crm.webhook.deliveries"].find_one({"job_id": job["_id"]})) and d["status"] == "delivered" and d
        ),
        timeout=60,
        what="the delivery",
    )
    calls = hook_receiver.for_job(str(job["_id"]))
    assert len(calls) == 1 and delivered["attempts"] == 1
    assert calls[0]["headers"]["X-CRM-Event-Id"] == ended["end_event"]["id"]
    assert db["crm.webhook.deliveries"].count_documents({"job_id": job["_id"]}) == 1
    assert sub["_id"] == delivered["subscription_id"]
    assert "events_pending" not in db["queues"].find_one({"_id": job["_id"]})


def test_a_receiver_failing_twice_gets_the_third_attempt_from_a_worker_process_with_the_same_event_id(
    own, hook_receiver
):
    db, broker = own["db"], own["broker"]
    account = ObjectId()
    create_subscription(
        db,
        Principal(account, ObjectId(), True, False),
        {"url": hook_receiver.url, "events": ["job.completed"], "types": ["tags.delete"]},
        allow_private=True,
    )
    hook_receiver.statuses += [500, 503]
    own["start"]()
    job = _tag_job(db, broker, account)
    assert wait_for_job(db, job["_id"], timeout=60)["status"] == "completed"

    calls = wait_for(
        lambda: len(c := hook_receiver.for_job(str(job["_id"]))) >= 3 and c, timeout=60, what="three attempts"
    )

    assert [c["status"] for c in calls] == [500, 503, 200]
    assert len({c["headers"]["X-CRM-Event-Id"] for c in calls}) == 1
    delivered = wait_for(
        lambda: (
            (d := db["crm.webhook.deliveries"].find_one({"job_id": job["_id"]})) and d["status"] == "delivered" and d
        ),
        what="delivered",
    )
    assert delivered["attempts"] == 3


def test_a_job_ended_by_a_worker_that_did_not_know_of_a_new_subscription_is_delivered_by_the_sweep(own, hook_receiver):
    db = own["db"]
    account = ObjectId()
    own["start"]()
    sub = create_subscription(
        db,
        Principal(account, ObjectId(), True, False),
        {"url": hook_receiver.url, "events": ["job.completed"]},
        allow_private=True,
    )
    # A worker whose set of subscribed accounts is a moment old ends the job without the outbox mark.
    job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(ObjectId())})
    run = jobs.claim(db, job["_id"], stale_seconds=60)
    assert jobs.complete(db, run, {"total": 0}, {"ok": True}, events=False)
    assert "events_pending" not in db["queues"].find_one({"_id": job["_id"]})

    assert outbox.record_for_new_subscriptions(db, accounts=[account]) == 1
    assert outbox.record_for_new_subscriptions(db, accounts=[account]) == 0  # recorded: not looked at again

    delivered = wait_for(
        lambda: (
            (d := db["crm.webhook.deliveries"].find_one({"job_id": job["_id"]})) and d["status"] == "delivered" and d
        ),
        timeout=60,
        what="the delivery",
    )
    assert delivered["subscription_id"] == sub["_id"] and len(hook_receiver.for_job(str(job["_id"]))) == 1


def test_a_job_that_ended_while_redis_was_down_is_recorded_and_sent_from_mongodb_alone(own, hook_receiver):
    """No broker anywhere below: the end, its recording (the scheduler's sweep) and the senders use MongoDB and the
    receiver only, so Redis being down at the end changes nothing."""
    from crm_workers.services.webhooks.dispatcher import WebhookDispatcher

    db = own["db"]
    account = ObjectId()
    create_subscription(
        db,
        Principal(account, ObjectId(), True, False),
        {"url": hook_receiver.url, "events": ["job.failed"]},
        allow_private=True,
    )
    job, _ = jobs.create_job(db, account, "contacts.export", {})
    run = jobs.claim(db, job["_id"], stale_seconds=60)
    assert jobs.fail(db, run, {"total": 0}, {"code": "x", "message": "broken"})
    assert outbox.record_pending_ends(db, accounts=[account]) == 1
    senders = WebhookDispatcher(
        db=db, senders=2, account_senders=2, poll_seconds=0.1, allow_private=True, retry_base_seconds=0.1
    )
    senders.after_worker_boot(None, None)
    try:
        call = wait_for(lambda: hook_receiver.for_job(str(job["_id"])), what="the delivery")[0]
    finally:
        senders.before_worker_shutdown(None, None)

    assert call["headers"]["X-CRM-Event"] == "job.failed" and call["body"]["error"]["message"] == "broken"
