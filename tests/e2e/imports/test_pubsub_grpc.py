"""The Pub/Sub bridge through the real `google-cloud-pubsub` client over real gRPC, on a bad day.

The subscription is `tests/pubsub_server.py` (a Subscriber service on a local port, `PUBSUB_EMULATOR_HOST`),
failing on demand; MongoDB, Redis and the worker are the suite's real servers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from google.api_core import exceptions as google_errors

from crm_workers.adapters.pubsub import GoogleSubscription
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.services.imports.pubsub_bridge import SETTLE_TRIES, Backoff, bridge_stats, run_bridge
from tests.conftest import wait_for, wait_for_job
from tests.e2e.imports.helpers import contacts
from tests.pubsub_server import FakeSubscription

QUICK = Backoff(initial=0.02, maximum=0.2)


@pytest.fixture
def pubsub(monkeypatch):
    server = FakeSubscription(ack_deadline=3.0)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", server.host)
    yield server
    server.stop()


@pytest.fixture
def subscription(pubsub):
    sub = GoogleSubscription("crm-test", "crm-imports", rpc_timeout=2.0)
    yield sub
    sub.close()


class Bridge:
    """`run_bridge` on a thread, as `crm-jobs pubsub` runs it; remembers how it ended."""

    def __init__(self, subscription, settings, db, broker, *, storage=None, **options):
        self.stop, self.error = threading.Event(), None
        storage = storage or storage_from_settings(settings)
        options = {"timeout": 1.0, "backoff": QUICK, **options}

        def run():
            try:
                run_bridge(subscription, db, broker, storage, settings, stop=self.stop, **options)
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def finish(self, *, within: float = 10.0) -> float:
        """Stop it; the seconds it took to end."""
        started = time.monotonic()
        self.stop.set()
        self.thread.join(within)
        assert not self.thread.is_alive(), f"the bridge did not end within {within} s"
        return time.monotonic() - started


@pytest.fixture
def bridges():
    started = []
    yield lambda *args, **kw: started.append(Bridge(*args, **kw)) or started[-1]
    for bridge in started:
        bridge.stop.set()
        bridge.thread.join(10)


def import_request(tenant, *emails) -> bytes:
    return json.dumps(
        {
            "kind": "import",
            "entity": "contacts",
            "account_id": str(tenant.account_id),
            "uid": str(tenant.owner_uid),
            "source": {"type": "records", "records": [{"email": e} for e in emails]},
        }
    ).encode()


def account_jobs(db, tenant) -> list[dict]:
    return list(db["queues"].find({"account_id": tenant.account_id}))


def test_the_bridge_keeps_running_across_unavailable_pulls_and_lost_acks_and_makes_one_job_per_message(
    settings, db, broker, worker, tenant, pubsub, subscription, bridges
):
    before = bridge_stats(db).get("transient_errors", {})
    pubsub.fail("Pull", "UNAVAILABLE", times=3)
    # Every try of the first ack fails: the recorded messages come back after their ack deadline …
    pubsub.fail("Acknowledge", "DEADLINE_EXCEEDED", times=SETTLE_TRIES)
    # … and the ack of their redelivery fails once more before it goes through.
    pubsub.fail("Acknowledge", "UNAVAILABLE", times=1)
    ids = [pubsub.publish(import_request(tenant, f"grpc{i}@example.com")) for i in range(3)]

    bridge = bridges(subscription, settings, db, broker)

    wait_for(lambda: pubsub.acked() == set(ids), timeout=30, what="every message to be acked")
    assert pubsub.calls.failed == {"Pull": 3, "Acknowledge": SETTLE_TRIES + 1}
    assert all(pubsub.deliveries(i) >= 2 for i in ids)  # each was recorded, then delivered again
    assert bridge.thread.is_alive() and bridge.error is None
    jobs = account_jobs(db, tenant)
    assert len(jobs) == 3  # a redelivered message found its first job
    keys = {d["key"]: d["job_id"] for d in db["crm.idempotency_keys"].find({"account_id": tenant.account_id})}
    assert {keys[f"pubsub:{i}"] for i in ids} == {j["_id"] for j in jobs}
    for job in jobs:
        assert wait_for_job(db, job["_id"])["status"] == "completed"
    assert sorted(c["email"] for c in contacts(db, tenant.account_id)) == [f"grpc{i}@example.com" for i in range(3)]
    after = bridge_stats(db)["transient_errors"]
    assert after["pull"] - before.get("pull", 0) == 3
    assert after["ack"] - before.get("ack", 0) == SETTLE_TRIES + 1
    bridge.finish()
    assert bridge.error is None


def test_a_failed_nack_leaves_the_message_to_its_ack_deadline_and_it_becomes_one_job_later(
    settings, db, broker, tenant, pubsub, subscription, bridges
):
    from crm_workers.adapters.broker import make_broker

    redis_down = make_broker(settings.with_(redis_url="redis://127.0.0.1:9"), for_worker=False)
    pubsub.fail("ModifyAckDeadline", "INTERNAL", times=SETTLE_TRIES)
    first = pubsub.publish(import_request(tenant, "nack@example.com"))
    down = bridges(subscription, settings, db, redis_down)
    wait_for(lambda: pubsub.calls.failed.get("ModifyAckDeadline") == SETTLE_TRIES, what="the nacks to fail")
    down.finish()

    bridge = bridges(subscription, settings, db, broker)  # Redis is back

    wait_for(lambda: first in pubsub.acked(), timeout=20, what="the message to be acked")
    assert bridge.error is None and len(account_jobs(db, tenant)) == 1


def test_a_malformed_message_beside_good_ones_is_dead_lettered_and_acked_and_its_neighbours_become_jobs(
    settings, db, broker, tenant, pubsub, subscription, bridges
):
    good = [pubsub.publish(import_request(tenant, f"n{i}@example.com")) for i in range(2)]
    bad = pubsub.publish(b'{"kind": "import", "account_id": "nope"')
    good.append(pubsub.publish(import_request(tenant, "n2@example.com")))

    bridges(subscription, settings, db, broker, batch=10)

    wait_for(lambda: pubsub.acked() == {*good, bad}, what="all four messages to be acked")
    assert all(pubsub.deliveries(i) == 1 for i in [*good, bad])
    letter = db["crm.pubsub.deadletters"].find_one({"message_id": bad})
    assert letter["kind"] == "malformed" and "not JSON" in letter["error"]
    assert len(account_jobs(db, tenant)) == 3


class StorageThatBreaksOn:
    """The suite's storage, except that files holding `marker` raise an error nobody planned for."""

    def __init__(self, storage, marker: bytes):
        self.storage, self.marker = storage, marker

    def put_stream(self, key, stream, content_type=None):
        body = stream.read()
        if self.marker in body:
            raise RuntimeError("the storage driver tripped over this file")
        import io

        return self.storage.put_stream(key, io.BytesIO(body), content_type)

    def __getattr__(self, name):
        return getattr(self.storage, name)


