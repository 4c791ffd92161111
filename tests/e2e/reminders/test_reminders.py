"""Reminders: due claims, fan-out through a real worker to a local socket receiver, replicas, recurrence, digest."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.leader import LeaderLease
from crm_workers.domain.recurrence import next_occurrence
from crm_workers.jobs import now
from crm_workers.services.reminders.digest import digest
from crm_workers.services.reminders.fanout import claim_due
from crm_workers.services.reminders.schedule import enqueue_digests, enqueue_due_reminders
from scheduler.app import build_scheduler
from tests.conftest import Tenant, wait_for
from tests.e2e.reminders.helpers import add_reminder, notify_jobs


def test_only_pending_unnotified_reminders_that_are_due_are_claimed(db, tenant):
    due = add_reminder(db, tenant, due_in=timedelta(minutes=-1))
    later = add_reminder(db, tenant, due_in=timedelta(hours=2))
    done = add_reminder(db, tenant, due_in=timedelta(minutes=-5), status="completed")
    told = add_reminder(db, tenant, due_in=timedelta(minutes=-5), notified_at=now())

    claims = claim_due(db, at=now(), accounts=[tenant.account_id])

    claimed = {r["_id"] for r in db["crm.reminders"].find({"account_id": tenant.account_id, "claim_id": {"$ne": None}})}
    assert claimed == {due} and (tenant.account_id, db["crm.reminders"].find_one({"_id": due})["claim_id"]) in claims
    assert {later, done, told}.isdisjoint(claimed)
    assert claim_due(db, at=now(), accounts=[tenant.account_id]) == []  # claimed once


def test_a_due_reminder_notifies_each_assignee_once_and_reaches_the_socket_with_a_valid_jwt(
    db, broker, worker, tenant, socket_receiver
):
    ts = now()
    contact = (
        db["crm.contacts"]
        .insert_one({"account_id": tenant.account_id, "type": "person", "tags": [], "created_at": ts, "updated_at": ts})
        .inserted_id
    )
    reminder = add_reminder(db, tenant, due_in=timedelta(seconds=-1), contact_id=contact)

    enqueue_due_reminders(db, broker, accounts=[tenant.account_id])
    [job] = notify_jobs(db, tenant.account_id)

    assert job["status"] == "completed" and job["result"] == {"reminders": 1, "delivered": 2, "poisoned": 0}
    stored = list(db["crm.notifications"].find({"account_id": tenant.account_id}))
    assert sorted(n["uid"] for n in stored) == sorted([tenant.owner_uid, tenant.user_uid])
    assert all(n["data"]["reminder_id"] == str(reminder) and n["data"]["overdue"] is False for n in stored)
    for uid in (tenant.owner_uid, tenant.user_uid):
        [call] = socket_receiver.delivered(str(uid))
        assert call["token_ok"] and call["event"] == "notification" and call["account_id"] == str(tenant.account_id)
    assert db["crm.reminders"].find_one({"_id": reminder})["notified_at"] is not None
    assert (
        db["crm.activity"].count_documents({"account_id": tenant.account_id, "entity_id": contact, "type": "reminder"})
        == 1
    )


def test_two_scheduler_replicas_ticking_at_once_notify_each_reminder_exactly_once(
    db, broker, worker, tenant, socket_receiver
):
    ids = [add_reminder(db, tenant, due_in=timedelta(seconds=-1), assigned=[tenant.owner_uid]) for _ in range(30)]
    start = threading.Barrier(2)

    def replica():
        start.wait()
        enqueue_due_reminders(db, broker, accounts=[tenant.account_id])

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = notify_jobs(db, tenant.account_id)

    wait_for(
        lambda: db["crm.reminders"].count_documents({"_id": {"$in": ids}, "notified_at": None}) == 0,
        what="every reminder notified",
    )
    # Each notify job's claim is its own: none finds its batch taken from under it by the other replica's claim.
    assert jobs and all(j["status"] == "completed" and j["result"]["reminders"] > 0 for j in jobs), jobs
    assert sum(j["result"]["reminders"] for j in jobs) == 30
    assert db["crm.notifications"].count_documents({"account_id": tenant.account_id}) == 30
    assert len(socket_receiver.delivered(str(tenant.owner_uid))) == 30


def test_when_the_leader_scheduler_stops_the_other_takes_over_within_one_lease(settings, db, broker, worker):
    tenant = Tenant(db)
    key = f"{settings.redis_namespace}:failover:{ObjectId()}"
    lease_a, lease_b = (LeaderLease(broker.client, key, lease_seconds=1) for _ in range(2))
    a, _ = build_scheduler(settings, blocking=False, db=db, broker=broker, lease=lease_a)
    b, _ = build_scheduler(settings, blocking=False, db=db, broker=broker, lease=lease_b)
    assert lease_a.is_leader() and not lease_b.refresh()
    add_reminder(db, tenant, due_in=timedelta(seconds=-1))

    # a stops (it no longer refreshes its lease); b keeps refreshing as its scheduler would
    assert b.get_job("due-reminders").func() is None
    wait_for(lease_b.refresh, timeout=5, what="b to take the lease")
    acted = b.get_job("due-reminders").func()

    assert acted and acted >= 1
    assert [j["status"] for j in notify_jobs(db, tenant.account_id)] == ["completed"]


def test_reminders_that_fell_due_during_downtime_are_notified_on_start_marked_overdue(db, broker, worker, tenant):
    add_reminder(db, tenant, due_in=timedelta(hours=-3), assigned=[tenant.owner_uid])

    enqueue_due_reminders(db, broker, accounts=[tenant.account_id])  # the first tick of a scheduler that just started
    notify_jobs(db, tenant.account_id)

    [n] = list(db["crm.notifications"].find({"account_id": tenant.account_id}))
    assert n["data"]["overdue"] is True


def test_a_failing_socket_is_retried_with_backoff_and_the_notification_is_stored_and_delivered_once(
    db, broker, worker, tenant, socket_receiver
):
    socket_receiver.fail_next[str(tenant.owner_uid)] = 1
    add_reminder(db, tenant, due_in=timedelta(seconds=-1), assigned=[tenant.owner_uid])

    enqueue_due_reminders(db, broker, accounts=[tenant.account_id])
    [job] = notify_jobs(db, tenant.account_id)

    assert job["status"] == "completed" and job["attempts"] == 2
    assert db["crm.notifications"].count_documents({"account_id": tenant.account_id}) == 1
    attempts = socket_receiver.attempts(str(tenant.owner_uid))
    assert [c["status"] for c in attempts] == [503, 200] and all(c["token_ok"] for c in attempts)
    assert db["crm.notifications"].find_one({"account_id": tenant.account_id})["delivery_attempts"] == 2


def test_a_weekly_reminder_at_nine_stays_at_nine_local_time_across_the_dst_change(db, broker, worker):
    tenant = Tenant(db)
    db["_accounts"].update_one({"_id": tenant.account_id}, {"$set": {"preferences.timezone": "Europe/Lisbon"}})
    due = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)  # Monday 9:00 in Lisbon (UTC+0); DST starts on the 29th
    assert next_occurrence(due, {"every": 1, "unit": "week"}, "Europe/Lisbon") == datetime(
        2026, 3, 30, 8, 0, tzinfo=UTC
    )
    ts = now()
    rid = (
        db["crm.reminders"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "title": "Weekly",
                "due_at": due,
                "assigned_to": [tenant.owner_uid],
                "status": "pending",
                "notified_at": None,
                "recurrence": {"every": 1, "unit": "week"},
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )

    # The tick at the time it fell due, whatever today is; over this account only.
    enqueue_due_reminders(db, broker, at=due + timedelta(minutes=1), accounts=[tenant.account_id])
    [job] = notify_jobs(db, tenant.account_id)

    [nxt] = list(db["crm.reminders"].find({"account_id": tenant.account_id, "_id": {"$ne": rid}}))
    assert job["status"] == "completed" and job["result"]["reminders"] == 1
    assert nxt["due_at"] == datetime(2026, 3, 30, 8, 0, tzinfo=UTC) and nxt["status"] == "pending"
    assert nxt["recurrence"] == {"every": 1, "unit": "week"} and nxt["series_id"] == rid
    # The next one is due in the past of the session's real clock: it would be claimed by every later tick.
    db["crm.reminders"].delete_one({"_id": nxt["_id"]})


def test_the_daily_digest_counts_overdue_today_and_upcoming_by_category(db, settings, tenant):
    at = now()
    add_reminder(db, tenant, due_in=timedelta(hours=-30), assigned=[tenant.owner_uid], category="call")
    add_reminder(db, tenant, due_in=timedelta(hours=-1), assigned=[tenant.owner_uid], category="email")
    add_reminder(db, tenant, due_in=timedelta(days=3), assigned=[tenant.owner_uid], category="call")
    add_reminder(db, tenant, due_in=timedelta(days=30), assigned=[tenant.owner_uid], category="call")
    add_reminder(db, tenant, due_in=timedelta(hours=-2), assigned=[tenant.owner_uid], status="completed")
    job, _ = jobs.create_job(db, tenant.account_id, "reminders.digest", {})
    job = jobs.claim(db, job["_id"], stale_seconds=60)

    digest(db, settings.with_(conversation_socket=""), {**job, "created_at": at}, jobs.Progress(db, job))
    digest(db, settings.with_(conversation_socket=""), {**job, "created_at": at}, jobs.Progress(db, job))

    [n] = list(db["crm.notifications"].find({"account_id": tenant.account_id, "type": "digest"}))
    assert n["uid"] == tenant.owner_uid
    assert n["data"]["totals"] == {"overdue": 2, "today": 0, "upcoming": 1}
    assert n["data"]["by_category"]["overdue"] == {"call": 1, "email": 1}
    assert n["title"] == "2 overdue, 0 due today, 1 upcoming"


def test_digests_are_enqueued_for_accounts_where_it_is_eight_in_the_morning(db, broker, worker):
    tokyo, lisbon = Tenant(db), Tenant(db)
    db["_accounts"].update_one({"_id": tokyo.account_id}, {"$set": {"preferences.timezone": "Asia/Tokyo"}})
    db["_accounts"].update_one({"_id": lisbon.account_id}, {"$set": {"preferences.timezone": "Europe/Lisbon"}})
    at = datetime(2026, 11, 24, 23, 5, tzinfo=UTC)  # 08:05 in Tokyo, 23:05 in Lisbon

    own = [tokyo.account_id, lisbon.account_id]
    enqueue_digests(db, broker, at=at, accounts=own)
    enqueue_digests(db, broker, at=at, accounts=own)  # the same slot again: no second job

    assert db["queues"].count_documents({"account_id": tokyo.account_id, "type": "reminders.digest"}) == 1
    assert db["queues"].count_documents({"account_id": lisbon.account_id, "type": "reminders.digest"}) == 0


def test_the_due_badge_counts_the_callers_reminders_only(client, db, tenant, other_tenant):
    add_reminder(db, tenant, due_in=timedelta(hours=-1), assigned=[tenant.user_uid])
    add_reminder(db, tenant, due_in=timedelta(days=2), assigned=[tenant.user_uid])
    add_reminder(db, tenant, due_in=timedelta(days=20), assigned=[tenant.user_uid])
    add_reminder(db, tenant, due_in=timedelta(hours=-1), assigned=[tenant.owner_uid])
    add_reminder(db, other_tenant, due_in=timedelta(hours=-1), assigned=[tenant.user_uid])

    week = client.get("/v1/crm/reminders/due", headers=tenant.headers(owner=False)).get_json()
    month = client.get("/v1/crm/reminders/due?window=30d", headers=tenant.headers(owner=False)).get_json()
    bad = client.get("/v1/crm/reminders/due?window=forever", headers=tenant.headers(owner=False))

    assert (week["overdue"], week["upcoming"], month["upcoming"]) == (1, 1, 2)
    assert bad.status_code == 400 and bad.get_json()["error"]["details"] == {"field": "window"}


def test_completing_a_recurring_reminder_creates_the_next_one_once_and_not_for_another_account(
    client, db, tenant, other_tenant
):
    rid = add_reminder(db, tenant, due_in=timedelta(days=1), recurrence={"every": 1, "unit": "day"})

    first = client.post(f"/v1/crm/reminders/{rid}/complete", headers=tenant.headers())
    again = client.post(f"/v1/crm/reminders/{rid}/complete", headers=tenant.headers())
    foreign = client.post(f"/v1/crm/reminders/{rid}/complete", headers=other_tenant.headers())

    assert first.status_code == 200 and first.get_json()["next_occurrence_id"] == again.get_json()["next_occurrence_id"]
    assert foreign.status_code == 404
    assert db["crm.reminders"].count_documents({"account_id": tenant.account_id}) == 2
    assert db["crm.reminders"].find_one({"_id": rid})["status"] == "completed"
