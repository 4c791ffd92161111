"""The nightly recompute: each account's default reports at night in its own time, spread over the window."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo import MongoClient

from crm_workers.services.reports.nightly import accounts_due, enqueue_nightly_reports, slot_minutes
from tests.conftest import Tenant, wait_for_job
from tests.mongo_commands import Commands


def _in_zone(db, tz: str) -> Tenant:
    tenant = Tenant(db)
    db["_accounts"].update_one({"_id": tenant.account_id}, {"$set": {"preferences.timezone": tz}})
    return tenant


def _slot_at(tenant, settings, night: datetime) -> datetime:
    return night + timedelta(minutes=slot_minutes(tenant.account_id, settings.report_spread_minutes))


def test_an_accounts_default_reports_are_computed_once_in_its_own_night(db, broker, worker, settings):
    tokyo, lisbon = _in_zone(db, "Asia/Tokyo"), _in_zone(db, "Europe/Lisbon")
    accounts = [tokyo.account_id, lisbon.account_id]
    # 02:00 on 2026-11-25 in Tokyo is 17:00 UTC the day before; in Lisbon (UTC+0 in winter) 02:00 UTC.
    tokyo_slot = _slot_at(tokyo, settings, datetime(2026, 11, 24, 17, 0, tzinfo=UTC))

    started = enqueue_nightly_reports(db, broker, settings, at=tokyo_slot + timedelta(minutes=2), accounts=accounts)
    seen = Commands()
    watched = MongoClient(settings.mongodb_uri, tz_aware=True, event_listeners=[seen])[settings.mongodb_db]
    again = enqueue_nightly_reports(watched, broker, settings, at=tokyo_slot + timedelta(minutes=7), accounts=accounts)
    watched.client.close()

    assert (started, again) == (1, 1)  # the next tick still finds it due, and makes no second job
    # ... nor tries to: one read of the keys already taken for every account due, nothing written.
    assert seen.names == [("find", "_accounts"), ("find", "crm.idempotency_keys")]
    jobs = list(db["queues"].find({"account_id": {"$in": accounts}}))
    assert sorted(j["type"] for j in jobs) == ["reports.automations", "reports.new_contacts", "reports.pipeline"]
    assert {j["account_id"] for j in jobs} == {tokyo.account_id}
    for job in jobs:
        done = wait_for_job(db, job["_id"])
        assert done["status"] == "completed" and done["result"]["params"]["to"] == "2026-11-25"
    # What the nightly job stored is what a user's GET with the default parameters finds (same params, scope).
    stored = db["crm.reports"].find_one({"account_id": tokyo.account_id, "kind": "pipeline"})
    assert stored["scope"] == "account" and stored["params"] == {
        "from": "2026-10-27",
        "to": "2026-11-25",
        "pipeline_id": None,
    }
    assert (
        enqueue_nightly_reports(db, broker, settings, at=tokyo_slot - timedelta(minutes=1), accounts=accounts) == 0
    )  # before its slot: nothing


def test_a_slot_in_the_hour_a_dst_change_skips_is_still_reached_once(db, settings):
    # 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST, so 02:xx never shows on a clock there.
    account_id = next(i for i in iter(ObjectId, None) if slot_minutes(i, settings.report_spread_minutes) < 50)
    db["_accounts"].insert_one({"_id": account_id, "preferences": {"timezone": "Europe/Berlin"}})
    slot = datetime(2026, 3, 29, 1, 0, tzinfo=UTC) + timedelta(
        minutes=slot_minutes(account_id, settings.report_spread_minutes)
    )
    midnight = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)

    ticks = [midnight + timedelta(minutes=t) for t in range(0, 24 * 60, 5)]
    hits = [
        t
        for t in ticks
        if accounts_due(
            db,
            at=t,
            hour=settings.report_night_hour,
            spread_minutes=settings.report_spread_minutes,
            accounts=[account_id],
        )
    ]

    assert hits and slot <= hits[0] < slot + timedelta(minutes=5)  # the first tick after its slot (as an instant)
    assert all(h - hits[0] < timedelta(minutes=30) for h in hits)  # the catch-up window only: one local date


def test_ten_thousand_accounts_in_one_timezone_are_spread_over_the_night_window(settings):
    spread = settings.report_spread_minutes
    per_tick = Counter(slot_minutes(ObjectId(), spread) // 5 for _ in range(10_000))

    assert len(per_tick) == spread // 5  # every 5-minute tick of the window starts some
    assert max(per_tick.values()) < 2 * 10_000 / (spread // 5)  # and none more than twice its share
