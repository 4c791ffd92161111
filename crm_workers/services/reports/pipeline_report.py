"""reports.pipeline: open deals by stage now, won and lost deals closed in the period, the owners' leaderboard,
all in BASE_CURRENCY with the rates of the day each deal closed.

Two aggregations on the (account, status, closed_at) index: open deals grouped by pipeline, stage, owner and
currency; closed deals by pipeline, owner, status, currency and local closing day (the day picks the rates; many
deals: a pass per day instead of a day expression per deal).
Only those groups come to Python, where each group's sum is converted (a sum of conversions at one rate is the
conversion of the sum) and the totals rounded to cents at the end.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from pymongo.database import Database

from crm_workers.adapters.mongo import DEALS, PIPELINES, STAGES, oid
from crm_workers.services.rates import RateBook
from crm_workers.services.reports.periods import start_of

DAY_MS = 86_400_000
#: Deals closed in the range (estimated from its middle day) from which the report reads day by day, for ranges of
#: at most PER_DAY_MAX_DAYS days (bench/report_bench.py).
PER_DAY_FROM = 10_000
PER_DAY_MAX_DAYS = 400


def _scope(account_id, owner, pipeline_id) -> dict:
    query = {"account_id": account_id}
    if owner is not None:
        query["owner"] = owner
    if pipeline_id is not None:
        query["pipeline_id"] = pipeline_id
    return query


def _win_rate(won: int, lost: int):
    return round(won / (won + lost), 4) if won + lost else None


class _Tally:
    def __init__(self):
        self.open_count = self.won_count = self.lost_count = 0
        self.open_value = self.won_value = 0.0
        self.days_to_win_ms = 0.0


def pipeline_report(
    db: Database,
    account_id,
    owner,
    params: dict,
    zone_name: str,
    zone,
    *,
    base: str,
    account_currency: str | None,
    book: RateBook,
) -> dict:
    first, last = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
    pipeline_id = params.get("pipeline_id")
    pid = oid(pipeline_id) if pipeline_id else None
    pipelines = list(
        db[PIPELINES]
        .find({"account_id": account_id, **({"_id": pid} if pid else {})}, {"name": 1, "currency": 1})
        .sort([("name", 1), ("_id", 1)])
    )
    currency_of = {p["_id"]: p.get("currency") for p in pipelines}
    stages = defaultdict(list)
    for s in db[STAGES].find(
        {"account_id": account_id, "pipeline_id": {"$in": [p["_id"] for p in pipelines]}},
        {"pipeline_id": 1, "name": 1, "position": 1},
    ):
        stages[s["pipeline_id"]].append(s)
    scope = _scope(account_id, owner, pid)
    amount = {"$sum": "$value.amount"}
    open_rows = db[DEALS].aggregate(
        [
            {"$match": {**scope, "status": "open"}},
            {
                "$group": {
                    "_id": {"p": "$pipeline_id", "s": "$stage_id", "o": "$owner", "c": "$value.currency"},
                    "n": {"$sum": 1},
                    "amount": amount,
                }
            },
        ]
    )
    closed = {**scope, "status": {"$in": ["won", "lost"]}}
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    bounds = [start_of(d, zone) for d in days] + [start_of(last + timedelta(days=1), zone)]
    group = {"p": "$pipeline_id", "o": "$owner", "st": "$status", "c": "$value.currency"}
    tallies = {"n": {"$sum": 1}, "amount": amount, "ms": {"$sum": {"$subtract": ["$closed_at", "$created_at"]}}}
    # How many deals closed in the range, from its middle day alone (the last is often today, under way; a count of
    # the whole range is a pass over every deal on a server that fetches before it counts).
    middle = len(days) // 2
    sample = sum(
        db[DEALS].count_documents(
            {**scope, "status": status, "closed_at": {"$gte": bounds[middle], "$lt": bounds[middle + 1]}}
        )
        for status in ("won", "lost")
    )
    closed_rows: Iterable[dict[str, Any]]
    if max(sample, 1) * len(days) < PER_DAY_FROM or len(days) > PER_DAY_MAX_DAYS:
        # A small range: one pass, each deal's local closing day the server's $dateToString in the zone.
        day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$closed_at", "timezone": zone_name}}
        closed_rows = db[DEALS].aggregate(
            [
                {"$match": {**closed, "closed_at": {"$gte": bounds[0], "$lt": bounds[-1]}}},
                {"$group": {"_id": {**group, "d": day}, **tallies}},
            ]
        )
    else:
        # A big one: a pass per local day over its own range of the (account, status, closed_at) index, the
        # boundaries Python's: a day expression per deal costs the server more than the pass itself.
        # Each status apart: `$in` with a range is a scan of the account's deals on SecantusDB, an equality is not.
        # Only a won deal's value is converted: lost deals are counted in one pass, without their day.
        won_by_day = (
            {**row, "_id": {**row["_id"], "d": d.isoformat()}}
            for d, begin, end in zip(days, bounds, bounds[1:], strict=False)
            for row in db[DEALS].aggregate(
                [
                    {"$match": {**scope, "status": "won", "closed_at": {"$gte": begin, "$lt": end}}},
                    {"$group": {"_id": group, **tallies}},
                ]
            )
        )
        lost = db[DEALS].aggregate(
            [
                {"$match": {**scope, "status": "lost", "closed_at": {"$gte": bounds[0], "$lt": bounds[-1]}}},
                {"$group": {"_id": {"p": "$pipeline_id", "o": "$owner", "st": "$status"}, "n": {"$sum": 1}}},
            ]
        )
        closed_rows = itertools.chain(won_by_day, lost)
    by_pipeline: dict = defaultdict(_Tally)
    by_stage: dict = defaultdict(_Tally)
    by_owner: dict = defaultdict(_Tally)
    unconverted: dict[str, int] = defaultdict(int)

    def value(row, day):
        key = row["_id"]
        currency = key.get("c") or currency_of.get(key.get("p")) or account_currency or base
        if not row.get("amount"):
            return 0.0
        converted = book.convert(row["amount"], str(currency), base, day)
        if converted is None:
            unconverted[str(currency)] += row["n"]
            return 0.0
        return converted

    for row in open_rows:
        k, v = row["_id"], value(row, None)
        for tally in (by_pipeline[k.get("p")], by_stage[(k.get("p"), k.get("s"))], by_owner[k.get("o")]):
            tally.open_count += row["n"]
            tally.open_value += v
    for row in closed_rows:
        k = row["_id"]
        for tally in (by_pipeline[k.get("p")], by_owner[k.get("o")]):
            if k["st"] == "won":
                tally.won_count += row["n"]
                tally.won_value += value(row, k.get("d"))
                tally.days_to_win_ms += row.get("ms") or 0
            else:
                tally.lost_count += row["n"]
    if owner is not None:
        by_owner[owner]  # a restricted caller's leaderboard holds them, even with nothing yet  # noqa: B018
    out_pipelines = []
    for p in pipelines:
        t = by_pipeline.get(p["_id"], _Tally())
        out_pipelines.append(
            {
                "pipeline_id": str(p["_id"]),
                "name": p.get("name"),
                "stages": [
                    {
                        "stage_id": str(s["_id"]),
                        "name": s.get("name"),
                        "position": s.get("position"),
                        "open_count": by_stage.get((p["_id"], s["_id"]), _Tally()).open_count,
                        "open_value": round(by_stage.get((p["_id"], s["_id"]), _Tally()).open_value, 2),
                    }
                    for s in sorted(stages[p["_id"]], key=lambda s: (s.get("position") or 0, str(s["_id"])))
                ],
                "open_count": t.open_count,
                "open_value": round(t.open_value, 2),
                "won_count": t.won_count,
                "won_value": round(t.won_value, 2),
                "lost_count": t.lost_count,
                "win_rate": _win_rate(t.won_count, t.lost_count),
            }
        )
    leaderboard = [
        {
            "owner": str(o) if o is not None else None,
            "won_count": t.won_count,
            "won_value": round(t.won_value, 2),
            "lost_count": t.lost_count,
            "open_count": t.open_count,
            "open_value": round(t.open_value, 2),
            "win_rate": _win_rate(t.won_count, t.lost_count),
            "avg_days_to_win": round(t.days_to_win_ms / t.won_count / DAY_MS, 1) if t.won_count else None,
        }
        for o, t in by_owner.items()
    ]
    leaderboard.sort(key=lambda r: (-r["won_value"], r["owner"] or ""))
    data: dict[str, Any] = {
        "base_currency": base,
        "rates_as_of": book.as_of(),
        "timezone": zone_name,
        "pipelines": out_pipelines,
        "leaderboard": leaderboard,
    }
    if unconverted:
        data["unconverted"] = dict(sorted(unconverted.items()))  # deals counted, their value left out
    return data
