"""reports.automations: runs of `automation.logs` started in the period, by automation, status and action.

Actions are counted from each run's `outcome` (services/automations/outcome.py), kept at every write of a run.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from pymongo.database import Database

from crm_workers.adapters.mongo import AUTOMATION_LOGS, AUTOMATIONS, oid
from crm_workers.services.automations.outcome import parse
from crm_workers.services.reports.periods import start_of

STATUSES = ("succeeded", "failed", "skipped", "waiting")
TOP_ERRORS = 5


def automations_report(db: Database, account_id, visible: dict, params: dict, zone) -> dict:
    """`visible`: the condition on logs for a restricted caller (runs on deals they own), else {}."""
    first, last = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
    match = {"account_id": account_id}
    if params.get("automation_id"):
        match["automation_id"] = oid(params["automation_id"])
    match["started_at"] = {"$gte": start_of(first, zone), "$lt": start_of(last + timedelta(days=1), zone)}
    match.update(visible)
    runs: dict = defaultdict(lambda: dict.fromkeys(("runs", *STATUSES), 0))
    actions: dict = defaultdict(lambda: defaultdict(lambda: {"succeeded": 0, "failed": 0}))
    errors: dict = defaultdict(lambda: defaultdict(int))
    # One pass, no $unwind: runs with the same automation, status and outcome (their actions' results) are one row.
    for row in db[AUTOMATION_LOGS].aggregate(
        [
            {"$match": match},
            {"$group": {"_id": {"a": "$automation_id", "s": "$status", "o": "$outcome"}, "n": {"$sum": 1}}},
        ]
    ):
        key, n = row["_id"], row["n"]
        counts = runs[key["a"]]
        counts["runs"] += n
        if key.get("s") in STATUSES:
            counts[key["s"]] += n
        for kind, status, error in parse(key.get("o")):
            actions[key["a"]][kind][status] += n
            if status == "failed":
                errors[key["a"]][error] += n
    known = {
        a["_id"]: a
        for a in db[AUTOMATIONS].find(
            {"account_id": account_id, "_id": {"$in": list(runs)}}, {"pipeline_id": 1, "stage_id": 1}
        )
    }
    listed = []
    for automation_id, counts in runs.items():
        automation = known.get(automation_id, {})
        top = sorted(errors[automation_id].items(), key=lambda e: (-e[1], e[0]))[:TOP_ERRORS]
        listed.append(
            {
                "automation_id": str(automation_id),
                "pipeline_id": _str(automation.get("pipeline_id")),
                "stage_id": _str(automation.get("stage_id")),
                **counts,
                "actions": {t: dict(v) for t, v in sorted(actions[automation_id].items())},
                "top_errors": [{"error": e, "count": n} for e, n in top],
            }
        )
    listed.sort(key=lambda a: (-a["runs"], a["automation_id"]))
    totals = {key: sum(a[key] for a in listed) for key in ("runs", *STATUSES)}
    return {"automations": listed, "totals": totals}


def _str(value):
    return str(value) if value is not None else None
