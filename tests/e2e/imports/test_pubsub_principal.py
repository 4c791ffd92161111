"""The Pub/Sub bridge acted as an owner for every message (`Principal(…, is_owner=True)`),
so a connector acting for a non-owner under `owner_only` updated records that user cannot see. It now acts with
the message's real principal: an owner only for the JSON value `true` of `is_owner`, as for a token."""

from __future__ import annotations

import pytest

from crm_workers.jobs import now
from tests.conftest import Tenant, wait_for_job
from tests.e2e.imports.test_pubsub_bridge import bridge, message


@pytest.fixture
def guarded(db):
    t = Tenant(db, visibility="owner_only")
    ts = now()
    db["crm.contacts"].insert_one(
        {
            "account_id": t.account_id,
            "type": "person",
            "email": "boss@example.com",
            "first_name": "Boss",
            "owner": t.owner_uid,
            "tags": [],
            "created_at": ts,
            "updated_at": ts,
        }
    )
    return t


def body(tenant, kind="import", **extra):
    records = [{"email": "boss@example.com", "first_name": "Changed"}]
    common = {"entity": "contacts", "account_id": str(tenant.account_id), "uid": str(tenant.user_uid), **extra}
    if kind == "import":
        return {"kind": "import", "source": {"type": "records", "records": records}, **common}
    return {
        "kind": "connector_batch",
        "connector": "hubspot",
        "connector_import_id": "sync-1",
        "batch": 1,
        "records": records,
        **common,
    }


def the_owners_contact(db, tenant):
    return db["crm.contacts"].find_one({"account_id": tenant.account_id, "owner": tenant.owner_uid})


@pytest.mark.parametrize("kind", ["import", "connector_batch"])
@pytest.mark.parametrize("is_owner", [None, "true", 1])
def test_a_message_for_a_non_owner_never_changes_what_they_cannot_see(
    settings, db, broker, worker, guarded, kind, is_owner
):
    """The finding's message (a plain user's import: no is_owner) and variants: a connector batch, and an
    `is_owner` that is not the JSON `true`."""
    extra = {} if is_owner is None else {"is_owner": is_owner}
    subscription = bridge(settings, db, broker, [message(body(guarded, kind, **extra))])

    [job] = list(db["queues"].find({"account_id": guarded.account_id}))
    done = wait_for_job(db, job["_id"])
    assert subscription.acked and done["status"] == "completed"
    assert job["params"]["principal"]["is_owner"] is False and job["params"]["principal"]["owner_only"] is True
    assert the_owners_contact(db, guarded)["first_name"] == "Boss"  # not theirs to change
    assert done["result"]["counts"]["updated"] == 0
    assert (
        db["crm.contacts"].count_documents(
            {"account_id": guarded.account_id, "first_name": "Changed", "owner": {"$ne": guarded.user_uid}}
        )
        == 0
    )


def test_a_message_that_says_the_owner_acts_as_the_owner(settings, db, broker, worker, guarded):
    bridge(settings, db, broker, [message(body(guarded, is_owner=True, uid=str(guarded.owner_uid)))])

    [job] = list(db["queues"].find({"account_id": guarded.account_id}))
    assert wait_for_job(db, job["_id"])["status"] == "completed" and job["params"]["principal"]["is_owner"] is True
    assert the_owners_contact(db, guarded)["first_name"] == "Changed"
