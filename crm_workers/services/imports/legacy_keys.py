"""Keys that no longer validate but name a record (docs/contract.md §7): `old..dots@legacy-co.com`, written by another
service or by older rules, is that record's email exactly, so the row is that record, not a failure.

A row whose key did not validate carries it as `legacy_key` (domain/row_rules.py) and fails unless a record
of the account holds that exact value; then the key stands as the record holds it, and the writer finds the
record as it finds any other (and stops the row when the caller may not change it: matching.py).
"""

from __future__ import annotations

from bson import ObjectId
from pymongo.database import Database

from crm_workers.domain.import_rows import ParsedRow, RowContext
from crm_workers.domain.row_rules import LEGACY_KINDS, key_targets, legacy_text
from crm_workers.domain.values import is_blank


def _exact_texts(ctx: RowContext, headers: list[str], rows: list[ParsedRow]) -> list[tuple[ParsedRow, str, str]]:
    """(row, kind, text) for each key cell whose text differs from the value read from it (`Ann@X.com` read as
    `ann@x.com`, `+1 415 555 0134` as `+14155550134`): a record may hold the text itself."""
    positions = [(i, t) for i, h in enumerate(headers) if (t := ctx.mapping.get(h)) in LEGACY_KINDS]
    if not positions:
        return []
    out = []
    for row in rows:
        if not row.ok:
            continue
        keys = None
        for i, target in positions:
            value = row.record.get(target)
            if value is None or i >= len(row.values) or is_blank(cell := row.values[i]):
                continue
            if (text := legacy_text(cell)) != value:
                keys = keys if keys is not None else key_targets(ctx, row)
                if target in keys:
                    out.append((row, target, text))
    return out


def resolve_legacy_keys(
    db: Database,
    account_id: ObjectId,
    collection: str,
    rows: list[ParsedRow],
    ctx: RowContext | None = None,
    headers: list[str] | None = None,
) -> None:
    """Rows whose only failure is a key some record of the account holds exactly: no longer failed. A key cell
    whose text a record holds exactly (as another service wrote it) is that record's key as it is written."""
    pending = [row for row in rows if row.key_pending]
    exact = _exact_texts(ctx, headers, rows) if ctx is not None and headers else []
    if not pending and not exact:
        return
    wanted: dict[str, set[str]] = {}
    for row in pending:
        assert row.legacy_key is not None, "a pending key"
        kind, text, _ = row.legacy_key
        wanted.setdefault(kind, set()).add(text)
    for _, kind, text in exact:
        wanted.setdefault(kind, set()).add(text)
    held = set()
    for kind, values in wanted.items():
        for doc in db[collection].find({"account_id": account_id, kind: {"$in": sorted(values)}}, {kind: 1}):
            held.add((kind, doc.get(kind)))
    for row in pending:
        assert row.legacy_key is not None, "a pending key"
        kind, text, message = row.legacy_key
        if (kind, text) in held:
            row.errors.remove(message)
    for row, kind, text in exact:
        if (kind, text) in held:
            row.record[kind] = text
