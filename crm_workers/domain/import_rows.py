"""One import row → the record it asks for, or the reasons it cannot be imported. No I/O."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId

from crm_workers.domain import row_rules
from crm_workers.domain.cells import FORMULA_STARTS
from crm_workers.domain.values import (
    parse_custom,
    parse_date,
    parse_email,
    parse_number,
    parse_phone,
    parse_url,
    split_list,
)

# Deal statuses as systems write them, letters only (`Closed Won`, `closed-lost`, `WON`…).
DEAL_STATUSES = {"open": "open", "won": "won", "lost": "lost", "closedwon": "won", "closedlost": "lost"}
#: Stage names that say how the deal ended (HubSpot, Salesforce, Zoho), for rows that give no status.
ENDING_STAGES = {"closedwon": "won", "won": "won", "closedlost": "lost", "lost": "lost"}
EXTERNAL_ID_MAX = 200


def _letters(text: object) -> str:
    return re.sub(r"[^a-z]", "", str(text).lower())


def _external_id(value: object) -> str:
    """An id from another system as text (a spreadsheet's 1832.0 is 1832)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if len(text) > EXTERNAL_ID_MAX:
        raise ValueError(f"an id longer than {EXTERNAL_ID_MAX} characters")
    return text


@dataclass
class RowContext:
    """What parsing a row needs to know about its import."""

    entity: str  # "contact" | "deal"
    mapping: dict[str, str]  # header -> target
    fields: dict[str, dict[str, Any]]  # custom field key -> crm.fields document
    country: str | None
    day_first: dict[str, bool] = field(default_factory=dict)  # header -> True when the column is d/m/y
    contact_type: str = "person"
    default_pipeline: str | None = None  # deals: options.pipeline, for rows that name none
    dedupe: str = "email"  # options.dedupe: which value is a contact row's key (domain/row_rules.py)
    strict: bool = False  # options.strict: a bad value fails its row instead of being left out
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # target -> headers read row by row
    slots: dict[str, int] = field(default_factory=dict)  # address header -> which address (row_rules.plan)


@dataclass
class ParsedRow:
    row: int
    values: list[Any]  # the row as it was in the file
    record: dict[str, Any] = field(default_factory=dict)  # standard fields, "address" and "custom_fields" nested
    tags: list[str] = field(default_factory=list)
    businesses: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # deal-only lookups: pipeline, stage, amount, currency, contact_email
    errors: list[str] = field(default_factory=list)  # why the row fails
    warnings: list[str] = field(default_factory=list)  # the values left out of an imported row, and why
    problems: list[tuple[str, str, Any, str]] = field(
        default_factory=list
    )  # (target, header, value, reason) until settled
    legacy_key: tuple[str, str, str] | None = None  # (target, text, error): a bad key that an existing record may hold

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def key_pending(self) -> bool:
        """The row's only failure is a key that does not validate: it is still a record if one holds it."""
        return self.legacy_key is not None and self.errors == [self.legacy_key[2]]

    def error_text(self) -> str:
        return "; ".join(self.errors)


def _set(record: dict[str, Any], target: str, value: Any) -> None:
    if target.startswith("address."):
        record.setdefault("address", {})[target.split(".", 1)[1]] = value
    elif target.startswith("custom."):
        record.setdefault("custom_fields", {})[target.split(".", 1)[1]] = value
    else:
        record[target] = value


def unneutralise(value: str) -> str:
    """Undo an export's formula guard: `'=x` was `=x` (see domain/cells.py)."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_STARTS:
        return value[1:]
    return value


#: The targets cell_value reads (with custom.*); it gives the others' text as it is.
READ_TARGETS = frozenset(
    {
        "type",
        "email",
        "contact_email",
        "phone",
        "website",
        "tags",
        "owner",
        "value",
        "currency",
        "external_id",
        "status",
        "expected_close_date",
        "address.country",
    }
)


def cell_value(ctx: RowContext, header: str, target: str, text: Any) -> Any:
    """One non-blank cell (stripped, formula guard undone) read for its target, or ValueError(reason).
    The value's type depends on the target (text, an ObjectId, a datetime, (amount, currency), a list of tags…)."""
    if target == "type":
        kind = str(text).lower()
        if kind not in ("person", "business"):
            raise ValueError("type must be person or business")
        return kind
    if target == "email" or target == "contact_email":
        return parse_email(str(text))
    if target == "phone":
        return parse_phone(str(text), ctx.country)
    if target == "website":
        return parse_url(str(text))
    if target == "tags":
        return split_list(text)
    if target == "owner":
        if not ObjectId.is_valid(str(text)):
            raise ValueError("not a user id")
        return ObjectId(str(text))
    if target.startswith("custom."):
        definition = ctx.fields.get(target.split(".", 1)[1])
        if definition is None:
            raise ValueError("no such custom field")
        return parse_custom(definition, text, country=ctx.country, day_first=ctx.day_first.get(header, False))
    if target == "value":
        return parse_number(text)
    if target == "currency":
        code = str(text).upper()
        if len(code) != 3 or not code.isalpha():
            raise ValueError("not a currency code (like USD)")
        return code
    if target == "external_id":
        return _external_id(text)
    if target == "status":
        status = DEAL_STATUSES.get(_letters(text))
        if status is None:
            raise ValueError("status must be open, won or lost")
        return status
    if target == "expected_close_date":
        return parse_date(text, day_first=ctx.day_first.get(header, False))
    if target == "address.country":
        return str(text).upper() if len(str(text)) == 2 else str(text)
    return str(text)  # business, pipeline, stage and the plain text fields


def apply_cell(parsed: ParsedRow, target: str, value: Any) -> None:
    """A cell's value put where its target says (record, extra, tags, businesses)."""
    if target == "tags":
        parsed.tags.extend(t for t in value if t.lower() not in {x.lower() for x in parsed.tags})
    elif target == "business":
        if value.lower() not in {b.lower() for b in parsed.businesses}:
            parsed.businesses.append(value)
    elif target == "value":
        amount, currency = value
        parsed.extra["amount"] = amount
        if currency:
            parsed.extra.setdefault("currency", currency)
    elif target in EXTRA_TARGETS:
        parsed.extra[target] = value
    else:
        _set(parsed.record, target, value)


EXTRA_TARGETS = frozenset({"contact_email", "currency", "pipeline", "stage"})


def finish_cells(ctx: RowContext, parsed: ParsedRow, pending: dict[str, Any]) -> None:
    """After a row's cells: its alternatives chosen, its bad values settled as failures or warnings."""
    if pending:
        row_rules.choose(ctx, parsed, pending, apply_cell)
    row_rules.settle(ctx, parsed)


def complete_row(
    ctx: RowContext, parsed: ParsedRow, *, default_tags: Collection[str] = (), owner: ObjectId | None = None
) -> None:
    """After its cells: the import's default tags and owner, then what a whole contact or deal needs."""
    for tag in default_tags:
        if tag.lower() not in {t.lower() for t in parsed.tags}:
            parsed.tags.append(tag)
    if owner is not None:
        parsed.record.setdefault("owner", owner)
    if parsed.ok or parsed.key_pending:
        (complete_contact if ctx.entity == "contact" else _complete_deal)(ctx, parsed)


def complete_contact(ctx: RowContext, parsed: ParsedRow) -> None:
    r = parsed.record
    if r.get("type", ctx.contact_type) == "business":
        r["type"] = "business"
        r["name"] = r.get("name") or " ".join(filter(None, [r.pop("first_name", None), r.pop("last_name", None)]))
        if not r["name"]:
            parsed.errors.append(f"row {parsed.row}: a business needs a name")
        parsed.businesses = []
        return
    r["type"] = "person"
    name = r.pop("name", None)
    if name and not (r.get("first_name") or r.get("last_name")):
        first, *rest = name.split(None, 1)
        r["first_name"] = first
        if rest:
            r["last_name"] = rest[0].strip()
    if not (r.get("first_name") or r.get("last_name") or r.get("email") or r.get("phone")):
        parsed.errors.append(f"row {parsed.row}: a person needs a name, an email or a phone")


def _complete_deal(ctx: RowContext, parsed: ParsedRow) -> None:
    """A deal needs a name and a pipeline; its status, when the row gives none, may come from its stage.

    No default status here: a new deal is `open` (the writer says so), an updated one keeps its own.
    """
    if not parsed.record.get("name"):
        parsed.errors.append(f"row {parsed.row}: a deal needs a name")
    if not parsed.extra.get("pipeline") and not ctx.default_pipeline:
        parsed.errors.append(f"row {parsed.row}: a deal needs a pipeline (a column, or options.pipeline)")
    if "status" not in parsed.record and (ending := ENDING_STAGES.get(_letters(parsed.extra.get("stage", "")))):
        parsed.record["status"] = ending


def merge_into(target: ParsedRow, other: ParsedRow) -> None:
    """A later row with the same key: its non-empty values win, tags and businesses add up."""
    for key, value in other.record.items():
        if isinstance(value, dict):
            target.record.setdefault(key, {}).update(value)
        else:
            target.record[key] = value
    target.extra.update(other.extra)
    for tag in other.tags:
        if tag.lower() not in {t.lower() for t in target.tags}:
            target.tags.append(tag)
    for name in other.businesses:
        if name.lower() not in {b.lower() for b in target.businesses}:
            target.businesses.append(name)
