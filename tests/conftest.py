"""Shared server fixtures, started once per session: real Valkey and a real MongoDB-wire server.

REDIS_URL / MONGODB_URI, when set, are used instead of starting servers.
"""

from __future__ import annotations

import os
import time
import uuid

import dramatiq
import pytest
from bson import ObjectId

from crm_jobs.servers import EmbeddedMongo, EmbeddedValkey
from crm_workers.adapters.mongo import connect, ensure_indexes
from crm_workers.domain.principal import issue_token
from crm_workers.settings import Settings
from tests.realworld import realworld  # noqa: F401 (a fixture: the samples' folder, or the test fails)

JWT_SECRET = "test-jwt-secret-that-is-32-bytes-long"


@pytest.fixture(scope="session")
def redis_url():
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedValkey()
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def mongodb_uri():
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    server = EmbeddedMongo(":memory:")
    uri = server.start()
    yield uri
    server.stop()


APP_SECRET = "test-app-secret-for-the-socket-service"


@pytest.fixture(scope="session")
def socket_receiver():
    """A local socket emit service on 127.0.0.1 that checks the JWT and can fail on purpose."""
    from tests.socket_receiver import SocketReceiver

    receiver = SocketReceiver(APP_SECRET)
    yield receiver
    receiver.stop()


@pytest.fixture
def hook_receiver():
    """The tests' one webhook endpoint (tests/hook_receiver.py), a fresh one per test: its queued statuses and
    calls are that test's alone."""
    from tests.hook_receiver import HookReceiver

    receiver = HookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def settings(redis_url, mongodb_uri, tmp_path_factory, socket_receiver) -> Settings:
    run = uuid.uuid4().hex[:8]
    return Settings(
        conversation_socket=socket_receiver.url,
        webhook_allow_private=True,  # the tests' webhook receivers listen on 127.0.0.1
        app_secret=APP_SECRET,
        storage_url=f"file://{tmp_path_factory.mktemp('storage')}",
        import_chunk_rows=100,
        mongodb_uri=mongodb_uri,
        mongodb_db=f"crm_test_{run}",
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        redis_namespace=f"crmtest-{run}",
        bulk_batch_size=10,
        job_heartbeat_seconds=1,
        job_stale_seconds=60,  # no live run is taken for a dead one on a slow machine; tests sweep at their own time
        job_test_holds=True,  # tests may hold a job at a checkpoint (crm_workers/jobs/holds.py)
        webhook_poll_seconds=0.2,  # job-event webhooks: looked for and retried in tenths of seconds, not 30 s
        webhook_retry_seconds=0.2,
    )


@pytest.fixture(scope="session")
def db(settings):
    database = connect(settings.mongodb_uri, settings.mongodb_db)
    ensure_indexes(database)
    yield database
    if os.environ.get("MONGODB_URI"):  # a shared server keeps no test data; our own one goes with its memory
        database.client.drop_database(settings.mongodb_db)


@pytest.fixture(scope="session")
def broker(settings, db):
    from crm_workers.bootstrap import build_worker_broker

    broker = build_worker_broker(settings)
    yield broker
    broker.close()


@pytest.fixture(scope="session")
def worker(broker):
    """A real Dramatiq worker, in-process, consuming every queue."""
    # What `dramatiq` does in each worker process it boots: starts the time-limit and shutdown-notice managers.
    broker.emit_after("process_boot")
    w = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    w.start()
    yield w
    w.stop()


@pytest.fixture(scope="session")
def app(settings, db, broker):
    from crm_api import create_app

    return create_app(settings, db=db, broker=broker)


@pytest.fixture(scope="session")
def live_api(app):
    """The app on a real HTTP port on 127.0.0.1, for clients outside the test process (CLI, browser, fuzzer)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def client(app):
    return app.test_client()


class Tenant:
    """An account with an owner and a plain user, and their bearer headers."""

    def __init__(self, db, *, visibility: str = "everyone"):
        self.account_id = ObjectId()
        self.owner_uid = ObjectId()
        self.user_uid = ObjectId()
        db["_accounts"].insert_one(
            {"_id": self.account_id, "name": f"acct {self.account_id}", "preferences": {"crm_visibility": visibility}}
        )

    def headers(self, *, owner: bool = True, uid: ObjectId | None = None, **extra) -> dict:
        uid = uid or (self.owner_uid if owner else self.user_uid)
        token = issue_token(JWT_SECRET, account_id=str(self.account_id), uid=str(uid), is_owner=owner)
        return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture
def tenant(db):
    return Tenant(db)


@pytest.fixture
def other_tenant(db):
    return Tenant(db)


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Hold:
    """A job of the account held at a checkpoint until `release()` (crm_workers/jobs/holds.py)."""

    def __init__(self, db, account_id, **kwargs):
        from crm_workers.jobs import holds

        self._db, self._holds = db, holds
        self.id = holds.hold(db, account_id, **kwargs)

    def reached(self, timeout: float = 30.0) -> dict:
        """Wait until a job waits at the hold; the hold then (`job_id`, `processed`)."""
        return wait_for(lambda: self._holds.held(self._db, self.id), timeout=timeout, what="a job at the hold")

    def release(self) -> None:
        self._holds.release(self._db, self.id)

    def release_for_the_next_checkpoint_to_write(self) -> None:
        """Release once the held job's last progress write is a flush interval old: the checkpoint it is held at
        then writes (and so sees a cancel made meanwhile), as it would after any step that long. A hold writes
        nothing itself, so what the test then sees is the checkpoint's doing."""
        from crm_workers.jobs import now
        from crm_workers.jobs.progress import PROGRESS_FLUSH_SECONDS

        job_id = self._holds.held(self._db, self.id)["job_id"]
        # Its write's time is taken just before the write; the run's own clock starts just after: a margin.
        wait_for(
            lambda: (
                (now() - self._db["queues"].find_one({"_id": job_id})["updated_at"]).total_seconds()
                >= PROGRESS_FLUSH_SECONDS + 0.5
            ),
            timeout=10,
            what="a flush interval since the job's last write",
        )
        self.release()


@pytest.fixture
def hold(db):
    """`hold(account_id, job_type=None, after_processed=1)`: hold that account's next job; released at teardown."""
    made = []
    yield lambda account_id, **kwargs: made.append(Hold(db, account_id, **kwargs)) or made[-1]
    for h in made:
        h.release()


def wait_for_job(db, job_id, statuses=("completed", "failed", "cancelled"), timeout: float = 30.0) -> dict:
    return wait_for(
        lambda: (doc := db["queues"].find_one({"_id": ObjectId(str(job_id))})) and doc["status"] in statuses and doc,
        timeout=timeout,
        what=f"job {job_id} to reach {statuses}",
    )
