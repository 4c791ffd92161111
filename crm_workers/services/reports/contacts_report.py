"""reports.new_contacts: contacts by `created_at` per period, by source and by owner."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS
from crm_workers.services.reports.periods import period_label, period_starts, start_of

#: Contacts in the range (estimated from its middle period) from which the report reads period by period
#: (bench/report_bench.py).
PER_PERIOD_FROM = 10_000


def new_contacts(db: Database, account_id, owner, params: dict, zone_name: str, zone) -> dict:
    """`owner`: the uid a restricted caller sees (None: the whole account)."""
    first, last, interval = date.fromisoformat(params["from"]), date.fromisoformat(params["to"]), params["interval"]
    starts = period_starts(first, last, interval)
    bounds = [start_of(d, zone) for d in starts] + [start_of(last + timedelta(days=1), zone)]
    base = {"account_id": account_id, **({"owner": owner} if owner is not None else {})}
    match = {**base, "created_at": {"$gte": bounds[0], "$lt": bounds[-1]}}
    labels = [period_label(d, interval) for d in starts]
    rows = {label: {"period": label, "persons": 0, "businesses": 0, "total": 0} for label in labels}
    sources: dict = defaultdict(int)
    owners: dict = defaultdict(int)

    def add(label, kind, source, who, n):
        if label not in rows:
            return  # outside the range (cannot happen: the $match is on its boundaries)
        kind = {"person": "persons", "business": "businesses"}.get(kind)
        if kind:
            rows[label][kind] += n
        rows[label]["total"] += n
        sources[source if source is not None else "unknown"] += n
        owners[who] += n

    # How big the range is, from its middle period alone (the last is often today, under way): a count of the
    # whole range, even with a limit, is a pass over every contact on a server that fetches before it counts.
    middle = len(labels) // 2
    sample = db[CONTACTS].count_documents({**base, "created_at": {"$gte": bounds[middle], "$lt": bounds[middle + 1]}})
    if max(sample, 1) * len(labels) < PER_PERIOD_FROM:
        # A small range: one pass, each contact's local day the server's $dateToString in the zone (checked
        # against zoneinfo by the tests across DST), grouped with its type, source and owner.
        day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at", "timezone": zone_name}}
        for row in db[CONTACTS].aggregate(
            [
                {"$match": match},
                {"$group": {"_id": {"d": day, "t": "$type", "s": "$source", "o": "$owner"}, "n": {"$sum": 1}}},
            ]
        ):
            key = row["_id"]
            add(
                period_label(date.fromisoformat(key["d"]), interval), key.get("t"), key.get("s"), key.get("o"), row["n"]
            )
    else:
        # A big one: a pass per period over its own range of the (account, created_at) index, the boundaries
        # Python's. A day expression per document costs the server more than the pass itself (bench/README.md).
        for label, begin, end in zip(labels, bounds, bounds[1:], strict=False):
            for row in db[CONTACTS].aggregate(
                [
                    {"$match": {**base, "created_at": {"$gte": begin, "$lt": end}}},
                    {"$group": {"_id": {"t": "$type", "s": "$source", "o": "$owner"}, "n": {"$sum": 1}}},
                ]
            ):
                key = row["_id"]
                add(label, key.get("t"), key.get("s"), key.get("o"), row["n"])
    series = list(rows.values())
    by_owner = sorted(
        ({"owner": str(who) if who is not None else None, "count": n} for who, n in owners.items()),
        key=lambda o: (-o["count"], o["owner"] or ""),
    )
    return {
        "interval": interval,
        "timezone": zone_name,
        "series": series,
        "by_source": {str(k): n for k, n in sorted(sources.items(), key=lambda kv: str(kv[0]))},
        "by_owner": by_owner,
        "total": sum(p["total"] for p in series),
    }
