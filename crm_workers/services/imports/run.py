"""contacts.import and deals.import: stream the stored file in chunks, parse, validate, write, report."""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.database import Database

from crm_workers.adapters.limits import UnreadableFile
from crm_workers.adapters.mongo import (
    ACCOUNTS,
    ACTIVITY,
    CONTACTS,
    DEALS,
    FIELDS,
    IMPORT_ERRORS,
    IMPORT_RESULTS,
    oid,
)
from crm_workers.adapters.storage import storage_from_settings
from crm_workers.adapters.tabular import TableInfo, describe, scan
from crm_workers.domain.corrections import corrector
from crm_workers.domain.currency import load_rates
from crm_workers.domain.import_rows import RowContext
from crm_workers.domain.matching import Matching, date_warnings, match_columns
from crm_workers.domain.row_rules import plan
from crm_workers.domain.values import numeric_date_order
from crm_workers.errors import PermanentJobError
from crm_workers.jobs import Progress, now
from crm_workers.services.imports.chunks import parsed_chunks
from crm_workers.services.imports.claims import Claims
from crm_workers.services.imports.deal_writer import write_deals
from crm_workers.services.imports.errors_file import problem
from crm_workers.services.imports.importers import Importers
from crm_workers.services.imports.legacy_keys import resolve_legacy_keys
from crm_workers.services.imports.lookups import Lookups
from crm_workers.services.imports.writer import ImportRun, write_contacts
from crm_workers.services.visibility import job_principal, restricted_to, visible

ERRORS_KEPT_IN_RESULT = 100
DATE_TARGETS = {"expected_close_date"}


def resolve_mapping(
    info: TableInfo, requested: dict | None, entity: str, fields: dict[str, dict], *, country: str | None, fix=None
) -> Matching:
    """The mapping to use: options.mapping for the headers it names (`None` ignores one), the others matched
    by name and by their first values (domain/matching.py), as corrected (`fix`: domain/corrections.py)."""
    return match_columns(
        info.headers,
        entity,
        fields=fields,
        sample=[fix(n, values) if fix else values for n, values in info.sample],
        country=country,
        requested=requested,
    )


def read_file(open_file, source: dict, options: dict) -> TableInfo:
    """The file described (format, encoding, header row, first rows), or the job failed with the reason."""
    try:
        return describe(open_file, source.get("file_name") or "upload.csv", encoding=options.get("encoding"))
    except UnreadableFile as exc:
        raise PermanentJobError(str(exc), code=exc.code) from None


def date_headers(mapping: dict[str, str], fields: dict[str, dict]) -> list[str]:
    return [
        h
        for h, t in mapping.items()
        if t in DATE_TARGETS or (t.startswith("custom.") and fields.get(t[7:], {}).get("field_type") == "date")
    ]


def learn_date_orders(info, date_headers: list[str]):
    """A column is read day-first when one of its values can only be d/m/y (and none only m/d/y)."""
    seen: dict[str, set[str]] = {h: set() for h in date_headers}
    positions = {h: info.headers.index(h) for h in date_headers}

    def on_row(values):
        for header, i in positions.items():
            if i < len(values) and (order := numeric_date_order(str(values[i]))):
                seen[header].add(order)

    return on_row, lambda: {h: orders == {"dmy"} for h, orders in seen.items()}


def row_context(
    entity: str,
    mapping: dict[str, str],
    order: list[str],
    fields: dict,
    country: str | None,
    options: dict,
    *,
    day_first: dict[str, bool],
) -> RowContext:
    """How the rows of this import read: its mapping, its columns read row by row, its key and strictness."""
    alternatives, slots = plan(mapping, order)
    return RowContext(
        entity=entity,
        mapping=mapping,
        fields=fields,
        country=country,
        day_first=day_first,
        contact_type=options.get("type", "person"),
        default_pipeline=options.get("pipeline"),
        dedupe=options.get("dedupe", "email"),
        strict=bool(options.get("strict")),
        alternatives=alternatives,
        slots=slots,
    )


