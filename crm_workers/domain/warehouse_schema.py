"""The warehouse feed's tables: one declared schema per CRM collection (docs/warehouse.md), and how a batch of
MongoDB documents becomes one Arrow record batch of that schema.

Types: ObjectIds as strings, datetimes as UTC timestamps (ms), nested objects one level flat (`address.city`),
arrays of ids as lists of strings, `custom_fields` (and other free-form objects) as JSON text. A value that
does not fit its column (a string where a date belongs) is never lost and never fails the run: its column is
null in that row and the value, as text, goes to the row's `_unexpected` (a JSON object column -> text); the
run counts such values per column.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import pyarrow as pa
from bson import ObjectId

TS = pa.timestamp("ms", tz="UTC")
_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "ids": pa.list_(pa.string()),
    "ts": TS,
    "str": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "json": pa.string(),
}

#: Every table starts with these: what happened (`upsert`|`delete`), in which run, to which record.
META_COLUMNS = [("_op", "str"), ("_run", "str"), ("_id", "id"), ("account_id", "id"), ("_deleted_at", "ts")]
_BASE = [("created_at", "ts"), ("updated_at", "ts")]
_ADDRESS = [(f"address.{p}", "str") for p in ("street", "city", "state_province", "postal_code", "country")]

#: collection -> its columns after META_COLUMNS, as (column, type). The one place the feed's shape is declared.
TABLES: dict[str, list[tuple[str, str]]] = {
    "crm.contacts": [
        ("type", "str"),
        ("first_name", "str"),
        ("last_name", "str"),
        ("name", "str"),
        ("email", "str"),
        ("phone", "str"),
        ("website", "str"),
        *_ADDRESS,
        ("owner", "id"),
        ("tags", "ids"),
        ("businesses", "ids"),
        ("custom_fields", "json"),
        ("source", "str"),
        ("import_id", "id"),
        *_BASE,
    ],
    "crm.deals": [
        ("name", "str"),
        ("pipeline_id", "id"),
        ("stage_id", "id"),
        ("owner", "id"),
        ("value.amount", "float"),
        ("value.currency", "str"),
        ("base_value", "float"),
        ("status", "str"),
        ("closed_at", "ts"),
        ("contacts", "ids"),
        ("business_id", "id"),
        ("tags", "ids"),
        ("custom_fields", "json"),
        ("expected_close_date", "ts"),
        ("stage_entered_at", "ts"),
        ("import_id", "id"),
        *_BASE,
    ],
    "crm.pipelines": [("name", "str"), ("currency", "str"), *_BASE],
    "crm.pipeline.stages": [("pipeline_id", "id"), ("name", "str"), ("position", "int"), *_BASE],
    "crm.notes": [("contact_id", "id"), ("deal_id", "id"), ("content", "str"), ("comments", "json"), *_BASE],
    "crm.reminders": [
        ("title", "str"),
        ("due_at", "ts"),
        ("assigned_to", "ids"),
        ("contact_id", "id"),
        ("deal_id", "id"),
        ("category", "str"),
        ("status", "str"),
        ("notified_at", "ts"),
        ("recurrence.every", "int"),
        ("recurrence.unit", "str"),
        *_BASE,
    ],
    "crm.tags": [("name", "str"), ("locked", "bool"), *_BASE],
    "crm.fields": [
        ("entity", "str"),
        ("key", "str"),
        ("label", "str"),
        ("field_type", "str"),
        ("options", "json"),
        *_BASE,
    ],
    "crm.activity": [
        ("entity_type", "str"),
        ("entity_id", "id"),
        ("type", "str"),
        ("data", "json"),
        ("uid", "id"),
        *_BASE,
    ],
    "automation.logs": [
        ("automation_id", "id"),
        ("deal_id", "id"),
        ("event_id", "str"),
        ("status", "str"),
        ("actions", "json"),
        ("attempt", "int"),
        ("started_at", "ts"),
        ("finished_at", "ts"),
        *_BASE,
    ],
    # Job records without `params` and `result`: those may carry rows of data and download links.
    "queues": [
        ("type", "str"),
        ("queue", "str"),
        ("status", "str"),
        ("attempts", "int"),
        ("created_by", "id"),
        ("progress.total", "int"),
        ("progress.processed", "int"),
        ("progress.succeeded", "int"),
        ("progress.failed", "int"),
        ("progress.percent", "float"),
        ("error.code", "str"),
        ("error.message", "str"),
        ("cancel_requested", "bool"),
        ("enqueued_at", "ts"),
        ("started_at", "ts"),
        ("finished_at", "ts"),
        *_BASE,
    ],
}
COLLECTIONS = list(TABLES)
UNEXPECTED = "_unexpected"


def columns(collection: str) -> list[tuple[str, str]]:
    """Every column of the collection's table, in file order: META_COLUMNS, its own, then `_unexpected`."""
    return [*META_COLUMNS, *TABLES[collection], (UNEXPECTED, "json")]


def arrow_schema(collection: str) -> pa.Schema:
    return pa.schema([pa.field(name, _TYPES[kind]) for name, kind in columns(collection)])


