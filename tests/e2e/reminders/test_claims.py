"""The scheduler's claims of due reminders, on a database of their own (claims are global, across accounts): batches
of 1,000, one notify job per account and batch, and a claim whose job was lost taken again after 10 minutes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from crm_workers.adapters.mongo import connect, ensure_indexes
from crm_workers.jobs import now
from crm_workers.services.reminders.fanout import claim_due
from tests.conftest import Tenant
from tests.e2e.reminders.helpers import add_reminder

BATCH = 1_000


@pytest.fixture
def own_db(settings):
    database = connect(settings.mongodb_uri, f"{settings.mongodb_db}_claims_{uuid.uuid4().hex[:6]}")
    ensure_indexes(database)
    yield database
    database.client.drop_database(database.name)


def _due(db, tenant, count: int):
    ts = now()
    db["crm.reminders"].insert_many(
        [
            {
                "account_id": tenant.account_id,
                "title": f"R{i}",
                "due_at": ts - timedelta(minutes=1),
                "assigned_to": [tenant.owner_uid],
                "status": "pending",
                "notified_at": None,
                "created_at": ts,
                "updated_at": ts,
            }
            for i in range(count)
        ]
    )


def test_due_reminders_are_claimed_in_batches_of_1000_with_one_claim_per_account_and_batch(own_db):
    busy, quiet = Tenant(own_db), Tenant(own_db)
    _due(own_db, busy, BATCH + 1)
    _due(own_db, quiet, 1)

    claims = claim_due(own_db, at=now(), accounts=[busy.account_id, quiet.account_id])

    sizes: dict = {}
    for account, claim_id in claims:
        held = list(own_db["crm.reminders"].find({"claim_id": claim_id}, {"account_id": 1}))
        assert {r["account_id"] for r in held} == {account}  # a claim, and so its notify job, is one account's
        sizes.setdefault(account, []).append(len(held))
    assert sorted(sizes[busy.account_id]) == [1, BATCH] and sizes[quiet.account_id] == [1]  # at most 1,000 each
    assert own_db["crm.reminders"].count_documents({"claim_id": None}) == 0
    assert claim_due(own_db, at=now(), accounts=[busy.account_id, quiet.account_id]) == []  # claimed once


def test_a_claim_whose_job_was_lost_is_taken_again_after_10_minutes(own_db):
    tenant = Tenant(own_db)
    rid = add_reminder(own_db, tenant, due_in=timedelta(minutes=-30))
    claimed_at = now() - timedelta(minutes=20)
    [(_, first)] = claim_due(own_db, at=claimed_at, accounts=[tenant.account_id])

    # Its job may still be on its way:
    assert claim_due(own_db, at=claimed_at + timedelta(minutes=9), accounts=[tenant.account_id]) == []
    [(account, again)] = claim_due(
        own_db, at=claimed_at + timedelta(minutes=10, seconds=1), accounts=[tenant.account_id]
    )

    assert account == tenant.account_id and again != first
    assert own_db["crm.reminders"].find_one({"_id": rid})["claim_id"] == again


def test_reminders_another_replica_claimed_between_two_batches_are_not_claimed_again(own_db):
    tenant = Tenant(own_db)
    _due(own_db, tenant, 30)
    other_replica: list = []

    def first_batch_claimed(account_id, claim_id):
        # The other replica ticks now: between this replica's read of the 30 due reminders and its next batch.
        if not other_replica:
            other_replica.extend(claim_due(own_db, at=now(), batch=10, accounts=[account_id]) or [None])

    mine = claim_due(own_db, at=now(), batch=10, on_claim=first_batch_claimed, accounts=[tenant.account_id])

    claims = mine + other_replica
    assert len(mine) == 1 and len(other_replica) == 2  # the rest was the other's: not claimed from under it
    for _, claim_id in claims:  # every claim (and so every notify job) still holds its whole batch
        assert own_db["crm.reminders"].count_documents({"claim_id": claim_id}) == 10
