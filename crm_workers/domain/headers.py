"""Import targets (docs/contract.md §7) and what a header's name says about its target.

The labels of other systems' exports are data, in `domain/synonyms/`; this module only compares names.
Which header finally gets which target (values checked, one header per target) is `domain/matching.py`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from crm_workers.domain import synonyms
from crm_workers.domain.cells import FORMULA_STARTS

CONTACT_TARGETS = (
    "type",
    "first_name",
    "last_name",
    "name",
    "email",
    "phone",
    "website",
    "address.street",
    "address.city",
    "address.state_province",
    "address.postal_code",
    "address.country",
    "tags",
    "owner",
    "business",
    "external_id",
)
DEAL_TARGETS = (
    "name",
    "pipeline",
    "stage",
    "value",
    "currency",
    "status",
    "expected_close_date",
    "contact_email",
    "tags",
    "owner",
    "business",
    "external_id",
)
ENTITY_KEYS = {"contact": "CONTACT", "deal": "DEAL"}


@dataclass(frozen=True)
class NameMatch:
    """A header's target by its name: `rank` orders headers of one target (lower wins), `source` says whose
    label it is (`Outlook (German)`, `custom field`…)."""

    target: str
    reason: str
    rank: int = 0
    source: str | None = None


def normalise_header(header: object) -> str:
    """Letters and digits only, accents dropped, case folded: `E-Mail 2: Adresse` → `email2adresse`."""
    text = unicodedata.normalize("NFKD", str(header))
    return "".join(c for c in text if c.isalnum() and not unicodedata.combining(c)).casefold()


def targets_for(entity: str, field_keys: list[str]) -> set[str]:
    base = CONTACT_TARGETS if entity == "contact" else DEAL_TARGETS
    return set(base) | {f"custom.{k}" for k in field_keys}


@functools.cache
def _label_table(entity: str) -> dict[str, NameMatch]:
    table: dict[str, NameMatch] = {}
    for target in CONTACT_TARGETS if entity == "contact" else DEAL_TARGETS:
        table[normalise_header(target)] = NameMatch(target, "target name", -1)
    for module in synonyms.MODULES:
        for target, labels in getattr(module, ENTITY_KEYS[entity]).items():
            for rank, label in enumerate(labels):
                table.setdefault(normalise_header(label), NameMatch(target, "synonym", rank, module.SYSTEM))
    return table


@functools.cache
def _patterns(entity: str) -> list[tuple[re.Pattern[str], str, str]]:
    return [
        (re.compile(pattern, re.I), target, module.SYSTEM)
        for module in synonyms.MODULES
        for pattern, target in getattr(module, f"{ENTITY_KEYS[entity]}_PATTERNS", ())
    ]


def match_by_name(header: str, entity: str, fields: dict[str, dict[str, Any]] | None = None) -> NameMatch | None:
    """The target a header names: a target or a synonym of one, a numbered label (`Phone 2 - Value`), or a
    custom field's key or label; None when it names none."""
    key = normalise_header(header)
    if found := _label_table(entity).get(key):
        return found
    spaced = " ".join(str(header).split())
    for pattern, target, source in _patterns(entity):
        if (m := pattern.fullmatch(spaced)) and len(m.group(1)) <= 9:  # `E-mail <5000 digits> - Value` is no
            return NameMatch(target, "synonym", int(m.group(1)), source)  # label (int() of it raises)
    for field_key in fields or {}:
        if key in (normalise_header(field_key), normalise_header(f"custom.{field_key}")):
            return NameMatch(f"custom.{field_key}", "key of custom field", 0, "custom field")
    for field_key, field in (fields or {}).items():
        if field.get("label") and key == normalise_header(field["label"]):
            return NameMatch(f"custom.{field_key}", "label of custom field", 0, "custom field")
    return None


def preferred_order(headers: list[str], target: str, entity: str) -> list[str]:
    """Headers of one target in the order their system prefers them (Outlook: primary, mobile, business, home,
    other phone). Each header takes its place in the list of the system that names most of the headers (a
    file mixing Outlook's German and English labels keeps Outlook's order); numbered labels (`Phone 2 - Value`)
    their number; then as in the file."""
    keys = {h: normalise_header(h) for h in headers}
    lists = [
        [normalise_header(label) for label in getattr(m, ENTITY_KEYS[entity]).get(target, ())] for m in synonyms.MODULES
    ]
    lists.sort(key=lambda labels: -sum(k in labels for k in keys.values()))  # stable: earlier modules on ties

    def key(header: str) -> tuple[int, int]:
        for labels in lists:
            if keys[header] in labels:
                return labels.index(keys[header]), headers.index(header)
        found = match_by_name(header, entity)
        return (found.rank if found else 0), headers.index(header)

    return sorted(headers, key=key)


def auto_mapping(
    headers: list[str], entity: str, field_keys: list[str], field_labels: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Headers matched by name alone (no look at the values); returns (mapping, ignored headers).

    Of several headers naming one target, the best-ranked takes it (then the first in the file).
    """
    fields = {k: {"key": k, "label": field_labels.get(k)} for k in field_keys}
    found = {h: m for h in headers if (m := match_by_name(h, entity, fields))}
    best: dict[str, str] = {}
    for header in sorted(found, key=lambda h: (found[h].rank, headers.index(h))):
        best.setdefault(found[header].target, header)
    mapping = {h: found[h].target for h in headers if h in found and best[found[h].target] == h}
    return mapping, [h for h in headers if h not in mapping]


def _unguard(name: str) -> str:
    """An export's formula guard taken off a header: `'=x` was `=x` (see domain/cells.py)."""
    return name[1:] if len(name) > 1 and name[0] == "'" and name[1] in FORMULA_STARTS else name


def clean_headers(raw: list[Any]) -> list[str]:
    """Headers made usable: trimmed, formula guard removed, empty ones named `column_<n>`, duplicates
    suffixed ` (2)`, ` (3)`…"""
    seen: dict[str, int] = {}
    headers: list[str] = []
    for i, value in enumerate(raw):
        # A NUL cannot be in a field name of MongoDB's (the result keys matches by header): a job whose header
        # had one could not even record its end. It is no character of a header anyway.
        name = _unguard("" if value is None else str(value).replace("\x00", "").strip().lstrip("\ufeff").strip())
        name = name or f"column_{i + 1}"
        count = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = count
        headers.append(name if count == 1 else f"{name} ({count})")
    return headers
