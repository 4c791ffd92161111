"""Pure unit tests of Redis-side logic on fakeredis, where a real server adds nothing: the scheduler's leader lease,
the per-account fairness slots and their keys, and the broker figures the operator view reads.

fakeredis runs Lua only with `lupa`, which is not a dependency. Where the product code calls a Lua script (the
lease's renewal and release, the slot's acquisition), the script is replaced by a stand-in that gives the one
answer the test needs and records what it was asked; what is tested is the Python around it and the plain
commands it sends. The scripts themselves are tested on the real Valkey (`tests/integration/test_leader_lease.py`,
`tests/e2e/test_worker_middleware.py`).
"""

from __future__ import annotations

import time

import fakeredis
import pytest
from bson import ObjectId
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import SkipMessage

from crm_workers.adapters.broker import BROKER_HEARTBEAT_TIMEOUT_MS, broker_depths, live_workers, queue_depths
from crm_workers.adapters.leader import LeaderLease
from crm_workers.adapters.middleware.account_fairness import AccountFairness, waiting_key
from crm_workers.domain.job_types import HEAVY_QUEUES, Queue
from tests.conftest import wait_for

# --- the scheduler's leader lease ------------------------------------------------------------------------------


def holds_no_lease(lease: LeaderLease):
    """Stands in for the lease's renewal script where its answer is known: the replica holds no lease, so nothing is
    renewed (0). It fails the test if it is asked where the real script would have renewed."""

    def renew(*, keys, args):
        assert lease.client.get(keys[0]) != args[0].encode(), "the stand-in was asked to renew a lease held"
        return 0

    return renew


def replicas(client, n=2, *, lease_seconds, clock=time.monotonic) -> list[LeaderLease]:
    leases = [LeaderLease(client, "crm:scheduler:leader", lease_seconds=lease_seconds, clock=clock) for _ in range(n)]
    for lease in leases:
        lease._renew = holds_no_lease(lease)
    return leases


def test_of_two_replicas_only_one_takes_a_free_lease():
    client = fakeredis.FakeRedis()
    a, b = replicas(client, lease_seconds=15)

    assert a.refresh() and not b.refresh()

    assert a.is_leader() and not b.is_leader()
    assert client.get(a.key) == a.token.encode()


def test_a_lease_not_renewed_expires_and_another_replica_takes_it_but_never_while_the_first_believes_it_leads():
    client = fakeredis.FakeRedis()
    a, b = replicas(client, lease_seconds=0.3)
    assert a.refresh() and not b.refresh()

    def b_takes_over():
        taken = b.refresh()
        # asked after b's refresh: had Redis let b in while a still believed in its lease, two would lead at once
        assert not (taken and a.is_leader()), "b took the lease while a still believed it led"
        return taken

    # a stops refreshing (it died); b keeps trying
    wait_for(b_takes_over, timeout=3, what="the other replica to take the expired lease")

    assert b.is_leader() and not a.is_leader()
    assert client.get(a.key) == b.token.encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_replica_believes_in_its_lease_no_longer_than_redis_keeps_it_though_the_round_trip_was_slow():
    clock = Clock()

    class SlowRedis(fakeredis.FakeRedis):
        def set(self, *args, **kwargs):
            clock.now += 0.4  # the round trip that takes the lease lasts 0.4 s
            return super().set(*args, **kwargs)

    [a] = replicas(SlowRedis(), 1, lease_seconds=1, clock=clock)
    assert a.refresh()  # asked at 1000.0; Redis may have started the lease then

    clock.now = 1000.99
    assert a.is_leader()
    clock.now = 1001.0  # one lease after the request: Redis may already have let the lease go
    assert not a.is_leader()


# --- account fairness: slots and their keys ---------------------------------------------------------------------

HEAVY = sorted(HEAVY_QUEUES)[0]
LIGHT = Queue.NOTIFICATIONS
assert LIGHT not in HEAVY_QUEUES


class Acquire:
    """Stands in for the slot's acquisition script: answers `granted` and records what it was asked."""

    def __init__(self, granted: bool) -> None:
        self.granted = granted
        self.calls: list[tuple[list, list]] = []

    def __call__(self, *, keys, args):
        self.calls.append((keys, args))
        return int(self.granted)


class Refuse:
    def __call__(self, *, keys, args):
        raise AssertionError(f"a slot was asked for: {keys}")


