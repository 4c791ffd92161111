"""Which column imports into which target: the request's mapping first, then each header's name checked
against the column's first values, then unnamed columns whose values say what they are. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_workers.domain.column_fit import column_misfit, looks_like
from crm_workers.domain.headers import match_by_name
from crm_workers.domain.values import is_blank

# Targets an unnamed column can get from its values alone, in this order.
LOOKALIKES = {"contact": (("email", "emails"), ("phone", "phone numbers")),
              "deal": (("contact_email", "emails"),)}


@dataclass
class Matching:
    mapping: dict[str, str]  # header -> target, in the file's order
    matches: dict[str, dict]  # header -> {"target": target | None, "reason": …, "source"?: system}
    ignored: list[str]
    warnings: list[str] = field(default_factory=list)


def match_columns(headers: list[str], entity: str, *, fields: dict[str, dict], sample: list[list],
                  country: str | None, requested: dict[str, str | None] | None = None) -> Matching:
    """The mapping of `headers` to targets. `requested` (options.mapping) decides for the headers it names
    (`None` ignores one); the others are matched by name when their sampled values fit, or by their values."""
    requested = requested or {}

    def column(header: str) -> list:
        i = headers.index(header)
        return [row[i] for row in sample if i < len(row)]

    mapping: dict[str, str] = {}
    matches: dict[str, dict] = {}
    warnings = [f"options.mapping names `{h}`, which is not a column of the file" for h in requested
                if h not in headers]
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
        misfit = column_misfit(found.target, column(header), fields=fields, country=country)
        if misfit:
            matches[header] = {"target": None, "reason": f"values are not {misfit}"}
            warnings.append(f"`{header}` values are not {misfit}: left unmatched")
        else:
            named[header] = found

    taken = {t: h for h, t in mapping.items()}
    # Of several headers naming one target: one with values in the sample, then the best rank, then the first.
    for header in sorted(named, key=lambda h: (not _has_values(column(h)), named[h].rank, headers.index(h))):
        found = named[header]
        if found.target in taken:
            matches[header] = {"target": None, "reason": f"{found.target} comes from `{taken[found.target]}`"}
            continue
        taken[found.target] = header
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
    warnings += _notes(entity, mapping, matches, column, country)
    return Matching(mapping=mapping, matches=matches, ignored=[h for h in headers if h not in mapping],
                    warnings=warnings)


def _has_values(values: list) -> bool:
    return any(not is_blank(v) for v in values)


def _notes(entity, mapping, matches, column, country) -> list[str]:
    notes = []
    by_target = {t: h for h, t in mapping.items()}
    if entity == "contact" and "name" in by_target and not {"first_name", "last_name"} & set(by_target):
        matches[by_target["name"]]["note"] = "split into first_name and last_name"
    if (phone := by_target.get("phone")) and country:
        if any(not str(v).strip().startswith(("+", "00")) for v in column(phone) if not is_blank(v)):
            notes.append(f"phones without country read as {country}")
    return notes


def date_warnings(day_first: dict[str, bool]) -> list[str]:
    """One warning per date column read day-first (learned from its values, see services/imports/run.py)."""
    return [f"dates in `{h}` read as day-first (DD/MM/YYYY)" for h, first in day_first.items() if first]
