"""POST /{contacts,deals}/import/preview: the file stored once, its first rows read, matched and parsed as
the import would, and nothing written. The answer's `source` starts the import without a second upload."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import IO

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.limits import UnreadableFile
from crm_workers.adapters.mongo import ACCOUNTS, CONTACTS, DEALS, FIELDS
from crm_workers.adapters.tabular import TableInfo, describe
from crm_workers.domain.corrections import corrector
from crm_workers.domain.headers import targets_for
from crm_workers.domain.import_columns import parse_rows
from crm_workers.domain.import_rows import ParsedRow
from crm_workers.domain.matching import date_warnings, match_columns
from crm_workers.domain.principal import Principal
from crm_workers.errors import TooLarge, UnreadableUpload
from crm_workers.services import stored_files
from crm_workers.services.imports.intake import (
    check_mapping,
    check_upload_type,
    store_records,
    store_upload,
    stored_source,
)
from crm_workers.services.imports.legacy_keys import resolve_legacy_keys
from crm_workers.services.imports.run import date_headers, learn_date_orders, row_context

PREVIEW_ROWS = 20
#: Reading limits a file went over: a 413, like a file over IMPORT_MAX_BYTES.
OVER_LIMIT = {"spreadsheet_too_large", "line_too_long", "cell_too_large", "too_many_columns"}
_CELL_ERROR = re.compile(r"^row \d+, column (?P<column>'[^']*'|\"[^\"]*\"), value ")


def preview_upload(
    db: Database,
    storage,
    settings,
    principal: Principal,
    entity: str,
    *,
    stream: IO[bytes],
    file_name: str,
    options: dict,
) -> dict:
    check_upload_type(file_name)
    check_mapping(db, principal.account_id, entity, options)
    source = store_upload(db, storage, settings, principal, stream=stream, file_name=file_name, kind="preview")
    return _preview(db, storage, principal, entity, source, options, drop_unreadable=True)


def preview_records(
    db: Database,
    storage,
    settings,
    principal: Principal,
    entity: str,
    *,
    records: list[dict],
    file_name: str | None,
    options: dict,
) -> dict:
    check_mapping(db, principal.account_id, entity, options)
    source = store_records(db, storage, settings, principal, records=records, file_name=file_name)
    return _preview(db, storage, principal, entity, source, options, drop_unreadable=True)


def preview_stored(
    db: Database,
    storage,
    settings,
    principal: Principal,
    entity: str,
    *,
    key: str,
    file_name: str | None,
    options: dict,
) -> dict:
    source = stored_source(db, storage, settings, principal, key=key, file_name=file_name)
    check_mapping(db, principal.account_id, entity, options)
    return _preview(db, storage, principal, entity, source, options, drop_unreadable=False)


def _read(db, storage, principal, source: dict, options: dict, *, drop_unreadable: bool) -> TableInfo:
    try:
        return describe(
            lambda: storage.open(source["key"]),
            source.get("file_name") or "upload.csv",
            encoding=options.get("encoding"),
        )
    except UnreadableFile as exc:
        if drop_unreadable:
            storage.delete(source["key"])  # nobody will import it: do not keep it
            stored_files.forget(db, principal.account_id, source["key"])
        error = TooLarge if exc.code in OVER_LIMIT else UnreadableUpload
        raise error(str(exc), code=exc.code, details={"field": "file"}) from None


def _preview(
    db: Database, storage, principal: Principal, entity: str, source: dict, options: dict, *, drop_unreadable: bool
) -> dict:
    info = _read(db, storage, principal, source, options, drop_unreadable=drop_unreadable)
    account_id = principal.account_id
    fields = {f["key"]: f for f in db[FIELDS].find({"account_id": account_id, "entity": entity})}
    prefs = (db[ACCOUNTS].find_one({"_id": account_id}, {"preferences": 1}) or {}).get("preferences") or {}
    country = options.get("country") or prefs.get("default_country")
    fix = corrector(options.get("corrections"), info.headers)
    sample = [(n, fix(n, values)) for n, values in info.sample]
    matching = match_columns(
        info.headers,
        entity,
        fields=fields,
        sample=[v for _, v in sample],
        country=country,
        requested=options.get("mapping"),
    )
    on_row, orders = learn_date_orders(info, date_headers(matching.mapping, fields))
    for _, values in sample:
        on_row(values)
    ctx = row_context(entity, matching.mapping, matching.order, fields, country, options, day_first=orders())
    parsed = parse_rows(
        ctx,
        [(n, values) for n, values in sample[:PREVIEW_ROWS] if any(str(v).strip() for v in values)],
        info.headers,
        default_tags=options.get("tags") or (),
    )
    resolve_legacy_keys(db, account_id, CONTACTS if entity == "contact" else DEALS, parsed, ctx, info.headers)
    rows = [_row_json(p) for p in parsed]
    return {
        "entity": entity,
        "file": {**info.file_json(), "name": source.get("file_name")},
        "headers": info.headers,
        "mapping": matching.mapping,
        "matches": matching.matches,
        "ignored_columns": matching.ignored,
        "targets": sorted(targets_for(entity, list(fields))),
        "rows": rows,
        "warnings": info.warnings() + matching.warnings + date_warnings(ctx.day_first),
        "source": {"type": "storage", "key": source["key"], "file_name": source.get("file_name")},
    }


def _json(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _row_json(parsed: ParsedRow) -> dict:
    """A parsed row as the import would write it: the record, its tags and businesses, a deal's lookups."""
    record = dict(parsed.record)
    if parsed.tags:
        record["tags"] = parsed.tags
    if parsed.businesses:
        record["businesses"] = parsed.businesses
    for key, value in parsed.extra.items():
        record["value" if key == "amount" else key] = value
    return {
        "row": parsed.row,
        "values": _json(list(parsed.values)),
        "record": _json(record),
        "errors": [_error_json(e, "failed") for e in parsed.errors]
        + [_error_json(w, "warning") for w in parsed.warnings],
    }


def _error_json(message: str, problem: str) -> dict:
    """A row's problem: `failed` (the row would not import) or `warning` (imported without that value)."""
    m = _CELL_ERROR.match(message)
    return {"column": m.group("column")[1:-1] if m else None, "problem": problem, "message": message}
