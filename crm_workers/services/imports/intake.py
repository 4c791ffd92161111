"""Accepting an import: the file (upload, connector records or a stored key) checked and stored; no parsing."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from typing import IO

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.limits import MAX_COLUMNS
from crm_workers.adapters.mongo import CASE_INSENSITIVE, FIELDS, PIPELINES, oid
from crm_workers.adapters.storage import safe_name
from crm_workers.domain.headers import targets_for
from crm_workers.domain.principal import Principal
from crm_workers.errors import BadRequest, Forbidden, NotFound, TooLarge, UnsupportedType
from crm_workers.jobs import JobRecord
from crm_workers.services import stored_files
from crm_workers.services.job_submission import submit_job
from crm_workers.services.visibility import restricted_to

UPLOAD_TYPES = {".csv", ".tsv", ".txt", ".xlsx"}
ENTITY_JOB = {"contact": "contacts.import", "deal": "deals.import"}


def _key(account_id: ObjectId, file_name: str) -> str:
    return f"accounts/{account_id}/imports/{uuid.uuid4().hex}/{safe_name(file_name, 'upload.csv')}"


def check_mapping(db: Database, account_id: ObjectId, entity: str, options: dict) -> None:
    """Every mapping target must be a target of this entity; `custom.<key>` must be a field of the account."""
    mapping = options.get("mapping") or {}
    if not mapping:
        return
    keys = [f["key"] for f in db[FIELDS].find({"account_id": account_id, "entity": entity}, {"key": 1})]
    valid = targets_for(entity, keys)
    for header, target in mapping.items():
        if target is not None and target not in valid:  # None ignores the header
            raise BadRequest(
                f"unknown import target {target!r} for column {header!r}",
                details={"field": f"options.mapping.{header}", "targets": sorted(valid)},
            )


def check_rights_and_pipeline(db: Database, principal: Principal, entity: str, options: dict) -> None:
    """A user limited to their own records imports for themselves only (403); a deals import's pipeline
    exists, or is a name to create (400 naming the field)."""
    uid = restricted_to(db, principal)
    if uid is not None and options.get("owner") not in (None, str(uid)):
        raise Forbidden(
            "under owner-only visibility you can only import records you own", details={"field": "options.owner"}
        )
    if entity != "deal":
        for key in ("pipeline", "create_missing"):
            if options.get(key):
                raise BadRequest(f"options.{key} is for deals imports", details={"field": f"options.{key}"})
        return
    ref = (options.get("pipeline") or "").strip()
    if not ref:
        return
    account_id = principal.account_id
    found = (oid(ref) and db[PIPELINES].find_one({"_id": oid(ref), "account_id": account_id}, {"_id": 1})) or db[
        PIPELINES
    ].find_one({"account_id": account_id, "name": ref}, {"_id": 1}, collation=CASE_INSENSITIVE)
    if not found and (oid(ref) or not options.get("create_missing")):
        hint = "" if oid(ref) else " (set create_missing to create it)"
        raise BadRequest(f"no pipeline {ref!r}{hint}", details={"field": "options.pipeline"})


def _submit(db, broker, principal, entity, source: dict, options: dict, idempotency_key) -> JobRecord:
    check_rights_and_pipeline(db, principal, entity, options)
    job = submit_job(
        db,
        broker,
        principal,
        ENTITY_JOB[entity],
        {"entity": entity, "source": source, "options": options},
        idempotency_key=idempotency_key,
    )
    if ((job.get("params") or {}).get("source") or {}).get("key") == source["key"]:  # not a replay's first job
        stored_files.mark_used(db, principal.account_id, source["key"], job["_id"])
    return job


def check_upload_type(file_name: str) -> None:
    ext = os.path.splitext(file_name or "")[1].lower()
    if ext not in UPLOAD_TYPES:
        raise UnsupportedType(
            f"files of type {ext or '(none)'!r} cannot be imported; use CSV, TSV or XLSX", details={"field": "file"}
        )


def store_upload(
    db, storage, settings, principal: Principal, *, stream: IO[bytes], file_name: str, kind: str = "upload"
) -> dict:
    """The uploaded file stored under the account and recorded as the caller's; returns the import's `source`."""
    stored_files.check_room(db, principal)
    key = _key(principal.account_id, file_name)
    stored_files.record(db, principal, key, kind=kind)
    size = storage.put_stream(key, stream)
    if size == 0:
        storage.delete(key)
        stored_files.forget(db, principal.account_id, key)
        raise BadRequest("the file is empty", details={"field": "file"})
    if size > settings.import_max_bytes:
        storage.delete(key)
        stored_files.forget(db, principal.account_id, key)
        raise TooLarge(f"the file is {size} bytes; the limit is {settings.import_max_bytes}", details={"field": "file"})
    return {"type": "upload", "key": key, "file_name": file_name, "bytes": size}


def import_upload(
    db,
    broker,
    storage,
    settings,
    principal: Principal,
    entity: str,
    *,
    stream: IO[bytes],
    file_name: str,
    options: dict,
    idempotency_key=None,
) -> JobRecord:
    check_upload_type(file_name)
    check_mapping(db, principal.account_id, entity, options)
    source = store_upload(db, storage, settings, principal, stream=stream, file_name=file_name)
    return _submit(db, broker, principal, entity, source, options, idempotency_key)


#: How deep connector records may nest (`a.b.c…`): deeper is no CRM record, and recursion has a bound.
MAX_RECORD_DEPTH = 16
#: Rows x columns the CSV of connector records may have: checked before one line is written, since records with
#: distinct keys make a table of every record by every key (6,000 records of 95 KB took 3.5 s and +72 MB).
MAX_RECORD_CELLS = 10_000_000


def _flat(record: dict, prefix: str = "", depth: int = 0) -> dict:
    if depth > MAX_RECORD_DEPTH:
        raise BadRequest(
            f"connector records nest deeper than {MAX_RECORD_DEPTH} levels", details={"field": "source.records"}
        )
    out = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}.", depth + 1))
        elif isinstance(v, list):
            out[f"{prefix}{k}"] = ", ".join(str(x) for x in v)
        else:
            out[f"{prefix}{k}"] = "" if v is None else v
    return out


def records_csv(records: list[dict]) -> bytes:
    """Connector records as a CSV, so that they import exactly like a file (nested keys become `a.b`).

    The columns are counted as the records are flattened and the table's size is known before it is written:
    too many columns (MAX_COLUMNS, as for a file) or cells is refused (413) before the work, not after it."""
    flat: list[dict] = []
    headers: dict[str, None] = {}
    for record in records:
        row = _flat(record)
        for key in row:
            if key not in headers:
                headers[key] = None
                if len(headers) > MAX_COLUMNS:
                    raise TooLarge(
                        f"the records have more than {MAX_COLUMNS} distinct keys; at most {MAX_COLUMNS} "
                        "columns can be imported",
                        code="too_many_columns",
                        details={"field": "source.records", "limit": MAX_COLUMNS},
                    )
        flat.append(row)
    if len(flat) * len(headers) > MAX_RECORD_CELLS:
        raise TooLarge(
            f"{len(flat)} records by {len(headers)} keys is over {MAX_RECORD_CELLS} cells",
            details={"field": "source.records", "limit": MAX_RECORD_CELLS},
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(headers))
    names = list(headers)
    writer.writerows([row.get(h, "") for h in names] for row in flat)
    return out.getvalue().encode("utf-8")


def store_records(db, storage, settings, principal: Principal, *, records: list[dict], file_name: str | None) -> dict:
    """Connector records stored as a CSV under the account, recorded as the caller's; returns the `source`."""
    if len(records) > settings.import_max_rows:
        raise TooLarge(
            f"{len(records)} records; the limit is {settings.import_max_rows}", details={"field": "source.records"}
        )
    body = records_csv(records)
    if len(body) > settings.import_max_bytes:
        raise TooLarge("the records are over the size limit", details={"field": "source.records"})
    name = file_name or "records.csv"
    stored_files.check_room(db, principal)
    key = _key(principal.account_id, name if name.endswith(".csv") else name + ".csv")
    stored_files.record(db, principal, key, kind="records")
    storage.put_stream(key, io.BytesIO(body))
    return {"type": "records", "key": key, "file_name": name, "bytes": len(body), "records": len(records)}


