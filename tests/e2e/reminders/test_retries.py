"""A notify job that dies part-way through its claim and is run again tells every assignee exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers.jobs import Progress, now
from crm_workers.services.reminders import fanout
from crm_workers.services.reminders.fanout import CLAIM_STALE, claim_due, notify_claimed
from tests.e2e.reminders.helpers import add_reminder


class Died(Exception):
    """Raised where the process is killed in these tests."""


def _run(db, settings, claim, attempt: int) -> dict:
    account_id, claim_id = claim
    job = {
        "_id": ObjectId(),
        "account_id": account_id,
        "params": {"claim_id": claim_id},
        "created_at": now(),
        "attempts": attempt,
    }
    return notify_claimed(db, settings, job, Progress(db, job, clock=lambda: 0.0))  # never flushes: no job record


def _die_at_insert(monkeypatch, *, after: int) -> None:
    """The process dies at the bulk insert after `after` of them went through."""
    real, calls = fanout.insert_new, []

    def insert_new(collection, docs):
        if len(calls) >= after:
            raise Died()
        calls.append(collection.name)
        real(collection, docs)

    monkeypatch.setattr(fanout, "insert_new", insert_new)


def _told_once(db, tenant, socket_receiver, reminders: list) -> None:
    stored = list(db["crm.notifications"].find({"account_id": tenant.account_id}))
    assert len(stored) == 2 * len(reminders) == len({n["dedupe_key"] for n in stored})
    assert all(n["delivered_at"] is not None for n in stored)
    for uid in (tenant.owner_uid, tenant.user_uid):
        assert sorted(c["data"]["reminder_id"] for c in socket_receiver.delivered(str(uid))) == sorted(
            str(r) for r in reminders
        )
    assert db["crm.reminders"].count_documents({"_id": {"$in": reminders}, "notified_at": None}) == 0
    assert db["crm.activity"].count_documents({"account_id": tenant.account_id, "type": "reminder"}) == len(reminders)


def _contact(db, tenant) -> ObjectId:
    ts = now()
    return (
        db["crm.contacts"]
        .insert_one({"account_id": tenant.account_id, "type": "person", "tags": [], "created_at": ts, "updated_at": ts})
        .inserted_id
    )


@pytest.mark.parametrize("inserts_done", [0, 1], ids=["before-the-notifications", "after-the-notifications"])
def test_a_claim_retried_after_its_job_died_notifies_each_assignee_once(
    db, settings, tenant, socket_receiver, monkeypatch, inserts_done
):
    reminders = [
        add_reminder(
            db,
            tenant,
            due_in=timedelta(seconds=-1),
            contact_id=_contact(db, tenant),
            recurrence={"every": 1, "unit": "day"},
        )
        for _ in range(5)
    ]
    [claim] = claim_due(db, at=now(), accounts=[tenant.account_id])
    _die_at_insert(monkeypatch, after=inserts_done)

    with pytest.raises(Died):
        _run(db, settings, claim, attempt=1)
    assert socket_receiver.delivered(str(tenant.owner_uid)) == []  # nobody was told by the run that died
    monkeypatch.undo()
    result = _run(db, settings, claim, attempt=2)

    assert result == {"reminders": 5, "delivered": 10, "poisoned": 0}
    _told_once(db, tenant, socket_receiver, reminders)
    nexts = list(db["crm.reminders"].find({"series_id": {"$in": reminders}}))
    assert len(nexts) == 5 and all(r["notified_at"] is None for r in nexts)
    assert _run(db, settings, claim, attempt=3) == {"reminders": 5, "delivered": 0, "poisoned": 0}  # once more
    _told_once(db, tenant, socket_receiver, reminders)


def test_a_claim_whose_job_died_before_its_inserts_is_taken_again_once_stale_and_notified_once(
    db, settings, tenant, socket_receiver, monkeypatch
):
    reminders = [
        add_reminder(db, tenant, due_in=timedelta(seconds=-1), contact_id=_contact(db, tenant)) for _ in range(3)
    ]
    [claim] = claim_due(db, at=now(), accounts=[tenant.account_id])
    _die_at_insert(monkeypatch, after=0)
    with pytest.raises(Died):
        _run(db, settings, claim, attempt=1)
    monkeypatch.undo()

    [again] = claim_due(db, at=now() + CLAIM_STALE + timedelta(minutes=1), accounts=[tenant.account_id])
    assert again != claim
    assert _run(db, settings, again, attempt=1) == {"reminders": 3, "delivered": 6, "poisoned": 0}
    assert _run(db, settings, claim, attempt=2)["reminders"] == 0  # the old claim has nothing left
    _told_once(db, tenant, socket_receiver, reminders)