class Broker:
    """Records what the middleware enqueues."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[Message, int]] = []

    def enqueue(self, message, *, delay=None):
        self.enqueued.append((message, delay))
        return message


def fairness(client, *, acquire, limit=2, lease_seconds=60, namespace="crm", **kwargs) -> AccountFairness:
    middleware = AccountFairness(
        client=client, queues=HEAVY_QUEUES, limit=limit, lease_seconds=lease_seconds, namespace=namespace, **kwargs
    )
    middleware._acquire = acquire
    return middleware


def message(account: str | None, queue: str = HEAVY) -> MessageProxy:
    options = {"account_id": account} if account else {}
    return MessageProxy(
        Message(queue_name=str(queue), actor_name="job", args=(), kwargs={"job_id": str(ObjectId())}, options=options)
    )


def slots(client, account: str, namespace: str = "crm") -> dict[bytes, float]:
    return dict(client.zrange(f"{namespace}:running:{account}", 0, -1, withscores=True))


def test_every_accounts_slots_and_waiting_marks_have_keys_of_their_own_prefixed_by_the_namespace():
    client = fakeredis.FakeRedis()
    acquire = Acquire(granted=True)
    # two workers, each running a heavy job of another account
    worker_a, worker_b = fairness(client, acquire=acquire), fairness(client, acquire=acquire)
    worker_a.before_process_message(Broker(), message("acc-A"))
    worker_b.before_process_message(Broker(), message("acc-B"))

    worker_a.renew()
    worker_b.renew()

    assert [keys for keys, _ in acquire.calls] == [["crm:running:acc-A"], ["crm:running:acc-B"]]
    assert sorted(client.keys()) == [b"crm:running:acc-A", b"crm:running:acc-B"]
    assert len(slots(client, "acc-A")) == len(slots(client, "acc-B")) == 1
    assert slots(client, "acc-A").keys() != slots(client, "acc-B").keys()
    assert fairness(client, acquire=acquire, namespace="other").key("acc-A") == "other:running:acc-A"
    assert waiting_key("crm", "job-1") == "crm:waiting:job-1"
    assert len({waiting_key("crm", "job-1"), waiting_key("crm", "job-2"), waiting_key("other", "job-1")}) == 3


def test_a_running_jobs_slot_is_leased_at_its_accounts_limit_renewed_and_written_back_after_redis_lost_it():
    client = fakeredis.FakeRedis()
    acquire = Acquire(granted=True)
    worker = fairness(client, acquire=acquire, limit=2, lease_seconds=60)

    worker.before_process_message(Broker(), message("acc-A"))

    [(keys, (now_ms, limit, token, expiry_ms, key_ttl_ms))] = acquire.calls
    assert keys == ["crm:running:acc-A"] and limit == 2  # the script is told the account's limit, no more
    assert expiry_ms - now_ms == 60_000 and key_ttl_ms == 120_000

    worker.renew()
    renewed_at = time.time() * 1000
    assert slots(client, "acc-A").keys() == {token.encode()}
    assert abs(slots(client, "acc-A")[token.encode()] - (renewed_at + 60_000)) < 1_000  # one lease from now
    assert 119_000 < client.pttl("crm:running:acc-A") <= 120_000  # the key outlives the slots it holds

    client.flushall()  # Redis restarted without its data
    worker.renew()
    assert slots(client, "acc-A").keys() == {token.encode()}


@pytest.mark.parametrize(
    "ends",
    [
        lambda w, b, m: w.after_process_message(b, m, result=None),
        lambda w, b, m: w.after_process_message(b, m, exception=RuntimeError("boom")),
        lambda w, b, m: w.after_skip_message(b, m),  # e.g. the job was claimed elsewhere: a later middleware skips it
    ],
    ids=["completed", "failed", "skipped"],
)
def test_a_job_that_ends_gives_its_slot_back_and_no_later_renewal_writes_it_back(ends):
    client = fakeredis.FakeRedis()
    worker, broker, msg = fairness(client, acquire=Acquire(granted=True)), Broker(), message("acc-A")
    worker.before_process_message(broker, msg)
    worker.renew()
    assert len(slots(client, "acc-A")) == 1

    ends(worker, broker, msg)

    assert slots(client, "acc-A") == {}
    worker.renew()
    assert slots(client, "acc-A") == {}


def test_a_message_over_its_accounts_limit_waits_delayed_without_a_slot_and_its_job_is_marked_waiting():
    client = fakeredis.FakeRedis()
    worker, broker = fairness(client, acquire=Acquire(granted=False), waiting_mark_seconds=300), Broker()
    msg = message("acc-A")

    with pytest.raises(SkipMessage):
        worker.before_process_message(broker, msg)
    worker.after_skip_message(broker, msg)  # what Dramatiq calls next
    worker.renew()

    [(again, delay)] = broker.enqueued
    assert again.message_id == msg.message_id and again.kwargs == msg.kwargs and again.options == msg.options
    assert 250 <= delay <= 500  # the default wait, and up to as much again at random
    mark = waiting_key("crm", msg.kwargs["job_id"])
    assert client.keys() == [mark.encode()]  # the mark the lost-job sweeper looks for, and no slot
    assert 299_000 < client.pttl(mark) <= 300_000  # it goes away by itself once the job stops waiting


@pytest.mark.parametrize(
    ("msg", "limit"),
    [(message("acc-A", LIGHT), 2), (message(None), 2), (message("acc-A"), 0)],
    ids=["light-queue", "no-account", "no-limit"],
)
def test_a_job_off_the_heavy_queues_without_an_account_or_without_a_limit_never_waits_for_a_slot(msg, limit):
    client = fakeredis.FakeRedis()
    worker, broker = fairness(client, acquire=Refuse(), limit=limit), Broker()

    worker.before_process_message(broker, msg)
    worker.renew()
    worker.after_process_message(broker, msg)

    assert broker.enqueued == [] and client.keys() == []


def test_the_slots_of_a_worker_that_died_leave_redis_on_their_own():
    client = fakeredis.FakeRedis()
    worker = fairness(client, acquire=Acquire(granted=True), lease_seconds=1)
    worker.before_process_message(Broker(), message("acc-A"))
    worker.renew()
    assert len(slots(client, "acc-A")) == 1

    # the worker dies: it neither renews nor releases
    wait_for(lambda: not client.exists("crm:running:acc-A"), timeout=5, what="the dead worker's slots to expire")


# --- the broker figures of the operator view ---------------------------------------------------------------------


def broker(client, namespace="crm-dramatiq") -> RedisBroker:
    return RedisBroker(client=client, namespace=namespace, middleware=[], heartbeat_timeout=BROKER_HEARTBEAT_TIMEOUT_MS)


def test_the_operator_sees_only_live_workers_with_every_message_each_holds():
    client = fakeredis.FakeRedis()
    b, now_ms = broker(client), time.time() * 1000
    ns = b.namespace
    # the keys Dramatiq's dispatch script writes: heartbeats in ms, unacked messages per worker and queue
    client.zadd(
        f"{ns}:__heartbeats__",
        {
            "worker:host-1:11:aaaa": now_ms - 2_000,
            "worker:host-2:22:bbbb": now_ms - BROKER_HEARTBEAT_TIMEOUT_MS - 1_000,  # silent past the timeout: dead
            "client:host-3:33:cccc": now_ms,  # an enqueuer, not a worker
        },
    )
    client.sadd(f"{ns}:__acks__.worker:host-1:11:aaaa.imports", "m1", "m2")
    client.sadd(f"{ns}:__acks__.worker:host-1:11:aaaa.bulk.DQ", "m3")
    client.sadd(f"{ns}:__acks__.worker:host-2:22:bbbb.imports", "m4")

    [worker] = live_workers(b)

    assert worker["id"] == "worker:host-1:11:aaaa" and worker["host"] == "host-1 (pid 11)"
    assert worker["messages_held"] == 3
    assert 1.9 <= worker["seconds_since_heartbeat"] <= 3


def test_queue_depths_count_waiting_delayed_and_dead_lettered_messages_of_their_namespace_apart():
    client = fakeredis.FakeRedis()
    b = broker(client)
    ns = b.namespace
    client.rpush(f"{ns}:imports", "m1", "m2")
    client.rpush(f"{ns}:imports.DQ", "m3")  # a retry's back-off or a fairness wait
    client.zadd(f"{ns}:imports.XQ", {"m4": 1})  # Dramatiq gave up on it
    client.rpush("other-dramatiq:imports", "x1", "x2", "x3")  # another deployment's queue on the same server

    depths = broker_depths(b)

    assert depths["imports"] == {"waiting": 2, "delayed": 1, "dead_letter": 1}
    assert all(d == {"waiting": 0, "delayed": 0, "dead_letter": 0} for q, d in depths.items() if q != "imports")
    assert set(depths) == {str(q) for q in Queue}
    assert queue_depths(b)["imports"] == 3  # waiting and delayed: what still has to run