def import_records(
    db,
    broker,
    storage,
    settings,
    principal: Principal,
    entity: str,
    *,
    records: list[dict],
    file_name: str | None,
    options: dict,
    idempotency_key=None,
) -> JobRecord:
    if len(records) > settings.import_max_rows:
        raise TooLarge(
            f"{len(records)} records; the limit is {settings.import_max_rows}", details={"field": "source.records"}
        )
    check_mapping(db, principal.account_id, entity, options)
    source = store_records(db, storage, settings, principal, records=records, file_name=file_name)
    return _submit(db, broker, principal, entity, source, options, idempotency_key)


def stored_source(db, storage, settings, principal: Principal, *, key: str, file_name: str | None) -> dict:
    """A file the caller's own upload, preview or records stored (stored_files decides), as the import's
    `source`; any other key is 404, whatever is or is not stored under it."""
    stored_files.readable(db, principal, key)
    try:
        size = storage.size(key)
    except Exception:  # gone from storage meanwhile: as missing as a key never written
        raise NotFound("no such file", details={"field": "source.key"}) from None
    if size > settings.import_max_bytes:
        raise TooLarge(
            f"the file is {size} bytes; the limit is {settings.import_max_bytes}", details={"field": "source.key"}
        )
    return {"type": "storage", "key": key, "file_name": file_name or key.rsplit("/", 1)[-1], "bytes": size}


def import_stored(
    db,
    broker,
    storage,
    settings,
    principal: Principal,
    entity: str,
    *,
    key: str,
    file_name: str | None,
    options: dict,
    idempotency_key=None,
) -> JobRecord:
    source = stored_source(db, storage, settings, principal, key=key, file_name=file_name)
    check_mapping(db, principal.account_id, entity, options)
    return _submit(db, broker, principal, entity, source, options, idempotency_key)


def parse_options_field(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"options is not valid JSON ({exc.msg})", details={"field": "options"}) from None
    except RecursionError:
        raise BadRequest("options nests too deeply", details={"field": "options"}) from None
    if not isinstance(value, dict):
        raise BadRequest("options must be a JSON object", details={"field": "options"})
    return value
