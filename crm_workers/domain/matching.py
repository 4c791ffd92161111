"""Which column imports into which target: the request's mapping first, then each header's name checked
against the column's first values, then unnamed columns whose values say what they are. No I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crm_workers.domain.column_fit import column_misfit, looks_like
from crm_workers.domain.headers import match_by_name, preferred_order
from crm_workers.domain.row_rules import ROW_BY_ROW, plan
from crm_workers.domain.values import is_blank

# Targets an unnamed column can get from its values alone, in this order.
LOOKALIKES = {"contact": (("email", "emails"), ("phone", "phone numbers")), "deal": (("contact_email", "emails"),)}


@dataclass
class Matching:
    mapping: dict[str, str]  # header -> target, in the file's order
    matches: dict[str, dict[str, Any]]  # header -> {"target": target | None, "reason": …, "source"?: system}
    ignored: list[str]
    warnings: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # the mapped headers, preferred first (row_rules.plan)


def match_columns(
    headers: list[str],
    entity: str,
    *,
    fields: dict[str, dict[str, Any]],
    sample: list[list[Any]],
    country: str | None,
    requested: dict[str, str | None] | None = None,
) -> Matching:
    """The mapping of `headers` to targets. `requested` (options.mapping) decides for the headers it names
    (`None` ignores one); the others are matched by name when their sampled values fit, or by their values."""
    requested = requested or {}

    def column(header: str) -> list[Any]:
        i = headers.index(header)
        return [row[i] for row in sample if i < len(row)]

    mapping: dict[str, str] = {}
    matches: dict[str, dict[str, Any]] = {}
    warnings = [
        f"options.mapping names `{h}`, which is not a column of the file" for h in requested if h not in headers
    ]
    named = {}
    for header in headers:
        if header in requested:
            target = requested[header]
            matches[header] = {"target": target, "reason": "mapping option"}
            if target is not None:
                mapping[header] = target
            continue
        found = match_by_name(header, entity, fields)
        if found is None:
            continue
        # A header that names a target or a custom field is meant for it: its bad values are the rows' own
        # (failed or warned one by one), never a reason to drop the column. Other systems' labels are checked.
        named_exactly = found.reason == "target name" or found.source == "custom field"
        misfit = None if named_exactly else column_misfit(found.target, column(header), fields=fields, country=country)
        if misfit:
            matches[header] = {"target": None, "reason": f"values are not {misfit}"}
            warnings.append(f"`{header}` values are not {misfit}: left unmatched")
        else:
            named[header] = found

    taken = {t: h for h, t in mapping.items()}
    rank = {h: -2 for h in mapping}  # the mapping option's headers first
    # Of several headers naming one target: one with values in the sample, then the best rank, then the first;
    # emails, phones and addresses take them all, read row by row in the system's order (row_rules.py).
    for header in sorted(named, key=lambda h: (not _has_values(column(h)), named[h].rank, headers.index(h))):
        found = named[header]
        if found.target in taken and found.target not in ROW_BY_ROW:
            matches[header] = {"target": None, "reason": f"{found.target} comes from `{taken[found.target]}`"}
            continue
        taken.setdefault(found.target, header)
        rank[header] = found.rank
        matches[header] = {"target": found.target, "reason": found.reason}
        if found.source:
            matches[header]["source"] = found.source

    for target, noun in LOOKALIKES[entity]:
        for header in headers:
            if target not in taken and header not in matches and looks_like(target, column(header), country=country):
                taken[target] = header
                matches[header] = {"target": target, "reason": f"values look like {noun}"}

    for header in headers:
        matches.setdefault(header, {"target": None, "reason": "no target of this name"})
    mapping = {h: matches[h]["target"] for h in headers if matches[h]["target"]}
    order = _preferred(mapping, rank, headers, entity)
    _say_alternatives(mapping, matches, order)
    warnings += _notes(entity, mapping, matches, column, country)
    return Matching(
        mapping=mapping,
        matches=matches,
        ignored=[h for h in headers if h not in mapping],
        warnings=warnings,
        order=order,
    )


def _say_alternatives(mapping: dict[str, str], matches: dict[str, dict[str, Any]], order: list[str]) -> None:
    """The headers of a target read row by row say so, and in which order they are tried."""
    groups, slots = plan(mapping, order)
    for target, group in groups.items():
        for n, header in enumerate(group, 1):
            matches[header]["row_by_row"] = n
            others = ", ".join(f"`{h}`" for h in group if h != header)
            where = " (its address's parts go together)" if header in slots else ""
            matches[header]["note"] = (
                f"one of {len(group)} columns of {target}, tried {_nth(n)}{where}; also {others}"
                if others
                else f"{target}, an address of the row{where}"
            )


def _preferred(mapping: dict[str, str], rank: dict[str, int], headers: list[str], entity: str) -> list[str]:
    """The mapped headers, the mapping option's first, then target names, then each target's others in their
    system's order (headers.preferred_order)."""
    by_target: dict[str, list[str]] = {}
    for header in mapping:
        by_target.setdefault(mapping[header], []).append(header)
    order = []
    for target, group in by_target.items():
        first = sorted((h for h in group if rank.get(h, 0) < 0), key=lambda h: (rank[h], headers.index(h)))
        order += first + preferred_order([h for h in group if h not in first], target, entity)
    return order


def _nth(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


def _has_values(values: list[Any]) -> bool:
    return any(not is_blank(v) for v in values)


def _notes(
    entity: str,
    mapping: dict[str, str],
    matches: dict[str, dict[str, Any]],
    column: Callable[[str], list[Any]],
    country: str | None,
) -> list[str]:
    notes: list[str] = []
    by_target = {t: h for h, t in mapping.items()}
    if entity == "contact" and "name" in by_target and not {"first_name", "last_name"} & set(by_target):
        matches[by_target["name"]]["note"] = "split into first_name and last_name"
    phones = [h for h, t in mapping.items() if t == "phone"]
    if (
        phones
        and country
        and any(not str(v).strip().startswith(("+", "00")) for h in phones for v in column(h) if not is_blank(v))
    ):
        notes.append(f"phones without country read as {country}")
    return notes


def date_warnings(day_first: dict[str, bool]) -> list[str]:
    """One warning per date column read day-first (learned from its values, see services/imports/run.py)."""
    return [f"dates in `{h}` read as day-first (DD/MM/YYYY)" for h, first in day_first.items() if first]
