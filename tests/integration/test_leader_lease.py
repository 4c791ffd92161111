"""The scheduler's leader lease on a real Valkey server: exactly one replica acts; fail-over."""

from __future__ import annotations

import uuid

import redis

from crm_workers.adapters.leader import LeaderLease
from tests.conftest import wait_for


def leases(redis_url, n=2, seconds=1.0):
    client = redis.Redis.from_url(redis_url)
    key = f"test:leader:{uuid.uuid4().hex}"
    return [LeaderLease(client, key, lease_seconds=seconds) for _ in range(n)]


def test_of_two_replicas_exactly_one_leads_and_keeps_leading_while_it_refreshes(redis_url):
    a, b = leases(redis_url, seconds=5)

    results = [(a.refresh(), b.refresh()) for _ in range(5)]

    assert all(r == (True, False) for r in results)
    assert a.is_leader() and not b.is_leader()


def test_when_the_leader_stops_the_other_replica_takes_over_within_one_lease(redis_url):
    a, b = leases(redis_url, seconds=1)
    assert a.refresh() and not b.refresh()

    # a dies: it never refreshes again
    wait_for(b.refresh, timeout=3, what="the second replica to take the lease")

    assert b.is_leader() and not a.refresh()


def test_a_released_lease_is_free_at_once(redis_url):
    a, b = leases(redis_url, seconds=30)
    a.refresh()

    a.release()

    assert b.refresh() and not a.is_leader()


def test_after_redis_comes_back_empty_the_leader_takes_its_lease_again_and_only_it(redis_url):
    a, b = leases(redis_url, seconds=30)
    assert a.refresh() and not b.refresh()

    a.client.delete(a.key)  # Redis restarted without its data

    assert a.refresh() and not b.refresh()  # taken again at the next refresh, by one replica only
    assert a.client.get(a.key) is not None and a.is_leader() and not b.is_leader()
