"""reports.new_contacts: contacts by `created_at` per period, by source and by owner, in one aggregation."""

from __future__ import annotations

from datetime import date, timedelta

from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS
from crm_workers.services.reports.periods import period_label, period_starts, start_of


def _is(field: str, value: str) -> dict:
    return {"$sum": {"$cond": [{"$eq": [field, value]}, 1, 0]}}


def new_contacts(db: Database, account_id, owner, params: dict, zone_name: str, zone) -> dict:
    """`owner`: the uid a restricted caller sees (None: the whole account)."""
    first, last, interval = date.fromisoformat(params["from"]), date.fromisoformat(params["to"]), params["interval"]
    starts = period_starts(first, last, interval)
    bounds = [start_of(d, zone) for d in starts] + [start_of(last + timedelta(days=1), zone)]
    match = {"account_id": account_id, **({"owner": owner} if owner is not None else {}),
             "created_at": {"$gte": bounds[0], "$lt": bounds[-1]}}
    # One pass: the periods ($bucket on the UTC boundaries of local days), sources and owners side by side.
    facets = next(db[CONTACTS].aggregate([
        {"$match": match},
        {"$facet": {
            "series": [{"$bucket": {"groupBy": "$created_at", "boundaries": bounds, "default": "outside",
                                    "output": {"persons": _is("$type", "person"),
                                               "businesses": _is("$type", "business"), "total": {"$sum": 1}}}}],
            "sources": [{"$group": {"_id": {"$ifNull": ["$source", "unknown"]}, "n": {"$sum": 1}}}],
            "owners": [{"$group": {"_id": {"$ifNull": ["$owner", None]}, "n": {"$sum": 1}}}],
        }},
    ]), {"series": [], "sources": [], "owners": []})
    found = {row["_id"]: row for row in facets["series"] if row["_id"] != "outside"}
    series = []
    for day, bound in zip(starts, bounds, strict=False):
        row = found.get(bound, {})
        series.append({"period": period_label(day, interval), "persons": row.get("persons", 0),
                       "businesses": row.get("businesses", 0), "total": row.get("total", 0)})
    by_owner = sorted(({"owner": str(r["_id"]) if r["_id"] is not None else None, "count": r["n"]}
                       for r in facets["owners"]), key=lambda o: (-o["count"], o["owner"] or ""))
    return {"interval": interval, "timezone": zone_name, "series": series,
            "by_source": {str(r["_id"]): r["n"] for r in sorted(facets["sources"], key=lambda r: str(r["_id"]))},
            "by_owner": by_owner, "total": sum(p["total"] for p in series)}