def run_import(db: Database, settings, job: dict, progress: Progress, *, entity: str) -> dict:
    account_id, params = job["account_id"], job["params"]
    options, source = params.get("options") or {}, params["source"]
    storage = storage_from_settings(settings)

    def open_file():
        return storage.open(source["key"])

    info = read_file(open_file, source, options)
    fields = {f["key"]: f for f in db[FIELDS].find({"account_id": account_id, "entity": entity})}
    prefs = (db[ACCOUNTS].find_one({"_id": account_id}, {"preferences": 1}) or {}).get("preferences") or {}
    country = options.get("country") or prefs.get("default_country")
    fix = corrector(options.get("corrections"), info.headers)
    matching = resolve_mapping(info, options.get("mapping"), entity, fields, country=country, fix=fix)
    state = progress.state
    # A resumed run keeps the mapping it started with (as pairs: headers may hold `.` or `$`).
    mapping = dict(state["mapping"]) if state.get("mapping") else matching.mapping
    if not mapping:
        raise PermanentJobError(
            f"no column matches an import target (headers: {', '.join(info.headers)})", code="nothing_to_import"
        )
    if "rows_done" not in state:
        dated = date_headers(mapping, fields)
        on_row, orders = learn_date_orders(info, dated)
        # No date column: the counting pass need not look at the rows.
        rows = scan(open_file, info, on_row if dated else None, limit=settings.import_max_rows)
        if rows > (limit := settings.import_max_rows):  # counting stopped there
            raise PermanentJobError(f"the file has more than {limit} rows; the limit is {limit}", code="too_many_rows")
        progress.total = rows
        progress.save_state(
            rows_done=0,
            day_first=orders(),
            headers=info.headers,
            mapping=[[h, t] for h, t in mapping.items()],
            order=matching.order,
            counts={"created": 0, "updated": 0, "skipped": 0, "failed": 0, "merged": 0},
        )
    warnings = info.warnings() + matching.warnings + date_warnings(state["day_first"])
    ctx = row_context(
        entity, mapping, state.get("order") or list(mapping), fields, country, options, day_first=state["day_first"]
    )
    run = _import_run(db, settings, job, prefs)
    run.importers.join()  # from here on, other imports of the account claim what they write (importers.py)
    try:
        _write_chunks(db, settings, job, open_file, info, ctx, run, progress, fix)
    finally:
        run.importers.leave()
    ignored = [h for h in info.headers if h not in mapping]
    if unlinked := state["counts"].get("unlinked"):
        warnings.append(
            f"{unlinked} rows name a contact_email that no contact you can see has: imported without the link"
        )
    return _finish(
        db,
        job,
        info,
        mapping,
        ignored,
        state["counts"],
        entity,
        rows=progress.total,
        warnings=warnings,
        matches=matching.matches,
        reads=state.get("reads", []),
    )


def _write_chunks(
    db: Database, settings, job: dict, open_file, info, ctx: RowContext, run: ImportRun, progress: Progress, fix=None
) -> None:
    """Each chunk parsed, written and counted; the counts and the data rows reached saved after each one."""
    account_id, options, counts = job["account_id"], job["params"].get("options") or {}, progress.state["counts"]
    write = write_contacts if ctx.entity == "contact" else write_deals
    done = progress.state["rows_done"]
    # What each run read, kept with the counts: a resumed run starts where the last saved chunk ended.
    reads = progress.state.setdefault("reads", [])
    mine = {"attempt": progress.attempt, "from_row": done, "rows": 0}
    for size, parsed in parsed_chunks(
        open_file,
        info,
        ctx,
        chunk_rows=settings.import_chunk_rows,
        start_after=done,
        tags=options.get("tags") or (),
        fix=fix,
    ):
        progress.checkpoint()  # a cancel seen since the last chunk stops the import here, before this one is written
        counts["skipped"] += size - len(parsed)  # rows with nothing in them
        resolve_legacy_keys(db, account_id, CONTACTS if ctx.entity == "contact" else DEALS, parsed, ctx, info.headers)
        outcome = write(run, [p for p in parsed if p.ok])
        failed = [(p, p.error_text()) for p in parsed if not p.ok] + outcome.failed
        lost = {id(p) for p, _ in failed + outcome.skipped}
        warned = [p for p in parsed if p.warnings and id(p) not in lost]
        _record_failures(db, account_id, job["_id"], failed, outcome.skipped, warned)
        counts["warnings"] = counts.get("warnings", 0) + len(warned)
        counts["created"] += outcome.created
        counts["updated"] += outcome.updated
        counts["skipped"] += len(outcome.skipped)
        counts["failed"] += len(failed)
        counts["merged"] += outcome.merged
        counts["unchanged"] = counts.get("unchanged", 0) + outcome.unchanged
        counts["unlinked"] = counts.get("unlinked", 0) + outcome.unlinked
        done += size  # data rows, not row numbers: blank lines and a preamble are numbered, not counted
        if mine["rows"] == 0:
            reads.append(mine)
        mine["rows"] += size
        progress.set(processed=done, succeeded=counts["created"] + counts["updated"], failed=counts["failed"])
        progress.save_state(rows_done=done, counts=counts)  # also the cancellation checkpoint


