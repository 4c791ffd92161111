"""Automation event ids are scoped to their deal and stage (docs/contract.md §3), at most 200
characters of `A-Z a-z 0-9 . _ : -`; a replay answers with the first job only to a caller who may see it (else 422
`idempotency_key_reused`); no event id reaches the webhook's `X-CRM-Event-Id` header with CR LF."""

from __future__ import annotations

from bson import ObjectId

from crm_workers.jobs import now
from crm_workers.services.job_submission import start_job
from tests.conftest import Tenant, wait_for_job
from tests.e2e.automations.test_automations import hooks  # noqa: F401 (the webhook receiver fixture)


def world(db, tenant):
    """A pipeline with a stage Qualified holding an automation (a note, a webhook later), and a deal per user."""
    a, ts = tenant.account_id, now()
    pid = db["crm.pipelines"].insert_one({"account_id": a, "name": "Sales", "currency": "USD"}).inserted_id
    stage = (
        db["crm.pipeline.stages"]
        .insert_one({"account_id": a, "pipeline_id": pid, "name": "Qualified", "position": 0})
        .inserted_id
    )
    deals = {
        who: db["crm.deals"]
        .insert_one(
            {
                "account_id": a,
                "name": f"{who}'s",
                "pipeline_id": pid,
                "stage_id": stage,
                "owner": uid,
                "tags": [],
                "contacts": [],
                "status": "open",
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
        for who, uid in (("owner", tenant.owner_uid), ("user", tenant.user_uid))
    }
    return pid, stage, deals


def add_automation(db, tenant, pid, stage, actions):
    return (
        db["crm.automations"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "pipeline_id": pid,
                "stage_id": stage,
                "trigger": "stage_entered",
                "enabled": True,
                "delay_seconds": 0,
                "actions": actions,
                "created_at": now(),
            }
        )
        .inserted_id
    )


def trigger(client, tenant, deal, stage, event_id, **who):
    return client.post(
        "/v1/crm/automations/trigger",
        json={"deal_id": str(deal), "stage_id": str(stage), "event_id": event_id},
        headers=tenant.headers(**who),
    )


def test_another_users_trigger_with_my_event_id_runs_their_own_deal(client, db, worker, hooks):  # noqa: F811
    """The finding's request: U2's trigger with U1's event id got U1's job (U1's deal, U1's principal) and U2's
    own run never happened. Variant: the same user's other deal with the same event id."""
    tenant = Tenant(db, visibility="owner_only")
    pid, stage, deals = world(db, tenant)
    third = db["crm.deals"].insert_one({**db["crm.deals"].find_one({"_id": deals["user"]}), "_id": ObjectId()})
    aid = add_automation(
        db,
        tenant,
        pid,
        stage,
        [{"type": "create_note", "params": {"content": "ran"}}, {"type": "webhook", "params": {"url": hooks.url}}],
    )
    event = f"evt-shared-{ObjectId()}"

    mine = trigger(client, tenant, deals["owner"], stage, event, owner=True)
    theirs = trigger(client, tenant, deals["user"], stage, event, owner=False)
    other_deal = trigger(client, tenant, third.inserted_id, stage, event, owner=False)

    assert mine.status_code == theirs.status_code == other_deal.status_code == 202
    ids = [r.get_json()["id"] for r in (mine, theirs, other_deal)]
    assert len(set(ids)) == 3
    jobs = [wait_for_job(db, i) for i in ids]
    assert all(j["status"] == "completed" for j in jobs), [j.get("error") for j in jobs]
    assert jobs[1]["params"]["principal"]["uid"] == str(tenant.user_uid)
    assert jobs[1]["params"]["deal_id"] == str(deals["user"])
    for deal in (deals["owner"], deals["user"], third.inserted_id):
        assert db["crm.notes"].count_documents({"deal_id": deal, "content": "ran"}) == 1
        assert db["automation.logs"].count_documents({"automation_id": aid, "deal_id": deal, "event_id": event}) == 1
    assert sorted(c["body"]["deal"]["id"] for c in hooks.for_event(event)) == sorted(
        str(d) for d in (deals["owner"], deals["user"], third.inserted_id)
    )


def test_a_replay_answers_the_first_job_only_to_whoever_may_see_it(client, db, worker):
    """The same event of the same deal and stage again: the first job for its own caller; for a caller who may
    not see it (a non-owner, the owner having triggered on their deal) a 422, never someone else's job."""
    tenant = Tenant(db, visibility="owner_only")
    pid, stage, deals = world(db, tenant)
    add_automation(db, tenant, pid, stage, [{"type": "create_note", "params": {"content": "once"}}])
    event = f"evt-replay-{ObjectId()}"

    first = trigger(client, tenant, deals["user"], stage, event, owner=True)
    again = trigger(client, tenant, deals["user"], stage, event, owner=True)
    hidden = trigger(client, tenant, deals["user"], stage, event, owner=False)

    assert first.status_code == again.status_code == 202 and first.get_json()["id"] == again.get_json()["id"]
    assert hidden.status_code == 422 and hidden.get_json()["error"]["code"] == "idempotency_key_reused"
    assert first.get_json()["id"] not in hidden.get_data(as_text=True)
    wait_for_job(db, first.get_json()["id"])
    assert db["crm.notes"].count_documents({"deal_id": deals["user"], "content": "once"}) == 1


def test_an_event_id_with_cr_lf_or_past_200_characters_is_a_400(client, db, tenant):
    """Finding 9's request (an event id with CR LF, bound for `X-CRM-Event-Id`) and variants."""
    pid, stage, deals = world(db, tenant)
    for event in ("evt\r\nX-Injected: yes", "a" * 201, "évènement", "evt id", "evt\x00"):
        response = trigger(client, tenant, deals["owner"], stage, event)
        assert response.status_code == 400, (event, response.get_json())
        assert response.get_json()["error"]["code"] == "invalid_request"
        assert "event_id" in str(response.get_json()["error"]["details"])
    assert trigger(client, tenant, deals["owner"], stage, "A-z.0_9:" + "x" * 192).status_code == 202
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 1


def test_an_event_id_with_cr_lf_already_stored_never_reaches_a_header(client, db, broker, worker, tenant, hooks):  # noqa: F811
    """Variant: an event that came another way (a job recorded before ids were checked, a follow-up) is refused
    by the webhook sender itself: the action fails for good, nothing is sent, no retry."""
    pid, stage, deals = world(db, tenant)
    aid = add_automation(db, tenant, pid, stage, [{"type": "webhook", "params": {"url": hooks.url}}])
    event = f"evt-{ObjectId()}\r\nX-Injected: yes"
    job = start_job(
        db,
        broker,
        tenant.account_id,
        "automations.run",
        {"deal_id": str(deals["owner"]), "stage_id": str(stage), "event_id": event, "depth": 0},
    )

    done = wait_for_job(db, job["_id"])
    [log] = list(db["automation.logs"].find({"automation_id": aid}))
    assert done["status"] == "completed" and done["attempts"] == 1
    assert log["status"] == "failed" and "webhook refused" in log["error"]
    assert hooks.for_event(event) == [] and not any(
        c["event_header"] and "Injected" in c["event_header"] for c in hooks.calls
    )
