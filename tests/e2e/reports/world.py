"""Seeded data for report tests, and the reports computed again here, independently, from what was seeded."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId

from crm_workers.services.migrations import fill_outcomes

# Around DST changes: Europe/Berlin 2026-03-29 and 2026-10-25, New York 2026-03-08 and 2026-11-01.
START = datetime(2026, 3, 1, tzinfo=UTC)
SPAN_HOURS = 24 * 75
RATE_DAYS = {
    "2026-02-27": {"USD": 1.05, "GBP": 0.83},
    "2026-03-20": {"USD": 1.10, "GBP": 0.85},
    "2026-03-30": {"USD": 1.20, "GBP": 0.86},
    "2026-04-15": {"USD": 1.25, "GBP": 0.88},
}


def local_day(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz)).date()


def seed_account(db, tenant, *, tz: str, currency: str | None = "EUR", seed: int = 1, n: int = 160) -> dict:
    """Contacts, two pipelines with deals in several currencies and states, automation runs; what was made."""
    rnd = random.Random(seed)
    aid = tenant.account_id
    db["_accounts"].update_one({"_id": aid}, {"$set": {"preferences.timezone": tz, "preferences.currency": currency}})
    owners = [tenant.owner_uid, tenant.user_uid, ObjectId(), None]

    def when():
        # whole minutes, some right around local midnight
        return START + timedelta(minutes=rnd.randrange(SPAN_HOURS * 60))

    contacts = [
        {
            "account_id": aid,
            "type": rnd.choice(["person", "person", "business"]),
            "source": rnd.choice(["import", "form", None]),
            "owner": rnd.choice(owners),
            "created_at": when(),
        }
        for _ in range(n)
    ]
    for c in contacts:
        if c["source"] is None:
            del c["source"]
        c["updated_at"] = c["created_at"]
    db["crm.contacts"].insert_many(contacts)
    pipelines = []
    for name, cur in (("Sales", "USD"), ("Renewals", None)):
        pid = db["crm.pipelines"].insert_one({"account_id": aid, "name": name, "currency": cur}).inserted_id
        stage_ids = (
            db["crm.pipeline.stages"]
            .insert_many(
                [
                    {"account_id": aid, "pipeline_id": pid, "name": s, "position": i}
                    for i, s in enumerate(["Lead", "Demo", "Won"])
                ]
            )
            .inserted_ids
        )
        pipelines.append({"_id": pid, "name": name, "currency": cur, "stages": stage_ids})
    deals = []
    for _ in range(n // 2):
        p = rnd.choice(pipelines)
        status = rnd.choice(["open", "open", "won", "lost"])
        created = when() - timedelta(days=rnd.randrange(30))
        deal = {
            "account_id": aid,
            "name": "d",
            "pipeline_id": p["_id"],
            "stage_id": rnd.choice(p["stages"]),
            "owner": rnd.choice(owners),
            "status": status,
            "created_at": created,
            "updated_at": created,
        }
        value_currency = rnd.choice(["USD", "EUR", "GBP", None, "AED"])
        if rnd.random() < 0.9:
            deal["value"] = {"amount": round(rnd.uniform(10, 5000), 2)}
            if value_currency:
                deal["value"]["currency"] = value_currency
        if status != "open":
            deal["closed_at"] = max(created + timedelta(minutes=5), when())
        deals.append(deal)
    db["crm.deals"].insert_many(deals)
    automation_ids = (
        db["crm.automations"]
        .insert_many(
            [
                {
                    "account_id": aid,
                    "pipeline_id": p["_id"],
                    "stage_id": p["stages"][1],
                    "trigger": "stage_entered",
                    "enabled": True,
                    "actions": [],
                }
                for p in pipelines
            ]
        )
        .inserted_ids
    )
    logs = []
    for i in range(n // 2):
        deal = rnd.choice(deals)
        status = rnd.choice(["succeeded", "failed", "skipped", "waiting", "running"])
        actions = [
            {
                "type": t,
                "status": rnd.choice(["succeeded", "failed"]) if status in ("succeeded", "failed") else "pending",
                "error": None,
            }
            for t in rnd.sample(["add_tags", "webhook", "notify"], 2)
        ]
        for a in actions:
            if a["status"] == "failed":
                a["error"] = rnd.choice(["webhook answered 500", "no such user", "timeout"])
        logs.append(
            {
                "account_id": aid,
                "automation_id": rnd.choice(automation_ids),
                "deal_id": deal["_id"],
                "event_id": f"e{seed}-{i}",
                "status": status,
                "actions": actions,
                "attempt": 1,
                "started_at": when(),
                "finished_at": None,
            }
        )
    db["automation.logs"].insert_many(logs)
    fill_outcomes(db)  # stored as before runs kept their `outcome`: the migration fills it, as at a start
    return {
        "contacts": contacts,
        "deals": deals,
        "pipelines": pipelines,
        "logs": logs,
        "tz": tz,
        "currency": currency,
        "automations": automation_ids,
    }


def _in(at, tz, first, last):
    return at is not None and first <= local_day(at, tz) <= last


def _label(day: date, interval: str) -> str:
    if interval == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    if interval == "month":
        return day.replace(day=1).isoformat()
    return day.isoformat()


def expected_new_contacts(world, first: date, last: date, interval: str, owner=None) -> dict:
    tz = world["tz"]
    mine = [
        c for c in world["contacts"] if _in(c["created_at"], tz, first, last) and (owner is None or c["owner"] == owner)
    ]
    labels, day = [], first
    while day <= last:
        if _label(day, interval) not in labels:
            labels.append(_label(day, interval))
        day += timedelta(days=1)
    series = {label: {"period": label, "persons": 0, "businesses": 0, "total": 0} for label in labels}
    for c in mine:
        row = series[_label(local_day(c["created_at"], tz), interval)]
        row["total"] += 1
        row["persons" if c["type"] == "person" else "businesses"] += 1
    owners = Counter(str(c["owner"]) if c["owner"] else None for c in mine)
    return {
        "interval": interval,
        "timezone": tz,
        "series": list(series.values()),
        "by_source": dict(Counter(c.get("source", "unknown") for c in mine)),
        "by_owner": sorted(
            ({"owner": o, "count": n} for o, n in owners.items()), key=lambda r: (-r["count"], r["owner"] or "")
        ),
        "total": len(mine),
    }


def _rate_table(day: str | None, shipped: dict):
    days = sorted(d for d in RATE_DAYS if day is None or d <= day)
    if not days:
        return shipped
    return {"EUR": 1.0, **RATE_DAYS[days[-1]]}


def _convert(amount, currency, base, day, shipped):
    for table in (_rate_table(day, shipped), shipped):
        if currency in table and base in table:
            return amount / table[currency] * table[base]
    return None


def expected_pipeline(world, first: date, last: date, base: str, shipped: dict, owner=None) -> dict:
    tz = world["tz"]
    pipelines = {p["_id"]: p for p in world["pipelines"]}
    per_pipeline = defaultdict(lambda: defaultdict(float))
    per_stage = defaultdict(lambda: defaultdict(float))
    per_owner = defaultdict(lambda: defaultdict(float))
    for d in world["deals"]:
        if owner is not None and d["owner"] != owner:
            continue
        if d["status"] != "open" and not _in(d.get("closed_at"), tz, first, last):
            continue
        currency = (
            (d.get("value") or {}).get("currency")
            or pipelines[d["pipeline_id"]]["currency"]
            or world["currency"]
            or base
        )
        day = None if d["status"] == "open" else local_day(d["closed_at"], tz).isoformat()
        amount = (d.get("value") or {}).get("amount") or 0
        value = _convert(amount, currency, base, day, shipped) if amount else 0.0
        for tally in (per_pipeline[d["pipeline_id"]], per_owner[d["owner"]]):
            tally[d["status"] + "_count"] += 1
            if d["status"] != "lost":
                tally[d["status"] + "_value"] += value or 0.0
            if d["status"] == "won":
                tally["days"] += (d["closed_at"] - d["created_at"]).total_seconds() / 86400
        if d["status"] == "open":
            per_stage[d["stage_id"]]["open_count"] += 1
            per_stage[d["stage_id"]]["open_value"] += value or 0.0

    def rate(t):
        won, lost = int(t["won_count"]), int(t["lost_count"])
        return round(won / (won + lost), 4) if won + lost else None

    out = []
    for p in sorted(world["pipelines"], key=lambda p: p["name"]):
        t = per_pipeline[p["_id"]]
        out.append(
            {
                "pipeline_id": str(p["_id"]),
                "name": p["name"],
                "stages": [
                    {
                        "stage_id": str(s),
                        "name": n,
                        "position": i,
                        "open_count": int(per_stage[s]["open_count"]),
                        "open_value": round(per_stage[s]["open_value"], 2),
                    }
                    for i, (s, n) in enumerate(zip(p["stages"], ["Lead", "Demo", "Won"], strict=True))
                ],
                "open_count": int(t["open_count"]),
                "open_value": round(t["open_value"], 2),
                "won_count": int(t["won_count"]),
                "won_value": round(t["won_value"], 2),
                "lost_count": int(t["lost_count"]),
                "win_rate": rate(t),
            }
        )
    board = [
        {
            "owner": str(o) if o else None,
            "won_count": int(t["won_count"]),
            "won_value": round(t["won_value"], 2),
            "lost_count": int(t["lost_count"]),
            "open_count": int(t["open_count"]),
            "open_value": round(t["open_value"], 2),
            "win_rate": rate(t),
            "avg_days_to_win": round(t["days"] / t["won_count"], 1) if t["won_count"] else None,
        }
        for o, t in per_owner.items()
    ]
    board.sort(key=lambda r: (-r["won_value"], r["owner"] or ""))
    return {"pipelines": out, "leaderboard": board}


def expected_automations(world, first: date, last: date, deals_visible=None) -> dict:
    tz = world["tz"]
    ids = {d["_id"] for d in world["deals"] if deals_visible is None or deals_visible(d)}
    runs = defaultdict(lambda: {"runs": 0, "succeeded": 0, "failed": 0, "skipped": 0, "waiting": 0})
    actions = defaultdict(lambda: defaultdict(lambda: {"succeeded": 0, "failed": 0}))
    errors = defaultdict(Counter)
    for log in world["logs"]:
        if not _in(log["started_at"], tz, first, last) or log["deal_id"] not in ids:
            continue
        a = log["automation_id"]
        runs[a]["runs"] += 1
        if log["status"] in runs[a]:
            runs[a][log["status"]] += 1
        for act in log["actions"]:
            if act["status"] in ("succeeded", "failed"):
                actions[a][act["type"]][act["status"]] += 1
            if act["status"] == "failed":
                errors[a][act["error"]] += 1
    autos = {a: world["pipelines"][i] for i, a in enumerate(world["automations"])}
    listed = [
        {
            "automation_id": str(a),
            "pipeline_id": str(autos[a]["_id"]),
            "stage_id": str(autos[a]["stages"][1]),
            **r,
            "actions": {t: dict(v) for t, v in sorted(actions[a].items())},
            "top_errors": [
                {"error": e, "count": n} for e, n in sorted(errors[a].items(), key=lambda x: (-x[1], x[0]))[:5]
            ],
        }
        for a, r in runs.items()
    ]
    listed.sort(key=lambda x: (-x["runs"], x["automation_id"]))
    totals = {k: sum(x[k] for x in listed) for k in ("runs", "succeeded", "failed", "skipped", "waiting")}
    return {"automations": listed, "totals": totals}