def _import_run(db: Database, settings, job: dict, prefs: dict) -> ImportRun:
    """The writer's view of the import: for whom (their visibility as when they asked), how, and its claims."""
    account_id, options = job["account_id"], job["params"].get("options") or {}
    principal = job_principal(db, job)
    restricted = restricted_to(db, principal)
    # A user limited to their own records owns what they import (intake refuses another owner).
    owner = restricted or oid(options.get("owner"))
    default_currency = prefs.get("currency") or settings.base_currency
    claims = Claims(db, account_id, job["_id"], now)
    importers = Importers(db, account_id, job["_id"], now)
    lookups = Lookups(
        db,
        account_id,
        job["_id"],
        now,
        claims=claims,
        visible=visible(db, principal),
        restricted_uid=restricted,
        currency=default_currency,
    )
    return ImportRun(
        db=db,
        account_id=account_id,
        job_id=job["_id"],
        principal=principal,
        dedupe=options.get("dedupe", "email"),
        mode=options.get("mode", "upsert"),
        owner=owner,
        base_currency=settings.base_currency,
        default_currency=default_currency,
        lookups=lookups,
        claims=claims,
        importers=importers,
        now=now,
        run_automations=bool(options.get("run_automations")),
        create_missing=bool(options.get("create_missing")),
        default_pipeline=options.get("pipeline"),
        rates=load_rates(settings.rates_file or None),
    )


def _record_failures(db: Database, account_id, job_id, failed, skipped, warned=()) -> None:
    """The rows for the errors file: failed and skipped rows with the reason, imported rows with the values
    left out (`warning`)."""
    rows = (
        [(p, reason, "failed") for p, reason in failed]
        + [(p, reason, "skipped") for p, reason in skipped]
        + [(p, "; ".join(p.warnings), "warning") for p in warned]
    )
    if rows:
        db[IMPORT_ERRORS].bulk_write(
            [
                UpdateOne(
                    {"account_id": account_id, "job_id": job_id, "row": p.row},
                    {
                        "$set": {
                            "values": [v if isinstance(v, str) else str(v) for v in p.values],
                            "error": reason,
                            "kind": kind,
                        }
                    },
                    upsert=True,
                )
                for p, reason, kind in rows
            ],
            ordered=False,
        )


def _finish(
    db: Database, job: dict, info, mapping, ignored, counts, entity, *, rows, warnings=(), matches=None, reads=()
) -> dict:
    account_id, job_id = job["account_id"], job["_id"]
    errors = [
        {"row": e["row"], "problem": problem(e), "error": e["error"]}
        for e in db[IMPORT_ERRORS]
        .find({"account_id": account_id, "job_id": job_id})
        .sort("row", 1)
        .limit(ERRORS_KEPT_IN_RESULT)
    ]
    businesses = (
        db[CONTACTS].count_documents({"account_id": account_id, "created_by_import": job_id, "type": "business"})
        if entity == "contact"
        else 0
    )
    result = {
        "counts": {k: counts[k] for k in ("created", "updated", "skipped", "failed")},
        "rows_with_warnings": counts.get("warnings", 0),
        "merged_duplicates": counts["merged"],
        "unchanged": counts.get("unchanged", 0),
        "businesses_created": businesses,
        "rows": rows,
        "rows_read_per_attempt": [dict(r) for r in reads],  # {attempt, from_row, rows}: sums to `rows` once
        "headers": info.headers,
        "mapping": mapping,
        "ignored_columns": ignored,
        "matches": matches or {},
        "warnings": list(warnings),
        "file": info.file_json(),
        "errors_url": f"/v1/crm/jobs/{job_id}/errors",
    }
    ts = now()
    db[IMPORT_RESULTS].update_one(
        {"account_id": account_id, "job_id": job_id},
        {
            "$set": {
                "entity": entity,
                "file_name": job["params"]["source"].get("file_name"),
                "mapping": mapping,
                "counts": result["counts"],
                "rows_with_warnings": result["rows_with_warnings"],
                "errors": errors,
                "errors_file": result["errors_url"],
                "updated_at": ts,
            },
            "$setOnInsert": {"created_at": ts},
        },
        upsert=True,
    )
    db[ACTIVITY].update_one(
        {"account_id": account_id, "entity_type": "import", "entity_id": job_id, "type": "import"},
        {
            "$set": {
                "data": {
                    "entity": entity,
                    "counts": result["counts"],
                    "file_name": job["params"]["source"].get("file_name"),
                },
                "uid": job.get("created_by"),
                "updated_at": ts,
            },
            "$setOnInsert": {"created_at": ts},
        },
        upsert=True,
    )
    return result
