"""Normalising and validating one cell. Each parser returns the clean value or raises ValueError(reason)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, cast
from urllib.parse import urlparse

# No stubs: types-python-dateutil is not among the locked dev dependencies.
from dateutil import parser as dateparser  # type: ignore[import-untyped]

# Re-exported (`x as x`): other modules import these from here.
from crm_workers.domain.contact_points import MULTI_VALUE_SEPARATOR as MULTI_VALUE_SEPARATOR
from crm_workers.domain.contact_points import first_value as first_value
from crm_workers.domain.contact_points import parse_email as parse_email
from crm_workers.domain.contact_points import parse_phone as parse_phone

CURRENCY_SYMBOLS = {
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "R$": "BRL",
    "CHF": "CHF",
    "₺": "TRY",
    "zł": "PLN",
    "kr": "SEK",
}
_CODE = re.compile(r"\b([A-Z]{3})\b")
# What some systems write for "no date" (Zoho, old Excel exports): read as an empty cell.
_NULL_DATE = re.compile(r"^0{1,4}(?P<sep>[./-])0{1,2}(?P=sep)0{1,4}([ T]0{1,2}:0{2}(:0{2})?)?$")


def is_blank(value: object) -> bool:
    """An empty cell, or one holding a placeholder that means empty (`0.0.00`, `0000-00-00`)."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    return not text or bool(_NULL_DATE.match(text))


_NUMERIC_DATE = re.compile(r"^\s*(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})\s*$")
_ISO_DATE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}([T ][\d:.]+ ?(Z|[+-]\d{2}:?\d{2})?)?\s*$")


def numeric_date_order(value: str) -> str | None:
    """'dmy' or 'mdy' when a numeric date can only be read one way, None when either way (or not a date)."""
    m = _NUMERIC_DATE.match(value or "")
    if not m or len(m.group(1)) == 4:
        return None
    a, b = int(m.group(1)), int(m.group(2))
    if a > 12 >= b:
        return "dmy"
    if b > 12 >= a:
        return "mdy"
    return None


def parse_date(value: object, *, day_first: bool = False) -> datetime:
    """A date (UTC midnight) or datetime from ISO, US (m/d/y), European (d/m/y or d.m.y) or '5 Jan 2024'."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    try:
        if _ISO_DATE.match(text):
            # Salesforce writes `.000Z` and `+0000`, some exports a space before the offset.
            parsed = datetime.fromisoformat(re.sub(r" ([+-]\d)", r"\1", text).replace("Z", "+00:00"))
        elif m := _NUMERIC_DATE.match(text):
            first, second, third = (int(g) for g in m.groups())
            if len(m.group(1)) == 4:
                year, month, day = first, second, third
            else:
                day, month = (first, second) if day_first else (second, first)
                year = third + (2000 if third < 70 else 1900) if third < 100 else third
            parsed = datetime(year, month, day)
        elif re.search(r"[A-Za-z]{3,}", text):
            parsed = dateparser.parse(text, dayfirst=day_first, fuzzy=False)
        else:
            raise ValueError
    except (ValueError, OverflowError, dateparser.ParserError):
        raise ValueError("not a date (use YYYY-MM-DD, MM/DD/YYYY or DD/MM/YYYY)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_number(value: object) -> tuple[float | int, str | None]:
    """A number from text with thousands separators, currency symbols or codes; returns (number, currency)."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int | float):
        return value, None
    text = str(value).strip()
    currency = None
    for symbol, code in sorted(CURRENCY_SYMBOLS.items(), key=lambda kv: -len(kv[0])):
        if symbol in text:
            currency, text = code, text.replace(symbol, "")
            break
    if m := _CODE.search(text):
        currency, text = m.group(1), _CODE.sub("", text)
    text = text.replace("\u00a0", "").replace(" ", "").replace("'", "")
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()")
    if text.endswith("-"):
        negative, text = True, text[:-1]
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text) else text.replace(",", ".")
    elif text.count(".") > 1 and re.fullmatch(r"-?\d{1,3}(\.\d{3})+", text):
        text = text.replace(".", "")
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
        raise ValueError("not a number")
    number = float(text)
    if negative:
        number = -number
    return (int(number) if number.is_integer() and "." not in text else number), currency


_TRUE = {"true", "yes", "y", "1", "x", "✓", "on", "checked"}
_FALSE = {"false", "no", "n", "0", "", "off", "unchecked"}


def parse_checkbox(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a yes/no value")


def parse_url(value: str) -> str:
    text = first_value(value)
    if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
        text = "https://" + text
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or "." not in parsed.netloc or " " in text:
        raise ValueError("not a web address")
    return text


def split_list(value: str) -> list[str]:
    """Names separated by ',', ';' or Google's ` ::: `, trimmed and unquoted (Mailchimp writes `"VIP","Press"`),
    empty ones and Google's system groups (`* myContacts`) dropped, first spelling of each kept."""
    seen, out = set(), []
    for part in re.split(r"[,;]|:::", str(value)):
        name = part.strip().strip("\"'").strip()
        if name.startswith("* "):
            continue
        if name and name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return out


def _options(field: dict[str, Any]) -> list[str]:
    # An option stored as an object: its `value` (else `label`), the text the field's editor saved.
    return [
        cast(str, o.get("value", o.get("label"))) if isinstance(o, dict) else str(o) for o in field.get("options") or []
    ]


def _option(field: dict[str, Any], value: str) -> str:
    for option in _options(field):
        if option.lower() == value.strip().lower():
            return option
    raise ValueError(f"not one of the options ({', '.join(_options(field))})")


#: What parse_custom reads, by field_type: number, date, select, multiselect, checkbox, the text types.
CustomValue = int | float | datetime | str | list[str] | bool


def parse_custom(field: dict[str, Any], value: Any, *, country: str | None, day_first: bool) -> CustomValue:
    """A custom field's value by its field_type (docs/contract.md §4 crm.fields)."""
    kind = field.get("field_type", "text")
    if kind == "number":
        return parse_number(value)[0]
    if kind == "date":
        return parse_date(value, day_first=day_first)
    if kind == "select":
        return _option(field, str(value))
    if kind == "multiselect":
        return [_option(field, v) for v in split_list(value)]
    if kind == "checkbox":
        return parse_checkbox(value)
    if kind == "email":
        return parse_email(str(value))
    if kind == "phone":
        return parse_phone(str(value), country)
    if kind == "url":
        return parse_url(str(value))
    return str(value).strip()
