"""The warehouse feed from the outside: service-token endpoints, the scheduler's runs, metrics."""

from __future__ import annotations

import threading

import pytest
from bson import ObjectId

from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
from crm_workers.domain.principal import issue_service_token, issue_token
from scheduler.app import build_scheduler
from tests.conftest import JWT_SECRET, Tenant, wait_for_job
from tests.e2e.warehouse.seed import seed_account
from tests.e2e.warehouse.world import build_world

SERVICE = {"Authorization": f"Bearer {issue_service_token(JWT_SECRET, name='ops')}"}


@pytest.fixture
def world(settings, tmp_path):
    made, stop = build_world(settings, tmp_path)
    yield made
    made.release_holds()
    stop()


def feed_jobs(world) -> list[dict]:
    return list(world.db["queues"].find({"account_id": SYSTEM_ACCOUNT_ID, "type": "warehouse.export"}))


def test_a_service_token_starts_a_run_and_lists_runs_with_their_counts(world):
    seed_account(world.db, ObjectId(), contacts=4)
    client = world.client()

    started = client.post("/v1/crm/warehouse/runs", headers=SERVICE)

    assert started.status_code == 202 and started.headers["Location"] == f"/v1/crm/jobs/{started.json['id']}"
    assert started.json["type"] == "warehouse.export" and started.json["account_id"] == "0" * 24
    assert started.json["params"] == {"requested_by": "service:ops"}
    again = client.post("/v1/crm/warehouse/runs", headers=SERVICE)  # while it is queued or running: that run
    done = wait_for_job(world.db, started.json["id"])
    assert again.status_code == 202 and again.json["id"] == started.json["id"] and done["status"] == "completed"
    assert client.get(f"/v1/crm/jobs/{started.json['id']}", headers=SERVICE).json["status"] == "completed"
    listed = client.get("/v1/crm/warehouse/runs", headers=SERVICE)
    assert listed.status_code == 200
    (run,) = listed.json["runs"]
    assert run["id"] == started.json["id"] and run["status"] == "completed" and run["from"] is None
    assert run["manifest"] == f"warehouse/_runs/{run['id']}.json" and world.storage.exists(run["manifest"])
    assert run["collections"]["crm.contacts"] == {"rows": 5, "deleted": 0, "files": 1, "unexpected": 0}
    assert run["rows"] == sum(c["rows"] for c in run["collections"].values())
    assert len(feed_jobs(world)) == 1


def test_user_tokens_get_403_on_both_endpoints_and_never_see_a_run(world):
    tenant = Tenant(world.db)
    client = world.client()
    run = world.run()

    for headers in (tenant.headers(), tenant.headers(owner=False)):
        assert client.get("/v1/crm/warehouse/runs", headers=headers).status_code == 403
        assert client.post("/v1/crm/warehouse/runs", headers=headers).status_code == 403
        assert client.get(f"/v1/crm/jobs/{run['run_id']}", headers=headers).status_code == 404
        assert run["run_id"] not in [j["id"] for j in client.get("/v1/crm/jobs", headers=headers).json["jobs"]]
    assert len(feed_jobs(world)) == 1
    # A user token naming the system's account is no way in: refused as a token.
    forged = issue_token(JWT_SECRET, account_id=str(SYSTEM_ACCOUNT_ID), uid=str(ObjectId()), is_owner=True)
    assert client.get(f"/v1/crm/jobs/{run['run_id']}", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_two_schedulers_never_run_the_feed_twice_at_once(world):
    seed_account(world.db, ObjectId(), contacts=120)
    first, first_lease = build_scheduler(world.settings, blocking=False, db=world.db, broker=world.broker)
    second, second_lease = build_scheduler(world.settings, blocking=False, db=world.db, broker=world.broker)
    held = world.hold(after_processed=50)
    ticks, barrier = [], threading.Barrier(2)

    def tick(sched):
        barrier.wait()
        ticks.append(sched.get_job("warehouse-feed").func())

    threads = [threading.Thread(target=tick, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    at = held.reached()
    # The leader hands over while its run is going on: the new leader's tick finds that run, starts none.
    first_lease.release()
    assert second_lease.refresh() and not first_lease.is_leader()
    during = second.get_job("warehouse-feed").func()
    concurrent = [s.get_job("warehouse-feed").func() for s in (first, second)]
    held.release()
    done = wait_for_job(world.db, at["job_id"])
    after = second.get_job("warehouse-feed").func()
    second_done = wait_for_job(world.db, after)
    second_lease.release()

    assert [t for t in ticks if t is not None] == [at["job_id"]]  # one replica acted, the other did nothing
    assert during == at["job_id"] and concurrent == [None, at["job_id"]]
    assert done["status"] == second_done["status"] == "completed" and after != at["job_id"]
    assert second_done["started_at"] >= done["finished_at"]
    assert len(feed_jobs(world)) == 2


def test_the_feed_runs_every_warehouse_interval_and_0_turns_it_off(world):
    def planned(settings):
        sched, lease = build_scheduler(settings, blocking=False, db=world.db, broker=world.broker)
        sched.start(paused=True)
        try:
            return {job.id: job for job in sched.get_jobs()}
        finally:
            sched.shutdown(wait=False)
            lease.release()

    assert (
        planned(world.settings.with_(warehouse_interval_seconds=3600))[
            "warehouse-feed"
        ].trigger.interval.total_seconds()
        == 3600
    )
    assert "warehouse-feed" not in planned(world.settings.with_(warehouse_interval_seconds=0))


def test_metrics_count_the_rows_written_per_collection_and_the_feeds_lag(world):
    seed_account(world.db, ObjectId(), contacts=4)
    client = world.client()
    before = client.get("/metrics").get_data(as_text=True)
    world.run()

    text = client.get("/metrics").get_data(as_text=True)

    assert "\ncrm_warehouse_lag_seconds " not in before  # no run written yet: no lag to report
    assert 'crm_warehouse_rows_total{collection="crm.contacts",op="upsert"} 5.0' in text
    assert 'crm_warehouse_rows_total{collection="crm.contacts",op="delete"} 0.0' in text
    assert 'crm_warehouse_rows_total{collection="crm.deals",op="upsert"} 1.0' in text
    lag = float(next(line for line in text.splitlines() if line.startswith("crm_warehouse_lag_seconds ")).split()[1])
    assert 0 <= lag < 60
