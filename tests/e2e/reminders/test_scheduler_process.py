"""The `crm-jobs scheduler` process itself, beside a `crm-jobs worker` process: its first tick notifies what is due,
and at 08:00 in an account's timezone it starts the account's daily digest, which the worker runs and delivers."""

from __future__ import annotations

import os
import signal
import struct
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.conftest import Tenant, wait_for, wait_for_job
from tests.e2e.process_tree import crm_jobs_process, tail
from tests.e2e.reminders.helpers import add_reminder
from tests.e2e.test_queue_pools import own_world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

ZONE = "CrmTest/Eight"


def _fixed_offset_tzif(offset_seconds: int) -> bytes:
    """A TZif file (RFC 8536) for a zone at a fixed offset from UTC, minutes included: no real zone is at 08:00
    at every moment of the hour, this one is made so when the test starts."""
    chars = b"CRMT\0"
    sign = "-" if offset_seconds >= 0 else "+"  # POSIX TZ strings count west of Greenwich as positive
    hours, minutes = divmod(abs(offset_seconds) // 60, 60)

    def block(version: bytes) -> bytes:
        header = b"TZif" + version + b"\0" * 15 + struct.pack(">6l", 0, 0, 0, 0, 1, len(chars))
        return header + struct.pack(">lbb", offset_seconds, 0, 0) + chars

    return block(b"2") + block(b"2") + f"\n<CRMT>{sign}{hours}:{minutes:02d}\n".encode()


@pytest.fixture
def eight_in_the_morning(tmp_path):
    """PYTHONTZPATH for the processes, with a zone where it is 08:03 now (the digest window is 08:00–08:15)."""
    utc = datetime.now(UTC)
    offset = (8 * 60 + 3 - (utc.hour * 60 + utc.minute)) % (24 * 60)
    offset = offset - 24 * 60 if offset > 12 * 60 else offset
    (tmp_path / "zones" / "CrmTest").mkdir(parents=True)
    (tmp_path / "zones" / ZONE).write_bytes(_fixed_offset_tzif(offset * 60))
    return os.pathsep.join([str(tmp_path / "zones"), *zoneinfo.TZPATH])


def test_the_scheduler_process_notifies_due_reminders_and_digests_through_a_worker_process(
    own_world,  # noqa: F811 (the fixture, imported)
    eight_in_the_morning,
    socket_receiver,
    tmp_path,
):
    db, own = own_world["db"], own_world["settings"]
    tenant = Tenant(db)
    db["_accounts"].update_one({"_id": tenant.account_id}, {"$set": {"preferences.timezone": ZONE}})
    due = add_reminder(db, tenant, due_in=timedelta(minutes=-2), assigned=[tenant.owner_uid], title="Call Ann")
    add_reminder(db, tenant, due_in=timedelta(days=2), assigned=[tenant.owner_uid], category="email")
    own_world["start"](PYTHONTZPATH=eight_in_the_morning)
    env = {
        **os.environ,
        "MONGODB_URI": own.mongodb_uri,
        "MONGODB_DB": own.mongodb_db,
        "REDIS_URL": own.redis_url,
        "REDIS_NAMESPACE": own.redis_namespace,
        "SCHEDULER_TICK_SECONDS": "1",
        "LOG_LEVEL": "INFO",
        "PYTHONTZPATH": eight_in_the_morning,
    }
    log = tmp_path / "scheduler.log"
    leases, lease_key = redis.Redis.from_url(own.redis_url), f"{own.redis_namespace}:scheduler:leader"
    scheduler = crm_jobs_process(["scheduler"], env=env, log=log)
    try:
        notify = wait_for(
            lambda: db["queues"].find_one({"account_id": tenant.account_id, "type": "reminders.notify"}),
            timeout=60,
            what=f"the scheduler's first tick\n{tail(log)}",
        )
        digest = wait_for(
            lambda: db["queues"].find_one({"account_id": tenant.account_id, "type": "reminders.digest"}),
            timeout=60,
            what=f"the scheduler's digest run at start\n{tail(log)}",
        )
        notified, digested = wait_for_job(db, notify["_id"], timeout=60), wait_for_job(db, digest["_id"], timeout=60)
        held = leases.get(lease_key)  # the running scheduler is the leader
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        code = scheduler.wait(timeout=30)

    assert code == 0, tail(log)
    assert held and leases.get(lease_key) is None  # released on the way out: another replica takes over at once
    assert notified["status"] == "completed" and digested["status"] == "completed"
    assert db["crm.reminders"].find_one({"_id": due})["notified_at"] is not None
    [note] = list(db["crm.notifications"].find({"uid": tenant.owner_uid, "type": "digest"}))
    assert note["data"]["totals"] == {"overdue": 1, "today": 0, "upcoming": 1}
    assert digested["params"]["date"] == note["data"]["date"]  # the scheduler and the worker read the same zone
    delivered = [c["data"] for c in socket_receiver.delivered(str(tenant.owner_uid))]
    assert len(delivered) == 2  # the reminder and the digest, each once
    assert db["queues"].count_documents({"account_id": tenant.account_id, "type": "reminders.digest"}) == 1
