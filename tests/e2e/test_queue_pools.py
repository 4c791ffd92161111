"""Queues by kind of work, through real `crm-jobs worker` processes: a huge import never delays a reminder when
quick work has its own pool (`crm-jobs worker --queues notifications automations`), and a worker started with
`--queues` consumes only those queues."""

from __future__ import annotations

import io
import os
import signal
import uuid
from datetime import timedelta

import psutil
import pytest
from bson import ObjectId

from crm_api import create_app
from crm_workers.adapters.broker import make_broker
from crm_workers.adapters.mongo import connect, ensure_indexes
from crm_workers.services.reminders.schedule import enqueue_due_reminders
from tests.conftest import APP_SECRET, Tenant, wait_for, wait_for_job
from tests.e2e.reminders.helpers import add_reminder
from tests.e2e.test_worker_processes import WorkerProcess

pytestmark = pytest.mark.slow

ROWS = 5_000


@pytest.fixture
def own_world(settings, socket_receiver):
    """Settings on a database and broker namespace of their own (no other test's jobs or reminders), an API on
    them, and a way to start worker processes on chosen queues (all of them when none is named)."""
    run = uuid.uuid4().hex[:6]
    own = settings.with_(
        redis_namespace=f"{settings.redis_namespace}-pools-{run}",
        mongodb_db=f"{settings.mongodb_db}_pools_{run}",
        job_stale_seconds=120,
    )
    db = connect(own.mongodb_uri, own.mongodb_db)
    ensure_indexes(db)
    broker = make_broker(own, for_worker=False)
    started: list[WorkerProcess] = []

    def start(*queues, **env):
        started.append(
            WorkerProcess(
                own,
                threads=1,
                queues=queues,
                extra_env={"CONVERSATION_SOCKET": socket_receiver.url, "APP_SECRET": APP_SECRET, **env},
            )
        )
        return started[-1]

    yield {
        "settings": own,
        "db": db,
        "broker": broker,
        "start": start,
        "client": create_app(own, db=db, broker=broker).test_client(),
    }
    for w in started:
        os.killpg(w.proc.pid, signal.SIGCONT)
        w.stop()
    broker.close()
    db.client.drop_database(own.mongodb_db)


def _pids(worker: WorkerProcess) -> set[int]:
    root = psutil.Process(worker.proc.pid)
    return {root.pid, *(p.pid for p in root.children(recursive=True))}


def test_a_reminder_is_notified_while_a_huge_import_holds_the_import_pool(own_world, socket_receiver):
    db, client = own_world["db"], own_world["client"]
    heavy = own_world["start"]("imports", "bulk", "exports")
    quick = own_world["start"]("notifications", "automations")
    tenant = Tenant(db)
    rows = "".join(f"Person{i},person{i}@example.com\n" for i in range(ROWS))
    started = client.post(
        "/v1/crm/contacts/import",
        headers=tenant.headers(),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(f"Name,Email\n{rows}".encode()), "big.csv")},
    )
    assert started.status_code == 202, started.get_json()
    import_id = ObjectId(started.get_json()["id"])
    wait_for(
        lambda: db["queues"].find_one({"_id": import_id})["status"] == "running",
        timeout=60,
        what="the heavy pool to take the import",
    )
    os.killpg(heavy.proc.pid, signal.SIGSTOP)  # the import now holds the heavy pool for as long as the test likes

    add_reminder(db, tenant, due_in=timedelta(minutes=-1), assigned=[tenant.owner_uid])
    # What the scheduler's tick does (for this test's account):
    assert enqueue_due_reminders(db, own_world["broker"], accounts=[tenant.account_id]) == 1
    [notify] = list(db["queues"].find({"account_id": tenant.account_id, "type": "reminders.notify"}))
    notified = wait_for_job(db, notify["_id"], timeout=60)

    held = db["queues"].find_one({"_id": import_id})
    assert notified["status"] == "completed" and held["status"] == "running"
    assert held["progress"]["processed"] < ROWS  # the reminder did not wait for the import
    assert [c["status"] for c in socket_receiver.attempts(str(tenant.owner_uid))] == [200]
    assert int(notified["worker"].rsplit(":", 1)[1]) in _pids(quick)  # notifications: only the quick pool
    assert int(held["worker"].rsplit(":", 1)[1]) in _pids(heavy)  # imports: only the heavy pool

    # The quick pool can only take its queues: an import sent before a second reminder is still waiting in Redis,
    # untaken, once the quick pool has notified that later reminder.
    small = client.post(
        "/v1/crm/contacts/import",
        headers=tenant.headers(),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"Name,Email\nLate,late@example.com\n"), "small.csv")},
    )
    assert small.status_code == 202, small.get_json()
    add_reminder(db, tenant, due_in=timedelta(minutes=-1), assigned=[tenant.owner_uid])
    assert enqueue_due_reminders(db, own_world["broker"], accounts=[tenant.account_id]) == 1
    later = [
        j
        for j in db["queues"].find({"account_id": tenant.account_id, "type": "reminders.notify"})
        if j["_id"] != notify["_id"]
    ]
    assert [wait_for_job(db, j["_id"], timeout=60)["status"] for j in later] == ["completed"]
    waiting = db["queues"].find_one({"_id": ObjectId(small.get_json()["id"])})
    assert waiting["status"] == "queued" and waiting["attempts"] == 0
    imports_queue = f"{own_world['settings'].redis_namespace}-dramatiq:imports"
    assert own_world["broker"].client.llen(imports_queue) == 1  # its message, not taken by the quick pool

    os.killpg(heavy.proc.pid, signal.SIGCONT)
    done = wait_for_job(db, import_id, timeout=120)
    assert done["status"] == "completed" and done["attempts"] == 1
    assert done["result"]["counts"]["created"] == ROWS
    late = wait_for_job(db, waiting["_id"], timeout=120)
    assert late["status"] == "completed" and int(late["worker"].rsplit(":", 1)[1]) in _pids(heavy)
