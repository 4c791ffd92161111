"""A sender claims a delivery from the copy it read, with one write: only while the delivery is still that copy.

The dispatcher keeps due deliveries it read for senders that come free; by the time one is claimed another sender
may have made an attempt, or a user pressed retry. The claim must then miss, never take the delivery with its
old attempt count or retry window. Each test has a database of its own: no worker's dispatcher looks there.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers.adapters.mongo import WEBHOOK_DELIVERIES, connect
from crm_workers.jobs import now
from crm_workers.services.webhooks import sender


@pytest.fixture
def own_db(mongodb_uri):
    db = connect(mongodb_uri, f"claims_{uuid.uuid4().hex[:8]}")
    yield db
    db.client.drop_database(db.name)


def pending(db) -> ObjectId:
    ts = now() - timedelta(seconds=1)
    return (
        db[WEBHOOK_DELIVERIES]
        .insert_one(
            {
                "account_id": ObjectId(),
                "subscription_id": None,
                "target": "callback",
                "url": "http://127.0.0.1:9/hook",
                "event": "job.completed",
                "event_id": f"evt-{uuid.uuid4().hex}",
                "job_id": ObjectId(),
                "job_type": "tags.delete",
                "body": "{}",
                "status": "pending",
                "attempts": 0,
                "last_status_code": None,
                "last_error": None,
                "next_attempt_at": ts,
                "give_up_at": ts + timedelta(hours=24),
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )


def test_a_copy_read_before_another_senders_attempt_is_not_claimed(own_db):
    delivery_id = pending(own_db)
    [read_by_one] = sender.due(own_db, limit=5)
    [read_by_another] = sender.due(own_db, limit=5)

    first = sender.claim(own_db, read_by_one)
    sender.record(own_db, first, "retry", 503, "answered 503", retry_base_seconds=0)  # due again at once
    stale = sender.claim(own_db, read_by_another)
    [read_again] = sender.due(own_db, limit=5)
    second = sender.claim(own_db, read_again)

    assert first["attempts"] == 1 and stale is None
    assert second["attempts"] == 2
    stored = own_db[WEBHOOK_DELIVERIES].find_one({"_id": delivery_id})
    assert stored["attempts"] == 2 and stored["claim_id"] == second["claim_id"]
    assert stored["next_attempt_at"] > now() + timedelta(seconds=30)  # leased while the attempt runs


def test_a_copy_read_before_a_retry_reset_its_window_is_not_claimed(own_db):
    delivery_id = pending(own_db)
    [read] = sender.due(own_db, limit=5)
    ts = now()
    own_db[WEBHOOK_DELIVERIES].update_one(  # what the retry button writes to a pending one: a new 24 h window
        {"_id": delivery_id}, {"$set": {"give_up_at": ts + timedelta(hours=24), "updated_at": ts}}
    )

    assert sender.claim(own_db, read) is None
    [fresh] = sender.due(own_db, limit=5)
    claimed = sender.claim(own_db, fresh)
    assert claimed["give_up_at"] == own_db[WEBHOOK_DELIVERIES].find_one({"_id": delivery_id})["give_up_at"]
    assert claimed["attempts"] == 1


def test_a_rotated_secret_signs_every_attempt_made_a_second_after_the_rotation(own_db):
    from crm_workers.adapters.mongo import WEBHOOKS

    account = ObjectId()
    sub = own_db[WEBHOOKS].insert_one({"account_id": account, "secret": "old-secret", "created_at": now()}).inserted_id
    delivery = {"account_id": account, "subscription_id": sub}
    assert sender._secret(own_db, delivery) == "old-secret"
    own_db[WEBHOOKS].update_one({"_id": sub}, {"$set": {"secret": "new-secret"}})  # rotated

    within = sender._secret(own_db, delivery)
    key = (account, sub)
    kept_at, kept = sender._secrets[key]
    sender._secrets[key] = (kept_at - sender.SECRET_SECONDS, kept)  # as a second later
    after = sender._secret(own_db, delivery)
    own_db[WEBHOOKS].delete_one({"_id": sub})
    sender._secrets[key] = (kept_at - sender.SECRET_SECONDS, kept)
    deleted = sender._secret(own_db, delivery)

    assert (within, after, deleted) == ("old-secret", "new-secret", None)
