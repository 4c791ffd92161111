"""Reports on one big account beside raw `$group` passes, and the nightly refresh of many small accounts.

    python bench/report_bench.py [--contacts 200000] [--deals 100000] [--logs 100000] [--accounts 1000]

One account gets N contacts, deals and automation logs spread over 120 days, and 90 days of stored exchange
rates. Each report job (`run_report`, as the worker runs it: visibility, timezone, aggregation, store) is
timed beside one raw `$group` pass over the same documents (the same `$match`, one `$group` by a constant),
in the same run; the server's `opcounters` are read around each report, and this process's peak RSS while
it runs (documents never come to Python: memory stays flat). Then 1,000 small accounts (20 contacts, 10 deals,
10 runs each) get their nightly reports through the real path (the scheduler's enqueue, Dramatiq workers on
Valkey): total time and MongoDB operations per account.

Goals (exits 1 when one is missed): each report <= 1.5x its raw pass; peak RSS growth <= 30 MB per report;
the nightly refresh of 1,000 accounts <= 20 operations per report job.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import psutil
from bson import ObjectId

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import Goals, PeakRSS, drop, opcounters, ops_between, servers  # noqa: E402
from crm_workers import jobs  # noqa: E402
from crm_workers.adapters.mongo import connect, ensure_indexes  # noqa: E402
from crm_workers.services.automations.outcome import outcome  # noqa: E402
from crm_workers.services.reports import store  # noqa: E402
from crm_workers.services.reports.nightly import enqueue_nightly_reports, slot_minutes  # noqa: E402
from crm_workers.services.reports.periods import start_of  # noqa: E402
from crm_workers.services.reports.run import run_report  # noqa: E402
from crm_workers.settings import Settings  # noqa: E402

TODAY = date(2026, 11, 30)
FIRST = TODAY - timedelta(days=89)
RANGE = {"from": FIRST.isoformat(), "to": TODAY.isoformat()}
TZ = "Europe/Berlin"
START = datetime(2026, 8, 2, tzinfo=UTC)
CHUNK = 5000


def _when(rnd) -> datetime:
    return START + timedelta(seconds=rnd.randrange(120 * 86400))


def seed_big(db, account, n_contacts, n_deals, n_logs):
    rnd = random.Random(1)
    owners = [ObjectId() for _ in range(20)]
    db["_accounts"].insert_one({"_id": account, "name": "big", "preferences": {"timezone": TZ, "currency": "EUR"}})
    for start in range(0, n_contacts, CHUNK):
        db["crm.contacts"].insert_many(
            [
                {
                    "account_id": account,
                    "type": "person" if i % 4 else "business",
                    "first_name": f"F{i}",
                    "email": f"c{i}@example.com",
                    "owner": owners[i % 20],
                    "source": ("import", "form", "api")[i % 3],
                    "tags": [],
                    "created_at": (ts := _when(rnd)),
                    "updated_at": ts,
                }
                for i in range(start, min(n_contacts, start + CHUNK))
            ]
        )
    pipelines = [ObjectId() for _ in range(3)]
    stages = {p: [ObjectId() for _ in range(5)] for p in pipelines}
    db["crm.pipelines"].insert_many(
        [{"_id": p, "account_id": account, "name": f"P{i}", "currency": "USD"} for i, p in enumerate(pipelines)]
    )
    db["crm.pipeline.stages"].insert_many(
        [
            {"_id": s, "account_id": account, "pipeline_id": p, "name": f"S{j}", "position": j}
            for p in pipelines
            for j, s in enumerate(stages[p])
        ]
    )
    deal_ids = []
    for start in range(0, n_deals, CHUNK):
        batch = []
        for i in range(start, min(n_deals, start + CHUNK)):
            p = pipelines[i % 3]
            status = ("open", "open", "won", "lost")[i % 4]
            created = _when(rnd) - timedelta(days=30)
            doc = {
                "_id": ObjectId(),
                "account_id": account,
                "name": f"D{i}",
                "pipeline_id": p,
                "stage_id": stages[p][i % 5],
                "owner": owners[i % 20],
                "status": status,
                "value": {"amount": float(rnd.randrange(100, 100000)), "currency": ("USD", "EUR", "GBP")[i % 3]},
                "created_at": created,
                "updated_at": created,
            }
            if status != "open":
                doc["closed_at"] = created + timedelta(days=rnd.randrange(1, 60))
            batch.append(doc)
            deal_ids.append(doc["_id"])
        db["crm.deals"].insert_many(batch)
    autos = [ObjectId() for _ in range(20)]
    db["crm.automations"].insert_many(
        [
            {"_id": a, "account_id": account, "pipeline_id": pipelines[0], "stage_id": stages[pipelines[0]][1]}
            for a in autos
        ]
    )
    for start in range(0, n_logs, CHUNK):
        db["automation.logs"].insert_many(
            [
                {
                    "account_id": account,
                    "automation_id": autos[i % 20],
                    "deal_id": deal_ids[i % len(deal_ids)],
                    "event_id": f"e{i}",
                    "status": (st := ("succeeded", "failed", "skipped", "waiting")[i % 4]),
                    "actions": (
                        actions := [
                            {
                                "type": t,
                                "status": "failed" if st == "failed" and t == "webhook" else "succeeded",
                                "error": f"webhook answered {500 + i % 3}"
                                if st == "failed" and t == "webhook"
                                else None,
                            }
                            for t in ("add_tags", "webhook", "notify")
                        ]
                    ),
                    "outcome": outcome(actions),  # as every run's writes keep it
                    "attempt": 1,
                    "started_at": _when(rnd),
                    "finished_at": None,
                }
                for i in range(start, min(n_logs, start + CHUNK))
            ]
        )
    db["crm.currency.rates"].insert_many(
        [
            {
                "date": (TODAY - timedelta(days=d)).isoformat(),
                "base": "EUR",
                "source": "bench",
                "rates": {"EUR": 1.0, "USD": 1.05 + d / 1000, "GBP": 0.85 + d / 2000},
            }
            for d in range(90)
        ]
    )


def raw_matches(account, zone) -> dict:
    begin, end = start_of(FIRST, zone), start_of(TODAY + timedelta(days=1), zone)
    return {
        "new_contacts": [("crm.contacts", {"account_id": account, "created_at": {"$gte": begin, "$lt": end}})],
        "pipeline": [
            ("crm.deals", {"account_id": account, "status": "open"}),
            # Each status apart: `$in` with a range is a scan of the account's deals on SecantusDB.
            ("crm.deals", {"account_id": account, "status": "won", "closed_at": {"$gte": begin, "$lt": end}}),
            ("crm.deals", {"account_id": account, "status": "lost", "closed_at": {"$gte": begin, "$lt": end}}),
        ],
        "automations": [("automation.logs", {"account_id": account, "started_at": {"$gte": begin, "$lt": end}})],
    }


def raw_pass(db, matches) -> tuple[float, int]:
    t, n = time.perf_counter(), 0
    for collection, match in matches:
        for row in db[collection].aggregate([{"$match": match}, {"$group": {"_id": None, "n": {"$sum": 1}}}]):
            n += row["n"]
    return time.perf_counter() - t, n


def report_job(db, settings, account, kind):
    params = {
        **RANGE,
        **({"interval": "day"} if kind == "new_contacts" else {}),
        **({"pipeline_id": None} if kind == "pipeline" else {}),
        **({"automation_id": None} if kind == "automations" else {}),
    }
    job, _ = jobs.create_job(
        db,
        account,
        f"reports.{kind}",
        {"report": params, "scope": "account", "key": store.report_key(params, "account")},
    )
    job = jobs.claim(db, job["_id"], stale_seconds=3600)
    t = time.perf_counter()
    result = run_report(db, settings, job, jobs.Progress(db, job), kind=kind)
    return time.perf_counter() - t, result


def big_account(db, settings, goals, args):
    from zoneinfo import ZoneInfo

    account = ObjectId()
    t = time.perf_counter()
    seed_big(db, account, args.contacts, args.deals, args.logs)
    ensure_indexes(db)
    print(
        f"seeded {args.contacts} contacts, {args.deals} deals, {args.logs} automation logs in "
        f"{time.perf_counter() - t:.0f} s"
    )
    matches = raw_matches(account, ZoneInfo(TZ))
    for kind in ("new_contacts", "pipeline", "automations"):
        raw_pass(db, matches[kind])  # warm the server's cache for both sides alike
        raw_s, n = raw_pass(db, matches[kind])
        before = opcounters(db.client)
        base = psutil.Process().memory_info().rss
        with PeakRSS() as peak:
            job_s, result = report_job(db, settings, account, kind)
        ops = ops_between(before, opcounters(db.client))
        raw_again, _ = raw_pass(db, matches[kind])
        raw_best = min(raw_s, raw_again)
        growth = (peak.peak - base) / 1e6
        print(
            f"{kind}: {n} documents; job {job_s:.2f} s vs raw $group {raw_s:.2f} s / {raw_again:.2f} s: "
            f"{job_s / raw_best:.2f}x; ops {_ops(ops)}; peak RSS +{growth:.1f} MB; {_size(result)}"
        )
        goals.at_most(f"{kind} job vs raw $group pass", job_s / raw_best, 1.5, "x")
        goals.at_most(f"{kind} peak RSS growth", growth, 30, " MB")


def _ops(ops: dict) -> str:
    return ", ".join(
        f"{k} {v}" for k, v in ops.items() if v and k in ("insert", "query", "update", "getmore", "command")
    )


def _size(result) -> str:
    data = result["data"]
    if "series" in data:
        return f"{len(data['series'])} periods, total {data['total']}"
    if "pipelines" in data:
        return f"{len(data['pipelines'])} pipelines, {len(data['leaderboard'])} owners"
    return f"{len(data['automations'])} automations, {data['totals']['runs']} runs"


def nightly(db, settings, goals, n_accounts):
    import dramatiq

    from crm_workers.bootstrap import build_worker_broker

    night = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 02:00 in Berlin
    rnd = random.Random(2)
    ids = [ObjectId() for _ in range(n_accounts)]
    db["_accounts"].insert_many(
        [{"_id": a, "name": f"small {i}", "preferences": {"timezone": TZ}} for i, a in enumerate(ids)]
    )
    for a in ids:
        db["crm.contacts"].insert_many(
            [
                {
                    "account_id": a,
                    "type": "person",
                    "created_at": (ts := night - timedelta(days=rnd.randrange(40))),
                    "updated_at": ts,
                }
                for _ in range(20)
            ]
        )
        deal_ids = (
            db["crm.deals"]
            .insert_many(
                [
                    {
                        "account_id": a,
                        "status": "won",
                        "closed_at": night - timedelta(days=3),
                        "created_at": night - timedelta(days=20),
                        "value": {"amount": 10.0},
                    }
                    for _ in range(10)
                ]
            )
            .inserted_ids
        )
        db["automation.logs"].insert_many(
            [
                {
                    "account_id": a,
                    "automation_id": ObjectId(),
                    "deal_id": d,
                    "event_id": f"{a}-{j}",
                    "status": "succeeded",
                    "actions": [],
                    "outcome": outcome([]),
                    "started_at": night - timedelta(days=2),
                }
                for j, d in enumerate(deal_ids)
            ]
        )
    broker = build_worker_broker(settings)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=4)
    worker.start()
    try:
        slots = sorted(slot_minutes(a, settings.report_spread_minutes) for a in ids)
        print(
            f"nightly: {n_accounts} accounts over {slots[-1] - slots[0] + 1} minutes of slots "
            f"(busiest 5-minute tick: {max(_per_tick(slots))} accounts)"
        )
        before = opcounters(db.client)
        t = time.perf_counter()
        for minute in range(0, settings.report_spread_minutes + 5, 5):  # every tick of the night window
            enqueue_nightly_reports(db, broker, settings, at=night + timedelta(minutes=minute), accounts=ids)
        started = len(db["queues"].distinct("account_id", {"account_id": {"$in": ids}}))
        total = 3 * n_accounts
        while (
            db["queues"].count_documents(
                {"type": {"$regex": "^reports\\."}, "status": "completed", "account_id": {"$in": ids}}
            )
            < total
        ):
            time.sleep(2)
        elapsed = time.perf_counter() - t
        ops = ops_between(before, opcounters(db.client))
    finally:
        worker.stop()
        broker.close()
    data_ops = sum(ops.get(k, 0) for k in ("insert", "query", "update", "delete", "getmore", "command"))
    print(
        f"nightly: {started} accounts started, {total} report jobs completed in {elapsed:.1f} s "
        f"({total / elapsed:.1f} jobs/s); operations {_ops(ops)}; {data_ops / n_accounts:.1f} per account "
        f"(the enqueue ticks, the jobs, and this bench's completion polls)"
    )
    goals.at_most("nightly operations per report job", data_ops / total, 20)


def _per_tick(slots):
    from collections import Counter

    return Counter(s // 5 for s in slots).values()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--no-big", action="store_true", help="only the nightly refresh of small accounts")
    args = parser.parse_args()
    goals = Goals()
    with servers(mongo_cache="4G") as (redis_url, mongodb_uri):
        settings = Settings(
            mongodb_uri=mongodb_uri,
            mongodb_db=f"bench_{uuid.uuid4().hex[:6]}",
            redis_url=redis_url,
            jwt_secret="bench-secret",
            redis_namespace=f"bench-{uuid.uuid4().hex[:6]}",
        )
        db = connect(mongodb_uri, settings.mongodb_db)
        try:
            if not args.no_big:
                big_account(db, settings, goals, args)
            if args.accounts:
                nightly(db, settings, goals, args.accounts)
        finally:
            drop(db)
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
