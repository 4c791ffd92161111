"""The Pub/Sub bridge, with the subscription behind its interface (no Google): jobs, redelivery, dead letters."""

from __future__ import annotations

import json
import threading

from bson import ObjectId
from pymongo import MongoClient

from crm_workers.adapters.pubsub import ReceivedMessage
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.services.imports.pubsub_bridge import handle, run_bridge
from tests.conftest import wait_for_job
from tests.e2e.imports.helpers import contacts


class ListSubscription:
    """Hands out its messages once, records acks and nacks, and stops the bridge when empty."""

    def __init__(self, messages, stop: threading.Event):
        self.messages, self.stop = list(messages), stop
        self.acked, self.nacked = [], []

    def pull(self, *, max_messages, timeout):
        batch, self.messages = self.messages[:max_messages], self.messages[max_messages:]
        if not batch:
            self.stop.set()
        return batch

    def ack(self, ack_ids):
        self.acked += ack_ids

    def nack(self, ack_ids):
        self.nacked += ack_ids


def message(body, message_id=None) -> ReceivedMessage:
    message_id = message_id or ObjectId().binary.hex()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ReceivedMessage(ack_id=f"ack-{message_id}", message_id=message_id, data=data)


def bridge(settings, db, broker, messages) -> ListSubscription:
    stop = threading.Event()
    subscription = ListSubscription(messages, stop)
    run_bridge(subscription, db, broker, storage_from_settings(settings), settings, stop=stop, timeout=0.1)
    return subscription


def test_an_import_request_becomes_a_job_and_is_acked_and_a_redelivery_makes_no_twin(
    settings, db, broker, worker, tenant
):
    body = {
        "kind": "import",
        "entity": "contacts",
        "account_id": str(tenant.account_id),
        "uid": str(tenant.owner_uid),
        "source": {"type": "records", "records": [{"email": "ps@example.com", "first_name": "Pub"}]},
    }
    first = message(body, "m-1")

    subscription = bridge(settings, db, broker, [first, message(body, "m-1")])

    assert subscription.acked == ["ack-m-1", "ack-m-1"] and subscription.nacked == []
    jobs = list(db["queues"].find({"account_id": tenant.account_id}))
    assert len(jobs) == 1 and jobs[0]["type"] == "contacts.import"
    assert wait_for_job(db, jobs[0]["_id"])["status"] == "completed"
    assert [c["email"] for c in contacts(db, tenant.account_id)] == ["ps@example.com"]


def test_connector_batches_each_become_an_import_and_a_repeated_batch_does_not(settings, db, broker, worker, tenant):
    def batch(n, emails):
        return message(
            {
                "kind": "connector_batch",
                "entity": "contacts",
                "connector": "hubspot",
                "connector_import_id": "sync-42",
                "batch": n,
                "account_id": str(tenant.account_id),
                "uid": str(tenant.owner_uid),
                "records": [{"email": e} for e in emails],
            }
        )

    bridge(settings, db, broker, [batch(1, ["a@x.com", "b@x.com"]), batch(2, ["c@x.com"]), batch(1, ["a@x.com"])])

    jobs = list(db["queues"].find({"account_id": tenant.account_id}))
    assert len(jobs) == 2
    for job in jobs:
        wait_for_job(db, job["_id"])
    assert sorted(c["email"] for c in contacts(db, tenant.account_id)) == ["a@x.com", "b@x.com", "c@x.com"]


