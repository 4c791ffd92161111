"""What a row's values make of it (docs/contract.md §7): alternatives read row by row, and what a bad value costs.

- Several columns of one target (`Phone`, `Mobile`, `Business Phone`; `E-mail 1/2/3`; business, home and
  other addresses) are read row by row: the row takes the first valid value in the system's order. Addresses
  go together: a row takes every part of its first address (business, home, other…) that has a value, so a
  street is never joined to another address's city.
- A bad value of the row's key (the `dedupe` target it has, or `external_id`) fails the row, unless an
  existing record holds that exact value (the writer looks: see services/imports/legacy_keys.py); any other
  bad value is left out with a warning, or fails the row under `options.strict`.
No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crm_workers.domain.headers import normalise_header

if TYPE_CHECKING:
    from crm_workers.domain.import_rows import ParsedRow, RowContext

#: Targets whose several columns are read row by row.
ROW_BY_ROW = frozenset(
    {
        "email",
        "phone",
        "address.street",
        "address.city",
        "address.state_province",
        "address.postal_code",
        "address.country",
    }
)
#: Key targets that a record written by another service (or older rules) may hold in a shape that no longer
#: validates: such a value finds that record.
LEGACY_KINDS = frozenset({"email", "phone", "external_id"})

# Which address a header belongs to, from its words (normalised: letters and digits, accents dropped), in the
# order a row takes them. Outlook: Business/Home/Other in four languages; Salesforce and Zoho: Mailing/Other.
_SLOT_WORDS = (
    (1, re.compile(r"business|work|mailing|geschaftlich|dienstlich|bureau|professionnel|trabajo")),
    (2, re.compile(r"home|privat|domicile|domicilio|residencia")),
    (3, re.compile(r"other|weitere|autre|otra|otro")),
)
_NUMBERED = re.compile(r"address\s*(\d+)\b", re.I)  # Google: `Address 1 - Street`


class Bad:
    """A cell whose value does not read: its reason, and the cell as it was."""

    __slots__ = ("reason", "value")

    def __init__(self, reason: str, value: object) -> None:
        self.reason, self.value = reason, value


def address_slot(header: str) -> int:
    """Which address of the row a header's column holds: 0 unnamed, 1 business, 2 home, 3 other, 10 + n
    Google's `Address n`."""
    if m := _NUMBERED.search(str(header)):
        return 10 + int(m.group(1))
    key = normalise_header(header)
    return next((slot for slot, words in _SLOT_WORDS if words.search(key)), 0)


def plan(mapping: dict[str, str], order: list[str]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """For a mapping and its headers in the order they are preferred: the targets read row by row (target →
    headers, first preferred), and each address header's slot when the file holds more than one address."""
    by_target: dict[str, list[str]] = {}
    for header in [*order, *(h for h in mapping if h not in order)]:
        if (target := mapping.get(header)) in ROW_BY_ROW:
            by_target.setdefault(target, []).append(header)
    slots = {h: address_slot(h) for t, hs in by_target.items() if t.startswith("address.") for h in hs}
    if len(set(slots.values())) < 2:
        slots = {}
    groups = {t: hs for t, hs in by_target.items() if len(hs) > 1 or (slots and t.startswith("address."))}
    return groups, slots


def choose(
    ctx: RowContext, parsed: ParsedRow, pending: dict[str, Any], apply: Callable[[ParsedRow, str, Any], None]
) -> None:
    """The row's value of each target read row by row: the first valid one (of its first address with a value).
    Bad values met before it are the row's problems; the ones after it are not read."""
    slot = min((ctx.slots[h] for h in pending if h in ctx.slots), default=None) if ctx.slots else None
    for target, headers in ctx.alternatives.items():
        for header in headers:
            if (value := pending.get(header)) is None:
                continue
            if slot is not None and ctx.slots.get(header, slot) != slot:
                continue  # another address of the row
            if value.__class__ is Bad:
                parsed.problems.append((target, header, value.value, value.reason))
                continue
            apply(parsed, target, value)
            break


def _has(record: dict[str, Any], target: str) -> bool:
    return bool(record.get(target))


def key_targets(ctx: RowContext, parsed: ParsedRow) -> set[str]:
    """The targets that identify this row's record: external_id, and the dedupe key it has (email or phone;
    a row without a value in it, valid or not, falls back to the other)."""
    keys = {"external_id"}
    dedupe = getattr(ctx, "dedupe", "email")
    if ctx.entity == "contact" and dedupe in ("email", "phone"):
        other = "phone" if dedupe == "email" else "email"
        tried = {t for t, *_ in parsed.problems}
        keys.add(dedupe if _has(parsed.record, dedupe) or dedupe in tried else other)
    return keys


def cell_message(row: int, header: str, value: object, reason: str) -> str:
    return f"row {row}, column {header!r}, value {str(value)!r}: {reason}"


def legacy_text(value: object) -> str:
    """A key cell as text, as a record would hold it (formula guard undone)."""
    from crm_workers.domain.import_rows import unneutralise

    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unneutralise(str(value).strip())


def settle(ctx: RowContext, parsed: ParsedRow) -> None:
    """Each bad value of the row: a failure when it was the row's key (and no other column gave the key), else
    a warning (a failure under options.strict). A bad key may still be a record's exact value: kept pending."""
    if not parsed.problems:
        return
    keys = key_targets(ctx, parsed)
    for target, header, value, reason in parsed.problems:
        message = cell_message(parsed.row, header, value, reason)
        if target in keys and not _has(parsed.record, target):
            parsed.errors.append(message)
            if parsed.legacy_key is None and target in LEGACY_KINDS and (text := legacy_text(value)):
                parsed.legacy_key = (target, text, message)
                parsed.record[target] = text  # what identifies it, if a record holds it exactly
        elif ctx.strict:
            parsed.errors.append(message)
        else:
            parsed.warnings.append(message)
