"""contacts.export and deals.export: a selection streamed from a cursor into a CSV or XLSX in storage.

Memory does not grow with the rows: CSV is pulled by the upload as it is written; XLSX (a zip) is written
row by row in openpyxl's write-only mode to a temporary file, then uploaded.
"""

from __future__ import annotations

import csv
import io
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS, FIELDS, PIPELINES, STAGES, TAGS
from crm_workers.adapters.read_ahead import batches_ahead
from crm_workers.adapters.storage import IterStream, storage_from_settings
from crm_workers.domain.cells import FORMULA_STARTS, safe_cell
from crm_workers.domain.headers import CONTACT_TARGETS, DEAL_TARGETS
from crm_workers.jobs import Progress, now
from crm_workers.services.selection import job_selection_query
from crm_workers.services.visibility import job_principal, visible

CURSOR_BATCH = 1000
#: A deal's contacts looked at for its `contact_email` (the first the caller can see among them).
CONTACTS_LOOKED_UP = 20
DEAL_COLUMNS = [*DEAL_TARGETS[:5], "base_value", *DEAL_TARGETS[5:]]


def default_columns(db: Database, account_id: ObjectId, entity: str) -> list[str]:
    custom = [f"custom.{f['key']}" for f in db[FIELDS].find({"account_id": account_id, "entity": entity}).sort("key")]
    return [*(CONTACT_TARGETS if entity == "contact" else DEAL_COLUMNS), *custom]


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _out(value):
    """Numbers stay numbers (an XLSX number cell, a plain number in CSV); text is made formula-safe."""
    if value.__class__ is str:  # the common case first, without the general path
        return safe_cell(value) if value[:1] in FORMULA_FIRST else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if isinstance(value, float) and value.is_integer() else value
    return safe_cell(_text(value))


FORMULA_FIRST = frozenset(FORMULA_STARTS)


def _path_getter(path: str):
    parts = path.split(".")
    if len(parts) == 1:
        return lambda doc: doc.get(path)

    def get(doc):
        for part in parts:
            if not isinstance(doc, dict):
                return None
            doc = doc.get(part)
        return doc

    return get


class Names:
    """Ids shown as names: tags, businesses, pipelines, stages, contact emails (looked up per batch). A linked
    contact or business is looked up under the caller's visibility (`visible`): one they cannot see shows as no
    link, never its name or email."""

    def __init__(self, db: Database, account_id: ObjectId, visible: dict | None = None):
        self.db, self.account_id, self.visible = db, account_id, visible or {}
        q = {"account_id": account_id}
        self.tags = {t["_id"]: t["name"] for t in db[TAGS].find(q, {"name": 1})}
        self.pipelines = {p["_id"]: p["name"] for p in db[PIPELINES].find(q, {"name": 1})}
        self.stages = {s["_id"]: s["name"] for s in db[STAGES].find(q, {"name": 1})}
        self.contacts: dict[ObjectId, dict] = {}

    def load_contacts(self, ids: set) -> None:
        missing = [i for i in ids if i not in self.contacts]
        if missing:
            for c in self.db[CONTACTS].find(
                {"_id": {"$in": missing}, "account_id": self.account_id, **self.visible}, {"name": 1, "email": 1}
            ):
                self.contacts[c["_id"]] = c
        if len(self.contacts) > 50_000:  # keep memory flat on huge exports
            self.contacts = {i: self.contacts[i] for i in ids if i in self.contacts}


def _getter(column: str, names: Names, entity: str):
    """A function doc -> cell for one column, decided once per export, not per cell."""
    if column == "tags":
        return lambda d: [names.tags[t] for t in d.get("tags") or () if t in names.tags]
    if column == "owner":
        return lambda d: d.get("owner")
    if column == "business":
        if entity == "contact":
            return lambda d: [names.contacts[i].get("name") for i in d.get("businesses") or () if i in names.contacts]
        return lambda d: [names.contacts[i].get("name") for i in (d.get("business_id"),) if i in names.contacts]
    if entity == "deal":
        special = {
            "pipeline": lambda d: names.pipelines.get(d.get("pipeline_id")),
            "stage": lambda d: names.stages.get(d.get("stage_id")),
            "value": _path_getter("value.amount"),
            "currency": _path_getter("value.currency"),
            # The deal's first contact the caller can see (an invisible one is as absent as none).
            "contact_email": lambda d: next(
                (names.contacts[i].get("email") for i in d.get("contacts") or () if i in names.contacts), None
            ),
            # Deals are matched by their id in the system they came from: a deal made here has ours, so that
            # the export imports back onto the same deals (an import matches it: services/imports/matching.py).
            "external_id": lambda d: d.get("external_id") or d.get("_id"),
        }
        if column in special:
            return special[column]
    if column.startswith("custom."):
        return _path_getter(f"custom_fields.{column[7:]}")
    return _path_getter(column)