def top_fields(collection: str) -> list[str]:
    """The documents' top-level fields the table reads (a projection)."""
    return sorted({name.split(".", 1)[0] for name, _ in TABLES[collection]} | {"_id", "account_id"})


# -- values ---------------------------------------------------------------------------------------------------


class _Unfit:
    """Marks a value that does not fit its column."""


UNFIT = _Unfit()


def _json_default(value: object) -> str:
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def as_json(value: object) -> str | None:
    return None if value is None else json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)


def _as_id(v: object) -> str | _Unfit:
    return str(v) if isinstance(v, ObjectId) else v if isinstance(v, str) else UNFIT


def _as_ids(v: object) -> list[str] | _Unfit:
    if not isinstance(v, list):
        return UNFIT
    out = [_as_id(x) for x in v if x is not None]
    return UNFIT if any(x is UNFIT for x in out) else cast(list[str], out)  # no UNFIT left in it


def _as_ts(v: object) -> datetime | _Unfit:
    return v if isinstance(v, datetime) else UNFIT


def _as_str(v: object) -> str | _Unfit:
    return v if isinstance(v, str) else UNFIT


def _as_float(v: object) -> float | _Unfit:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else UNFIT


def _as_int(v: object) -> int | _Unfit:
    if isinstance(v, bool):
        return UNFIT
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else UNFIT
    return int(v) if isinstance(v, float) and v.is_integer() else UNFIT


def _as_bool(v: object) -> bool | _Unfit:
    return v if isinstance(v, bool) else UNFIT


_CONVERT: dict[str, Callable[[object], object]] = {
    "id": _as_id,
    "ids": _as_ids,
    "ts": _as_ts,
    "str": _as_str,
    "float": _as_float,
    "int": _as_int,
    "bool": _as_bool,
    "json": as_json,
}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else as_json(value)


def _getter(name: str) -> Callable[[dict[str, Any]], object]:
    if "." not in name:
        return lambda d: d.get(name)
    top, sub = name.split(".", 1)

    def get(d: dict[str, Any]) -> object:
        inner = d.get(top)
        return inner.get(sub) if isinstance(inner, dict) else (UNFIT if inner is not None else None)

    return get


@dataclass
class BatchBuilder:
    """Turns documents of one collection into record batches of its schema; counts values that did not fit."""

    collection: str
    run_id: str

    def __post_init__(self) -> None:
        self.schema = arrow_schema(self.collection)
        self.own = TABLES[self.collection]
        self.getters = [_getter(name) for name, _ in self.own]
        self.unexpected: dict[str, int] = {}

    def upserts(self, docs: list[dict[str, Any]]) -> pa.RecordBatch:
        n = len(docs)
        odd: list[dict[str, str | None] | None] = [None] * n
        arrays = [
            pa.array(["upsert"] * n, pa.string()),
            pa.array([self.run_id] * n, pa.string()),
            self._column(docs, "_id", "id", lambda d: d.get("_id"), odd),
            self._column(docs, "account_id", "id", lambda d: d.get("account_id"), odd),
            pa.nulls(n, TS),
        ]
        arrays += [
            self._column(docs, name, kind, get, odd) for (name, kind), get in zip(self.own, self.getters, strict=True)
        ]
        arrays.append(pa.array([None if o is None else as_json(o) for o in odd], pa.string()))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def deletes(self, entries: list[dict[str, Any]]) -> pa.RecordBatch:
        """Rows for records removed by a job: trash entries (`record_id`, `account_id`, `deleted_at`)."""
        n = len(entries)
        values = {
            "_op": ["delete"] * n,
            "_run": [self.run_id] * n,
            "_id": [_id_text(e["record_id"]) for e in entries],
            "account_id": [_id_text(e["account_id"]) for e in entries],
            "_deleted_at": [e.get("deleted_at") for e in entries],
        }
        arrays = [pa.array(values[f.name], f.type) if f.name in values else pa.nulls(n, f.type) for f in self.schema]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _column(
        self,
        docs: list[dict[str, Any]],
        name: str,
        kind: str,
        get: Callable[[dict[str, Any]], object],
        odd: list[dict[str, str | None] | None],
    ) -> pa.Array:
        values = [get(d) for d in docs]
        typ = _TYPES[kind]
        if kind in ("str", "ts"):  # Arrow checks these types itself: the common case stays in C
            try:
                return pa.array(values, typ)
            except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError, ValueError, OverflowError):
                pass
        convert = _CONVERT[kind]
        out: list[object] = []
        for i, v in enumerate(values):
            if v is None:
                out.append(None)
                continue
            c = UNFIT if v is UNFIT else convert(v)
            if c is UNFIT:
                raw = docs[i].get(name.split(".", 1)[0]) if v is UNFIT else v
                row_odd = odd[i]
                if row_odd is None:
                    row_odd = odd[i] = {}
                row_odd[name] = _text(raw)
                self.unexpected[name] = self.unexpected.get(name, 0) + 1
                c = None
            out.append(c)
        return pa.array(out, typ)


def _id_text(value: object) -> str | None:
    return None if value is None else str(value)