def test_malformed_messages_are_dead_lettered_and_acked(settings, db, broker, tenant):
    bad = [
        message(b"{not json", "bad-1"),
        message({"kind": "import", "account_id": "acme", "uid": str(ObjectId())}, "bad-2"),
        message({"kind": "teleport", "account_id": str(tenant.account_id), "uid": str(tenant.owner_uid)}, "bad-3"),
        message(
            {
                "kind": "import",
                "account_id": str(tenant.account_id),
                "uid": str(tenant.owner_uid),
                "source": {"type": "records", "records": [{"email": "x@y.z"}]},
                "options": {"mode": "zap"},
            },
            "bad-4",
        ),
        message(
            {
                "kind": "connector_batch",
                "account_id": str(tenant.account_id),
                "uid": str(tenant.owner_uid),
                "connector_import_id": "s",
                "batch": 1,
                "records": [],
            },
            "bad-5",
        ),
    ]

    subscription = bridge(settings, db, broker, bad)

    assert sorted(subscription.acked) == sorted(m.ack_id for m in bad) and subscription.nacked == []
    letters = {
        d["message_id"]: d["error"]
        for d in db["crm.pubsub.deadletters"].find({"message_id": {"$in": [m.message_id for m in bad]}})
    }
    assert set(letters) == {m.message_id for m in bad}
    assert "not JSON" in letters["bad-1"] and "24-hex" in letters["bad-2"] and "unknown kind" in letters["bad-3"]
    assert "mode" in letters["bad-4"] and "records" in letters["bad-5"]
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_a_message_that_cannot_be_recorded_now_is_not_acked_and_not_counted_against_it(settings, db, broker, tenant):
    down = MongoClient("mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=200)["crm"]
    body = {
        "kind": "import",
        "account_id": str(tenant.account_id),
        "uid": str(tenant.owner_uid),
        "source": {"type": "records", "records": [{"email": "later@example.com"}]},
    }
    late = message(body)

    outcome = handle(down, broker, storage_from_settings(settings), settings, late, max_attempts=1)

    assert outcome == "unavailable"  # nacked: a database outage is no fault of the message
    assert db["crm.pubsub.attempts"].find_one({"_id": late.message_id}) is None
    assert db["crm.pubsub.deadletters"].find_one({"message_id": late.message_id}) is None


def test_a_message_that_arrives_while_redis_is_down_is_nacked_leaving_no_job_and_its_redelivery_makes_one(
    settings, db, broker, tenant
):
    from crm_workers.adapters.broker import make_broker

    redis_down = make_broker(settings.with_(redis_url="redis://127.0.0.1:9"), for_worker=False)
    body = {
        "kind": "import",
        "account_id": str(tenant.account_id),
        "uid": str(tenant.owner_uid),
        "source": {"type": "records", "records": [{"email": "outage@example.com"}]},
    }
    during = message(body)
    storage = storage_from_settings(settings)

    assert handle(db, redis_down, storage, settings, during) == "unavailable"
    # Nothing half-made: the job the broker could not take was withdrawn with its idempotency key.
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0
    assert handle(db, redis_down, storage, settings, message(body, during.message_id)) == "unavailable"
    assert handle(db, broker, storage, settings, message(body, during.message_id)) == "job"  # Redis is back
    assert handle(db, broker, storage, settings, message(body, during.message_id)) == "job"  # a late redelivery

    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 1
    assert db["crm.pubsub.attempts"].find_one({"_id": during.message_id}) is None


def test_after_a_message_finds_redis_down_the_rest_of_its_batch_is_nacked_without_trying(settings, db, tenant):
    from crm_workers.adapters.broker import make_broker
    from crm_workers.services.imports.pubsub_bridge import Backoff

    redis_down = make_broker(settings.with_(redis_url="redis://127.0.0.1:9"), for_worker=False)
    batch = [
        message(
            {
                "kind": "import",
                "account_id": str(tenant.account_id),
                "uid": str(tenant.owner_uid),
                "source": {"type": "records", "records": [{"email": f"b{i}@example.com"}]},
            }
        )
        for i in range(3)
    ]
    stop = threading.Event()
    subscription = ListSubscription(batch, stop)

    run_bridge(
        subscription,
        db,
        redis_down,
        storage_from_settings(settings),
        settings,
        stop=stop,
        timeout=0.1,
        backoff=Backoff(initial=0.01, maximum=0.05),
    )

    assert subscription.nacked == [m.ack_id for m in batch] and subscription.acked == []
    # Only the first was tried, and withdrawn when the broker refused it.
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0
