"""reports.new_contacts: contacts by `created_at` per period, by source and by owner, in one aggregation."""

from __future__ import annotations

from datetime import date, timedelta

from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS
from crm_workers.services.reports.periods import period_label, period_starts, start_of


def new_contacts(db: Database, account_id, owner, params: dict, zone_name: str, zone) -> dict:
    """`owner`: the uid a restricted caller sees (None: the whole account)."""
    first, last, interval = date.fromisoformat(params["from"]), date.fromisoformat(params["to"]), params["interval"]
    starts = period_starts(first, last, interval)
    bounds = [start_of(d, zone) for d in starts] + [start_of(last + timedelta(days=1), zone)]
    match = {"account_id": account_id, **({"owner": owner} if owner is not None else {}),
             "created_at": {"$gte": bounds[0], "$lt": bounds[-1]}}
    # One pass: local days (the range's boundaries are Python's; the day of each contact is the server's
    # $dateToString in the zone, checked against zoneinfo by the tests across DST), sources and owners side by side.
    # ($bucket on the boundaries would need no timezone at all, but costs SecantusDB ~5x a plain $group.)
    day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at", "timezone": zone_name}}
    facets = next(db[CONTACTS].aggregate([
        {"$match": match},
        {"$facet": {
            "days": [{"$group": {"_id": {"d": day, "t": "$type"}, "n": {"$sum": 1}}}],
            "sources": [{"$group": {"_id": {"$ifNull": ["$source", "unknown"]}, "n": {"$sum": 1}}}],
            "owners": [{"$group": {"_id": {"$ifNull": ["$owner", None]}, "n": {"$sum": 1}}}],
        }},
    ]), {"days": [], "sources": [], "owners": []})
    labels = [period_label(d, interval) for d in starts]
    rows = {label: {"period": label, "persons": 0, "businesses": 0, "total": 0} for label in labels}
    for row in facets["days"]:
        label = period_label(date.fromisoformat(row["_id"]["d"]), interval)
        if label not in rows:
            continue  # outside the range (cannot happen: the $match is on its boundaries)
        kind = {"person": "persons", "business": "businesses"}.get(row["_id"].get("t"))
        if kind:
            rows[label][kind] += row["n"]
        rows[label]["total"] += row["n"]
    series = list(rows.values())
    by_owner = sorted(({"owner": str(r["_id"]) if r["_id"] is not None else None, "count": r["n"]}
                       for r in facets["owners"]), key=lambda o: (-o["count"], o["owner"] or ""))
    return {"interval": interval, "timezone": zone_name, "series": series,
            "by_source": {str(r["_id"]): r["n"] for r in sorted(facets["sources"], key=lambda r: str(r["_id"]))},
            "by_owner": by_owner, "total": sum(p["total"] for p in series)}
