"""A warehouse run whose `crm-jobs worker` process is SIGKILLed mid-run: no manifest, and the retry writes the same
files (names and rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
from crm_workers.services.housekeeping import requeue_stale_jobs
from tests.conftest import wait_for_job
from tests.e2e.test_worker_processes import WorkerProcess
from tests.e2e.warehouse.seed import seed_account
from tests.e2e.warehouse.world import build_world, ids

pytestmark = pytest.mark.slow

STALE_SECONDS = 60


@pytest.fixture
def world(settings, tmp_path):
    made, stop = build_world(settings, tmp_path, worker=False, job_stale_seconds=STALE_SECONDS)
    processes: list[WorkerProcess] = []
    made.worker_process = lambda: (
        processes.append(
            WorkerProcess(
                made.settings,
                extra_env={
                    "WAREHOUSE_BATCH_SIZE": str(made.settings.warehouse_batch_size),
                    "WAREHOUSE_LAG_SECONDS": "0",
                    "JOB_STALE_SECONDS": str(STALE_SECONDS),
                },
            )
        )
        or processes[-1]
    )
    yield made
    made.release_holds()
    for p in processes:
        p.stop()
    stop()


def test_a_worker_killed_mid_run_leaves_no_manifest_and_the_retry_writes_the_same_files(world):
    seeded = [seed_account(world.db, ObjectId(), contacts=150) for _ in range(2)]  # 302 contacts, 2 deals
    held = world.hold(after_processed=303)  # contacts written and uploaded, deals read
    first = world.worker_process()
    run = world.start()
    at = held.reached(timeout=90)

    first.kill()
    held.release()
    assert at["processed"] == 304
    run_id = str(run["_id"])
    assert world.manifest(run_id) is None
    written = world.storage.list("warehouse/")
    assert len(written) == 1 and written[0].startswith("warehouse/crm.contacts/dt=")
    assert written[0].endswith(f"/{run_id}-0.parquet")
    import pyarrow.parquet as pq

    before = pq.read_table(world.storage.path(written[0])).to_pylist()

    world.worker_process()
    assert (
        requeue_stale_jobs(
            world.db,
            world.broker,
            stale_seconds=STALE_SECONDS,
            accounts=[SYSTEM_ACCOUNT_ID],
            at=jobs.now() + timedelta(seconds=STALE_SECONDS + 1),
        )
        == 1
    )
    done = wait_for_job(world.db, run["_id"], timeout=90)

    assert done["status"] == "completed" and done["attempts"] == 2
    manifest = world.manifest(run_id)
    assert manifest["collections"]["crm.contacts"]["files"] == written
    after = pq.read_table(world.storage.path(written[0])).to_pylist()
    assert after == before
    assert ids(world.rows(manifest, "crm.contacts")) == sorted(str(i) for s in seeded for i in s["crm.contacts"])
    assert ids(world.rows(manifest, "crm.deals")) == sorted(str(i) for s in seeded for i in s["crm.deals"])
    listed = sorted(k for c in manifest["collections"].values() for k in c["files"])
    assert sorted(world.storage.list("warehouse/")) == sorted([*listed, f"warehouse/_runs/{run_id}.json"])
