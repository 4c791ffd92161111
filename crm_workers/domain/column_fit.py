"""Do a column's first values fit a target? A column named `OwnerId` holding Salesforce ids is not our owner.

Used by domain/matching.py: a column is matched to a target only when at least half of its sampled,
non-empty values would import; otherwise it is left unmatched with a warning instead of failing every row.
"""

from __future__ import annotations

from typing import Any, Protocol

from bson import ObjectId

from crm_workers.domain.import_rows import DEAL_STATUSES
from crm_workers.domain.values import (
    is_blank,
    parse_custom,
    parse_date,
    parse_email,
    parse_number,
    parse_phone,
    parse_url,
)

FIT_SHARE = 0.5  # at least this share of the sampled values must fit
LOOKALIKE_SHARE = 0.8  # an unnamed column is matched by its values when this share looks like the target


class _Check(Protocol):
    """Raises ValueError when `value` would not import into its target."""

    def __call__(self, value: Any, /, *, country: str | None) -> object: ...


def _owner(value: object, **_: object) -> None:
    if not (ObjectId.is_valid(str(value).strip()) and len(str(value).strip()) == 24):
        raise ValueError


def _status(value: object, **_: object) -> None:
    if str(value).strip().lower() not in DEAL_STATUSES:
        raise ValueError


def _currency(value: object, **_: object) -> None:
    text = str(value).strip()
    if len(text) != 3 or not text.isalpha():
        raise ValueError


def _type(value: object, **_: object) -> None:
    if str(value).strip().lower() not in ("person", "business"):
        raise ValueError


# target -> (check raising ValueError, what the values should have been)
_CHECKS: dict[str, tuple[_Check, str]] = {
    "email": (lambda v, **_: parse_email(str(v)), "email addresses"),
    "contact_email": (lambda v, **_: parse_email(str(v)), "email addresses"),
    "phone": (lambda v, country, **_: parse_phone(str(v), country), "phone numbers"),
    "website": (lambda v, **_: parse_url(str(v)), "web addresses"),
    "owner": (_owner, "user ids"),
    "value": (lambda v, **_: parse_number(v), "amounts"),
    "expected_close_date": (lambda v, **_: parse_date(v), "dates"),
    "status": (_status, "deal statuses (open, won, lost)"),
    "currency": (_currency, "currency codes (like USD)"),
    "type": (_type, "contact types (person, business)"),
}


def fits(target: str, value: object, *, fields: dict[str, dict[str, Any]], country: str | None) -> bool:
    """Would this one value import into `target`?"""
    if target.startswith("custom."):
        field = fields.get(target[7:])
        if field is None:
            return False
        try:
            parse_custom(field, value, country=country, day_first=False)
            return True
        except ValueError:
            # A date column may be day-first: the run learns that from the whole column.
            if field.get("field_type") == "date":
                return _parses_day_first(value)
            return False
    check = _CHECKS.get(target)
    if check is None:
        return True
    try:
        check[0](value, country=country)
        return True
    except ValueError:
        return target == "expected_close_date" and _parses_day_first(value)


def _parses_day_first(value: object) -> bool:
    try:
        parse_date(value, day_first=True)
        return True
    except ValueError:
        return False


def what_fits(target: str, fields: dict[str, dict[str, Any]]) -> str:
    if target.startswith("custom."):
        kind = fields.get(target[7:], {}).get("field_type", "text")
        return f"values of a {kind} field"
    return _CHECKS.get(target, (None, "values of this target"))[1]


def column_misfit(
    target: str, values: list[Any], *, fields: dict[str, dict[str, Any]], country: str | None
) -> str | None:
    """None when the column fits `target` (or has nothing to judge); else what its values are not."""
    present = [v for v in values if not is_blank(v)]
    if target == "external_id":
        texts = [str(v).strip() for v in present]
        return "unique ids (values repeat)" if len(set(texts)) < len(texts) else None
    if not present:
        return None
    good = sum(fits(target, v, fields=fields, country=country) for v in present)
    if good >= FIT_SHARE * len(present):
        return None
    noun = what_fits(target, fields)
    if target == "phone" and not country:
        noun += " in international form (+…); no default country is set, see options.country"
    return noun


def looks_like(target: str, values: list[Any], *, country: str | None) -> bool:
    """An unnamed column whose values are plainly of `target` (emails; phones written with +)."""
    present = [str(v).strip() for v in values if not is_blank(v)]
    if not present:
        return False
    if target == "phone" and sum(v.startswith("+") for v in present) < LOOKALIKE_SHARE * len(present):
        return False  # a bare number could be anything (ids, amounts): only `+…` numbers say "phone"
    good = sum(fits(target, v, fields={}, country=country) for v in present)
    return good >= LOOKALIKE_SHARE * len(present)
