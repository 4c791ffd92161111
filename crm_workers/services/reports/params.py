"""A report's parameters: validated (a 400 names the field), defaults resolved in the account's timezone, and
put in one canonical form, so that the same question always finds the same stored answer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_workers.adapters.mongo import oid
from crm_workers.errors import BadRequest
from crm_workers.services.reports.periods import period_starts

KINDS = ("new_contacts", "pipeline", "automations")
DEFAULT_DAYS = 30
#: The longest range (days) and the most periods a report has: beyond, a 400 rather than a huge answer.
MAX_RANGE_DAYS = 3700
MAX_PERIODS = 1000


class ReportQuery(BaseModel):
    """Every kind's parameters (each kind takes its own: another kind's is a 400)."""

    model_config = ConfigDict(extra="forbid")

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    interval: Literal["day", "week", "month"] | None = None
    pipeline_id: str | None = None
    automation_id: str | None = None
    refresh: Literal["0", "1", "true", "false"] | None = None
    format: Literal["json", "csv"] | None = None  # how GET answers a stored result; not part of the question

    @field_validator("pipeline_id", "automation_id")
    @classmethod
    def _an_id(cls, value):
        if value is not None and oid(value) is None:
            raise ValueError("must be a 24-hex id")
        return value


OWN = {"new_contacts": {"interval"}, "pipeline": {"pipeline_id"}, "automations": {"automation_id"}}


def resolve(kind: str, query: ReportQuery, today: date) -> dict:
    """The parameters as stored and answered: `from`, `to` and the kind's own, with defaults filled in."""
    for name in ("interval", "pipeline_id", "automation_id"):
        if getattr(query, name) is not None and name not in OWN[kind]:
            raise BadRequest(f"{name}: not a parameter of the {kind} report", details={"field": name})
    last = query.to or today
    first = query.from_ or (last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise BadRequest("from: must be on or before to", details={"field": "from"})
    if (last - first).days >= MAX_RANGE_DAYS:
        raise BadRequest(f"from: the range is at most {MAX_RANGE_DAYS} days", details={"field": "from"})
    params: dict[str, Any] = {"from": first.isoformat(), "to": last.isoformat()}
    if kind == "new_contacts":
        params["interval"] = query.interval or "day"
        if len(period_starts(first, last, params["interval"])) > MAX_PERIODS:
            raise BadRequest(
                f"interval: at most {MAX_PERIODS} periods; choose a longer interval or a shorter range",
                details={"field": "interval"},
            )
    elif kind == "pipeline":
        params["pipeline_id"] = query.pipeline_id
    else:
        params["automation_id"] = query.automation_id
    return params