#: Columns that read other fields of the document than their own path.
_COLUMN_FIELDS = {
    "business": ["businesses", "business_id"],
    "pipeline": ["pipeline_id"],
    "stage": ["stage_id"],
    "value": ["value"],
    "currency": ["value"],
    "contact_email": ["contacts"],
}


def _projection(columns: list[str], chosen: bool) -> dict | None:
    """When the user chose the columns, only the top-level fields they need are read from the database.
    (All columns read nearly every field: then a projection saves nothing, and costs the server time.)"""
    if not chosen:
        return None
    fields = set()
    for column in columns:
        top = column.split(".", 1)[0]
        fields.update(_COLUMN_FIELDS.get(column, ["custom_fields" if top == "custom" else top]))
    return dict.fromkeys(sorted(fields), 1)


def _rows(
    db: Database,
    collection: str,
    query: dict,
    columns: list[str],
    names: Names,
    entity: str,
    progress: Progress,
    *,
    projection: dict | None,
) -> Iterator[list[list]]:
    """The rows, a chunk (list of rows) at a time; names of the chunk's linked records looked up together."""
    getters = [_getter(c, names, entity) for c in columns]
    needs_contacts = bool({"business", "contact_email"} & set(columns))
    counted: list[int] = []
    # The total, counted beside the read (a count costs the server a pass of its own): known from the chunk
    # after it arrives.
    threading.Thread(
        target=lambda: counted.append(db[collection].count_documents(query)), name="export-count", daemon=True
    ).start()

    def flush(batch: list[dict]) -> list[list]:
        if needs_contacts:
            refs: set = set()
            for d in batch:
                refs.update(d.get("businesses") or ())
                refs.update(filter(None, [d.get("business_id"), *(d.get("contacts") or [])[:CONTACTS_LOOKED_UP]]))
            names.load_contacts(refs)
        rows = [[_out(get(d)) for get in getters] for d in batch]
        progress.add(succeeded=len(batch))
        progress.checkpoint()
        return rows

    # No sort: the index order is stable enough for a file, and a sort would be done in the server's memory.
    # The next batch is read while this one is written.
    for batch in batches_ahead(lambda: db[collection].find(query, projection).batch_size(CURSOR_BATCH), CURSOR_BATCH):
        if progress.total is None and counted:
            progress.total = counted[0]
        yield flush(batch)
    progress.total = progress.processed  # what was exported, whatever changed since the count


def _csv_bytes(columns: list[str], chunks: Iterator[list[list]], counter: list[int]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield "\ufeff".encode() + buffer.getvalue().encode()  # the BOM lets spreadsheets read accents
    for rows in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        counter[0] += len(rows)
        yield buffer.getvalue().encode()


def run_export(db: Database, settings, job: dict, progress: Progress, *, entity: str) -> dict:
    params, account_id = job["params"], job["account_id"]
    query = job_selection_query(db, job, entity, key="filter")
    collection = CONTACTS if entity == "contact" else DEALS
    columns = params.get("columns") or default_columns(db, account_id, entity)
    progress.set(processed=0, succeeded=0)
    fmt = params.get("format", "csv")
    file_name = f"{entity}s-{now():%Y%m%d-%H%M%S}.{fmt}"
    key = f"accounts/{account_id}/exports/{job['_id']}/{file_name}"
    storage = storage_from_settings(settings)
    names = Names(db, account_id, visible(db, job_principal(db, job)))
    rows = _rows(
        db,
        collection,
        query,
        columns,
        names,
        entity,
        progress,
        projection=_projection(columns, chosen=bool(params.get("columns"))),
    )
    counter = [0]
    if fmt == "xlsx":
        size = _upload_xlsx(storage, key, columns, rows, counter)
    else:
        size = storage.put_stream(key, IterStream(_csv_bytes(columns, rows, counter)), content_type="text/csv")
    url, expires = storage.download_url(key, expires_in=settings.export_link_seconds, file_name=file_name)
    return {
        "download_url": url,
        "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
        "rows": counter[0],
        "bytes": size,
        "format": fmt,
        "columns": columns,
        "file_key": key,
        "delete_after": (now() + timedelta(days=settings.export_retention_days)).isoformat(),
    }


def _upload_xlsx(storage, key: str, columns: list[str], rows, counter: list[int]) -> int:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("export")
    sheet.append(columns)
    for chunk in rows:
        for row in chunk:
            sheet.append(row)  # text was neutralised: no string starts like a formula
        counter[0] += len(chunk)
    with tempfile.TemporaryFile() as tmp:
        book.save(tmp)
        tmp.seek(0)
        return storage.put_stream(
            key, tmp, content_type=("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        )