def test_a_message_whose_recording_keeps_failing_is_dead_lettered_after_its_attempts_and_does_not_loop(
    settings, db, broker, tenant, monkeypatch, bridges
):
    server = FakeSubscription(ack_deadline=3.0, delivery_attempts=True)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", server.host)
    subscription = GoogleSubscription("crm-test", "crm-imports", rpc_timeout=2.0)
    before = bridge_stats(db).get("dead_letters", {}).get("failed", 0)
    try:
        poison = server.publish(import_request(tenant, "poison@example.com"))
        neighbours = [server.publish(import_request(tenant, f"ok{i}@example.com")) for i in range(2)]
        storage = StorageThatBreaksOn(storage_from_settings(settings), b"poison@")

        bridge = bridges(subscription, settings, db, broker, storage=storage, max_attempts=3)

        wait_for(lambda: server.acked() == {poison, *neighbours}, timeout=30, what="every message to be settled")
        assert server.deliveries(poison) == 3 and all(server.deliveries(n) == 1 for n in neighbours)
        letter = db["crm.pubsub.deadletters"].find_one({"message_id": poison})
        assert letter["kind"] == "failed" and letter["attempts"] == 3 and letter["delivery_attempt"] == 3
        assert "RuntimeError: the storage driver tripped over this file" in letter["error"]
        assert db["crm.pubsub.attempts"].find_one({"_id": poison})["attempts"] == 3
        assert len(account_jobs(db, tenant)) == 2
        assert bridge_stats(db)["dead_letters"]["failed"] == before + 1
        bridge.finish()
        assert bridge.error is None
    finally:
        subscription.close()
        server.stop()


