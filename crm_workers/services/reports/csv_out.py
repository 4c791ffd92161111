"""A report's answer as CSV (the download of the dashboard's Reports page and of the CLI): one table per kind,
every text cell formula-safe."""

from __future__ import annotations

import csv
import io

from crm_workers.domain.cells import safe_cell


def _cell(value):
    if value is None:
        return ""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else safe_cell(str(value))


def _rows(kind: str, data: dict):
    if kind == "new_contacts":
        yield ["period", "persons", "businesses", "total"]
        for p in data["series"]:
            yield [p["period"], p["persons"], p["businesses"], p["total"]]
    elif kind == "pipeline":
        yield [
            "pipeline",
            "stage",
            "position",
            "open_count",
            "open_value",
            "won_count",
            "won_value",
            "lost_count",
            "win_rate",
            "base_currency",
        ]
        for p in data["pipelines"]:
            for s in p["stages"]:
                yield [
                    p["name"],
                    s["name"],
                    s["position"],
                    s["open_count"],
                    s["open_value"],
                    "",
                    "",
                    "",
                    "",
                    data["base_currency"],
                ]
            yield [
                p["name"],
                "(all)",
                "",
                p["open_count"],
                p["open_value"],
                p["won_count"],
                p["won_value"],
                p["lost_count"],
                p["win_rate"],
                data["base_currency"],
            ]
    else:
        yield [
            "automation_id",
            "pipeline_id",
            "stage_id",
            "runs",
            "succeeded",
            "failed",
            "skipped",
            "waiting",
            "top_error",
        ]
        for a in data["automations"]:
            yield [
                a["automation_id"],
                a["pipeline_id"],
                a["stage_id"],
                a["runs"],
                a["succeeded"],
                a["failed"],
                a["skipped"],
                a["waiting"],
                a["top_errors"][0]["error"] if a["top_errors"] else "",
            ]


def report_csv(answer: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in _rows(answer["kind"], answer["data"]):
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()
