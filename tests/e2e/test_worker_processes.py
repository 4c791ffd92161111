"""Real `crm-jobs worker` processes: scale-out on one broker, and a SIGKILL in the middle of a job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
import redis
from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.broker import enqueue_job, make_broker
from crm_workers.services.housekeeping import requeue_stale_jobs
from tests.conftest import wait_for, wait_for_job
from tests.e2e.mass.test_tags_delete import make_tag, seed_tagged

pytestmark = pytest.mark.slow

#: Long enough that no live worker's run is ever taken for a dead one; the tests sweep at a time of their own.
STALE_SECONDS = 60


@pytest.fixture
def own_namespace(settings):
    """Settings on a broker namespace of their own, so the in-process test worker does not take these jobs."""
    return settings.with_(
        redis_namespace=f"{settings.redis_namespace}-{uuid.uuid4().hex[:6]}", job_stale_seconds=STALE_SECONDS
    )


class WorkerProcess:
    def __init__(self, settings, *, threads: int = 2, extra_env: dict | None = None, queues: tuple = ()):
        env = {
            **os.environ,
            "MONGODB_URI": settings.mongodb_uri,
            "MONGODB_DB": settings.mongodb_db,
            "REDIS_URL": settings.redis_url,
            "REDIS_NAMESPACE": settings.redis_namespace,
            "BULK_BATCH_SIZE": str(settings.bulk_batch_size),
            "JOB_HEARTBEAT_SECONDS": "1",
            "JOB_STALE_SECONDS": str(settings.job_stale_seconds),
            "LOG_LEVEL": "WARNING",
            "STORAGE_URL": settings.storage_url,
            "PUBLIC_URL": settings.public_url,
            "IMPORT_CHUNK_ROWS": str(settings.import_chunk_rows),
            "dramatiq_prom_port": "0",
            "JOB_TEST_HOLDS": "1",
            **(extra_env or {}),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crm_jobs.cli",
                "worker",
                "--processes",
                "1",
                "--threads",
                str(threads),
                *(["--queues", *queues] if queues else []),
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers():
    started = []
    yield lambda settings, **kw: started.append(WorkerProcess(settings, **kw)) or started[-1]
    for w in started:
        w.stop()


def broker_workers_alive(settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    return client.zcard(f"{settings.redis_namespace}-dramatiq:__heartbeats__")


def test_two_worker_processes_share_a_stream_of_jobs_and_every_job_runs_once(db, own_namespace, workers):
    broker = make_broker(own_namespace, for_worker=False)
    workers(own_namespace)
    workers(own_namespace)
    wait_for(lambda: broker_workers_alive(own_namespace) >= 2, timeout=60, what="two workers on the broker")
    ids = []
    for _ in range(40):
        account = ObjectId()
        tag = make_tag(db, account)
        seed_tagged(db, account, tag, contacts=30, deals=0)
        job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(tag)})
        enqueue_job(broker, job)
        ids.append(job["_id"])

    done = [wait_for_job(db, job_id, timeout=120) for job_id in ids]

    assert all(j["status"] == "completed" and j["attempts"] == 1 for j in done)
    assert all(j["result"]["contacts_updated"] == 30 for j in done)
    assert len({j["worker"] for j in done}) == 2


def test_a_worker_killed_mid_job_leaves_it_to_a_new_worker_that_completes_it_exactly_once(
    db, own_namespace, workers, hold
):
    broker = make_broker(own_namespace, for_worker=False)
    account = ObjectId()
    tag = make_tag(db, account)
    seed_tagged(db, account, tag, contacts=600, deals=0)
    job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(tag)})
    held = hold(account, after_processed=200)
    first = workers(own_namespace)
    enqueue_job(broker, job)
    held.reached(timeout=60)

    first.kill()  # while it waits between two batches
    held.release()
    mid = db["queues"].find_one({"_id": job["_id"]})
    # Its progress is what its last once-a-second write said (a hold writes nothing): at most where it stopped.
    assert mid["status"] == "running" and mid["progress"]["processed"] <= 200
    assert db["crm.contacts"].count_documents({"account_id": account, "tags": tag}) == 400

    workers(own_namespace)

    # The scheduler's sweep, as it runs once the dead run's heartbeat is older than the stale window.
    assert (
        requeue_stale_jobs(
            db,
            broker,
            stale_seconds=STALE_SECONDS,
            accounts=[account],
            at=jobs.now() + timedelta(seconds=STALE_SECONDS + 1),
        )
        == 1
    )

    done = wait_for_job(db, job["_id"], timeout=90)
    assert done["status"] == "completed" and done["attempts"] == 2
    assert done["progress"] == {"total": 600, "processed": 600, "succeeded": 600, "failed": 0, "percent": 100.0}
    assert done["result"]["contacts_updated"] == 600
    assert db["crm.contacts"].count_documents({"account_id": account, "tags": tag}) == 0
    assert db["crm.contacts"].count_documents({"account_id": account}) == 600
    # Each record's tag was taken once, by one run: one trash entry per contact.
    assert db["crm.trash"].count_documents({"job_id": job["_id"], "collection": "crm.contacts"}) == 600
    assert db["crm.tags"].find_one({"_id": tag}) is None


def test_a_worker_killed_mid_import_resumes_after_the_saved_row_and_leaves_one_contact_per_email(
    db, own_namespace, workers, hold
):
    import io

    from crm_workers.adapters.storage import storage_from_settings
    from crm_workers.domain.principal import Principal
    from crm_workers.services.imports.intake import import_upload

    broker = make_broker(own_namespace, for_worker=False)
    account = ObjectId()
    rows = 4000
    content = "email,first_name,tags\n" + "".join(f"p{i}@example.com,P{i},Batch;T{i % 3}\n" for i in range(rows))
    held = hold(account, after_processed=1000)  # after its tenth chunk of 100 rows is written and saved
    first = workers(own_namespace)
    job = import_upload(
        db,
        broker,
        storage_from_settings(own_namespace),
        own_namespace,
        Principal(account, ObjectId(), True),
        "contact",
        stream=io.BytesIO(content.encode()),
        file_name="big.csv",
        options={},
    )
    held.reached(timeout=60)

    first.kill()
    held.release()
    mid = db["queues"].find_one({"_id": job["_id"]})
    assert mid["status"] == "running" and mid["progress"]["processed"] == mid["state"]["rows_done"] == 1000
    assert db["crm.contacts"].count_documents({"account_id": account}) == 1000

    workers(own_namespace)

    assert (
        requeue_stale_jobs(
            db,
            broker,
            stale_seconds=STALE_SECONDS,
            accounts=[account],
            at=jobs.now() + timedelta(seconds=STALE_SECONDS + 1),
        )
        == 1
    )

    done = wait_for_job(db, job["_id"], timeout=120)
    assert done["status"] == "completed" and done["attempts"] == 2
    assert done["result"]["counts"] == {"created": rows, "updated": 0, "skipped": 0, "failed": 0}
    # The second run read from the saved row on: no row before it was parsed or written again.
    assert done["result"]["rows_read_per_attempt"] == [
        {"attempt": 1, "from_row": 0, "rows": 1000},
        {"attempt": 2, "from_row": 1000, "rows": rows - 1000},
    ]
    assert sum(r["rows"] for r in done["result"]["rows_read_per_attempt"]) == rows
    assert (
        db["crm.contacts"].count_documents(
            {
                "account_id": account,
                "updated_at": {"$gt": mid["heartbeat_at"]},
                "created_at": {"$lt": mid["heartbeat_at"]},
            }
        )
        == 0
    )
    emails = [c["email"] for c in db["crm.contacts"].find({"account_id": account}, {"email": 1})]
    assert len(emails) == rows and len(set(emails)) == rows
    assert db["crm.tags"].count_documents({"account_id": account}) == 4


def test_each_worker_machine_exports_dramatiqs_prometheus_metrics(db, own_namespace, workers, tmp_path):
    import requests

    from crm_jobs.servers import free_port

    port = free_port()
    broker = make_broker(own_namespace, for_worker=False)
    workers(own_namespace, extra_env={"dramatiq_prom_port": str(port), "dramatiq_prom_db": str(tmp_path)})
    account = ObjectId()
    tag = make_tag(db, account)
    job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(tag)})
    enqueue_job(broker, job)
    wait_for_job(db, job["_id"], timeout=60)

    def scraped():
        try:
            text = requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
        except requests.RequestException:
            return None
        return 'actor_name="job_tags_delete"' in text and text

    text = wait_for(scraped, timeout=30, interval=0.5, what="the worker's metrics")
    assert "dramatiq_messages_total" in text


def test_a_killed_workers_unacked_message_is_redelivered_by_dramatiq_once_it_is_30_s_silent(
    db, own_namespace, workers, hold
):
    from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

    from crm_workers.adapters.broker import BROKER_HEARTBEAT_TIMEOUT_MS

    broker = make_broker(own_namespace, for_worker=False)
    ns = f"{own_namespace.redis_namespace}-dramatiq"
    account = ObjectId()
    tag = make_tag(db, account)
    seed_tagged(db, account, tag, contacts=60, deals=0)
    job, _ = jobs.create_job(db, account, "tags.delete", {"tag_id": str(tag)})
    held = hold(account, after_processed=20)
    first = workers(own_namespace)
    enqueue_job(broker, job)
    held.reached(timeout=60)
    [acks] = [k for k in broker.client.scan_iter(f"{ns}:__acks__.*.bulk") if broker.client.scard(k)]
    dead_worker = acks.decode().removeprefix(f"{ns}:__acks__.").removesuffix(".bulk")

    first.kill()  # its message stays unacknowledged, in its ack set
    held.release()
    # Dramatiq's own maintenance (its dispatch script), made certain here instead of 1 % of commands, with the
    # broker's heartbeat timeout: a worker silent for less than 30 s keeps its messages.
    maintenance = RedisBroker(
        client=broker.client,
        namespace=ns,
        heartbeat_timeout=broker.heartbeat_timeout,
        maintenance_chance=MAINTENANCE_SCALE,
    )
    assert broker.heartbeat_timeout == BROKER_HEARTBEAT_TIMEOUT_MS == 30_000
    maintenance.do_qsize("bulk")
    assert broker.client.scard(acks) == 1 and broker.client.llen(f"{ns}:bulk") == 0
    # Its last heartbeat put 30 s back, as if that long had passed: the next maintenance gives the message back.
    last = broker.client.zscore(f"{ns}:__heartbeats__", dead_worker)
    broker.client.zadd(f"{ns}:__heartbeats__", {dead_worker: last - broker.heartbeat_timeout - 1})
    maintenance.do_qsize("bulk")
    assert broker.client.exists(acks) == 0 and broker.client.llen(f"{ns}:bulk") == 1

    # A new worker takes the redelivered message (no sweep runs here) and, the dead run's heartbeat being stale
    # for it, resumes the job: every contact's tag taken once.
    wait_for(
        lambda: (jobs.now() - db["queues"].find_one({"_id": job["_id"]})["heartbeat_at"]).total_seconds() > 3,
        timeout=20,
        what="the dead run's heartbeat to be 3 s old",
    )
    workers(own_namespace.with_(job_stale_seconds=3))
    done = wait_for_job(db, job["_id"], timeout=90)

    assert done["status"] == "completed" and done["attempts"] == 2 and done.get("reenqueues", 0) == 0
    assert done["result"]["contacts_updated"] == 60
    assert db["crm.contacts"].count_documents({"account_id": account, "tags": tag}) == 0
    assert db["crm.trash"].count_documents({"job_id": job["_id"], "collection": "crm.contacts"}) == 60