def test_a_stop_during_a_pull_records_the_batch_in_hand_acks_it_and_ends(
    settings, db, broker, tenant, pubsub, subscription, bridges
):
    pubsub.hold_pulls.set()
    bridge = bridges(subscription, settings, db, broker, timeout=5.0)
    wait_for(lambda: pubsub.pulls_in_flight == 1, what="a pull to be waiting")
    ids = [pubsub.publish(import_request(tenant, f"last{i}@example.com")) for i in range(2)]
    bridge.stop.set()

    pubsub.release_pulls()

    assert bridge.finish(within=10) < 10 and bridge.error is None
    assert pubsub.acked() == set(ids) and pubsub.calls.pulls == 1
    assert len(account_jobs(db, tenant)) == 2


def test_a_stop_that_leaves_no_time_to_record_nacks_the_batch_in_hand(
    settings, db, broker, tenant, pubsub, subscription, bridges
):
    pubsub.hold_pulls.set()
    bridge = bridges(subscription, settings, db, broker, timeout=5.0, drain_seconds=0)
    wait_for(lambda: pubsub.pulls_in_flight == 1, what="a pull to be waiting")
    ids = [pubsub.publish(import_request(tenant, f"later{i}@example.com")) for i in range(2)]
    bridge.stop.set()

    pubsub.release_pulls()

    bridge.finish()
    assert bridge.error is None and pubsub.acked() == set()
    assert sorted(pubsub.calls.nacks) == sorted(ids)  # redelivered at once, to whoever pulls next
    assert account_jobs(db, tenant) == []


def test_a_stop_interrupts_a_backoff_wait(settings, db, broker, pubsub, subscription, bridges):
    pubsub.fail("Pull", "RESOURCE_EXHAUSTED", times=100)
    bridge = bridges(subscription, settings, db, broker, backoff=Backoff(initial=60, maximum=60))
    wait_for(lambda: pubsub.calls.failed.get("Pull") == 1, what="a pull to fail")

    assert bridge.finish(within=5) < 2 and bridge.error is None
    assert pubsub.calls.failed["Pull"] == 1


def test_a_subscription_that_does_not_exist_stops_the_bridge_with_its_error(
    settings, db, broker, pubsub, subscription, bridges
):
    pubsub.fail("Pull", "NOT_FOUND")

    bridge = bridges(subscription, settings, db, broker)

    wait_for(lambda: not bridge.thread.is_alive(), what="the bridge to stop")
    assert isinstance(bridge.error, google_errors.NotFound)


@pytest.mark.slow
def test_crm_jobs_pubsub_turns_messages_into_jobs_through_failures_and_exits_0_on_sigterm_after_acking(
    settings, db, tenant, pubsub, tmp_path
):
    pubsub.fail("Pull", "UNAVAILABLE", times=2)
    pubsub.fail("Acknowledge", "UNAVAILABLE", times=1)
    first = pubsub.publish(import_request(tenant, "proc0@example.com"))
    env = {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": pubsub.host,
        "GOOGLE_CLOUD_PROJECT_ID": "crm-test",
        "PUBSUB_IMPORT_SUBSCRIPTION": "crm-imports",
        "MONGODB_URI": settings.mongodb_uri,
        "MONGODB_DB": settings.mongodb_db,
        "REDIS_URL": settings.redis_url,
        "REDIS_NAMESPACE": settings.redis_namespace,
        "JWT_SECRET": settings.jwt_secret,
        "STORAGE_URL": settings.storage_url,
        "LOG_FORMAT": "text",
    }
    log_path = tmp_path / "pubsub.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crm_jobs.cli", "pubsub"],
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: first in pubsub.acked(), timeout=60, what="the first message to be acked")
        assert proc.poll() is None
        # SIGTERM while a pull waits, with messages arriving: the batch in hand is recorded and acked.
        pubsub.hold_pulls.set()
        wait_for(lambda: pubsub.pulls_in_flight == 1, timeout=20, what="a pull to be waiting")
        last = [pubsub.publish(import_request(tenant, f"proc{i}@example.com")) for i in (1, 2)]
        os.killpg(proc.pid, signal.SIGTERM)
        sent = time.monotonic()
        pubsub.release_pulls()
        code = proc.wait(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log_path.read_text()
    assert code == 0, output
    assert took < 10, output
    assert pubsub.acked() == {first, *last}, output
    assert pubsub.calls.failed == {"Pull": 2, "Acknowledge": 1}
    assert "pubsub pull failed" in output and "pubsub ack failed" in output
    assert len(account_jobs(db, tenant)) == 3
