"""A column of text cells read at once, with vectorised operations on Arrow strings (pyarrow.compute).

What each function decides equals what the one-cell readers give (`cell_value`, and through it the fast paths
of contact_points.py and values.py): cells stripped as `str.strip` strips them, blanks found, an export's
formula guard undone; then plain emails (shape, length and a known domain), phone numbers in the fast path's
shapes (digits extracted, lengths and prefixes checked against the phonenumbers tables), ISO and numeric
dates, integers and decimals. A cell none of these decide is left to `cell_value`, once per distinct text
(domain/import_columns.py). tests/unit/test_import_columns.py compares both ways on generated cells.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crm_workers.domain.blocks import strings
from crm_workers.domain.contact_points import (
    E164_SHAPE,
    EMAIL_MAX_LENGTH,
    NATIONAL_SHAPE,
    PLAIN_EMAIL,
    calling_code_rules,
    calling_codes,
    plain_domain,
    region_rules,
)

_GUARDED = "^'[=+\\-@\t\r]"  # domain/cells.py's FORMULA_STARTS behind the guard's quote
_ISO_DAY = r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})$"
_NUMERIC_DAY = r"^(?P<a>[0-9]{1,2})[/.\-](?P<b>[0-9]{1,2})[/.\-](?P<y>[0-9]{4})$"
_INTEGER = r"^-?[0-9]{1,15}$"  # a float holds 15 digits exactly: parse_number's int(float(text))
_DECIMAL = r"^-?[0-9]{1,15}\.[0-9]{1,15}$"


def _re2(pattern: str) -> str:
    """A pattern of Python's re as RE2 reads it, anchored: RE2 spells a code point \\x{…}, not \\u…."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("\\u", i):
            out.append("\\x{" + pattern[i + 2 : i + 6] + "}")
            i += 6
        else:
            out.append(pattern[i])
            i += 1
    return "^(?:" + "".join(out) + ")$"


_EMAIL = _re2(PLAIN_EMAIL.pattern)
_E164 = _re2(E164_SHAPE.pattern)
_NATIONAL = _re2(NATIONAL_SHAPE.pattern)
#: phonenumbers' calling codes by their number of digits (1 to 3).
_CODES_BY_SIZE = {size: sorted(c for c in calling_codes() if len(c) == size) for size in (1, 2, 3)}


def texts(cells: list[Any]) -> pa.ChunkedArray | None:
    """The column as Arrow strings (None for a missing cell), or None when it holds another type."""
    try:
        return pa.chunked_array([pa.array(cells, type=pa.large_string())])
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError):  # UnicodeError: a lone surrogate
        return None


def has_text(column: Any) -> np.ndarray | None:
    """Where a cell holds more than spaces; None for a column of lists (read by row)."""
    if not isinstance(column, pa.ChunkedArray):
        return None
    return _mask(pc.greater(pc.binary_length(pc.utf8_trim_whitespace(column)), 0))


def stripped(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Each cell stripped and its formula guard undone, and the mask of the blank ones (empty or missing).
    Arrow's whitespace is `str.strip`'s (tests/unit/test_import_columns.py checks every such character)."""
    text = pc.utf8_trim_whitespace(column)
    guarded = _mask(pc.match_substring_regex(text, _GUARDED))
    if guarded.any():
        text = pc.if_else(guarded, pc.utf8_slice_codeunits(text, 1), text)
    blank = ~_mask(pc.greater(pc.binary_length(text), 0))
    return text, blank


def _prefixed(prefix: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pa.large_string()
    return pc.binary_join_element_wise(pa.scalar(prefix, type=text), values, pa.scalar("", type=text))


def _mask(answer: pa.ChunkedArray) -> np.ndarray:
    """A boolean answer as a numpy mask, a missing answer false."""
    return np.asarray(pc.fill_null(answer, False).to_numpy(zero_copy_only=False), dtype=bool)


def _is_in(values: pa.ChunkedArray, allowed: list[Any]) -> np.ndarray:
    if not allowed:
        return np.zeros(len(values), dtype=bool)
    return _mask(pc.is_in(values, value_set=pa.array(allowed, type=values.type)))


def _starts(values: pa.ChunkedArray, pattern: str | None) -> np.ndarray:
    """Where a Python pattern of phonenumbers' metadata matches at the start (RE2 reads them; when one it
    cannot, Python's re decides each distinct value)."""
    if pattern is None:
        return np.zeros(len(values), dtype=bool)
    try:
        return _mask(pc.match_substring_regex(values, f"^(?:{pattern})"))
    except pa.ArrowInvalid:
        compiled = re.compile(pattern)
        return np.array([v is not None and bool(compiled.match(v)) for v in strings(values)], dtype=bool)


def emails(text: pa.ChunkedArray, todo: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Among the rows `todo`: where a plain address of a plain domain was read, and each row's address."""
    shaped = todo & _mask(pc.match_substring_regex(text, _EMAIL))
    shaped &= _mask(pc.less_equal(pc.binary_length(text), EMAIL_MAX_LENGTH))
    if not shaped.any():
        return shaped, []
    # The domain of each address of that shape (it holds one @), each distinct one asked once.
    domains = pc.list_element(pc.split_pattern(pc.filter(text, shaped), "@", max_splits=1), 1)
    plain = [d for d in strings(pc.unique(domains)) if plain_domain(d) is not None]
    done = np.zeros(len(text), dtype=bool)
    done[np.flatnonzero(shaped)] = _is_in(domains, plain)
    return done, strings(pc.utf8_lower(text))


def phones(text: pa.ChunkedArray, todo: np.ndarray, country: str | None) -> tuple[np.ndarray, list[Any]]:
    """Among the rows `todo`: where a number in the fast path's shapes was read, and each row's E.164."""
    text = pc.if_else(pc.starts_with(text, "00"), _prefixed("+", pc.utf8_slice_codeunits(text, 2)), text)
    todo = todo & ~_mask(pc.greater(pc.utf8_length(text), 40))
    plus = _mask(pc.starts_with(text, "+"))
    body = pc.utf8_slice_codeunits(text, 1)
    shaped = todo & plus & _mask(pc.match_substring_regex(text, _E164))
    digits = pc.if_else(plus, body, text)
    for separator in " .-()":  # contact_points' _SEPARATORS (literal replaces: a regex costs twice theirs)
        digits = pc.replace_substring(digits, separator, "")
    done = np.zeros(len(text), dtype=bool)
    e164 = _prefixed("+", digits)
    if shaped.any():
        done |= shaped & _international(digits)
    rules = region_rules(country) if country else None
    if rules is not None:
        national = todo & ~plus & _mask(pc.match_substring_regex(text, _NATIONAL))
        if national.any():
            code, idd, prefix, code_rules = rules
            lengths, code_prefix = code_rules if code_rules is not None else (frozenset(), None)
            ok = national & ~_mask(pc.starts_with(digits, "0")) & _is_in(pc.utf8_length(digits), sorted(lengths))
            ok &= _mask(pc.greater_equal(pc.utf8_length(digits), 3)) & ~_mask(pc.starts_with(digits, code))
            for pattern in (idd, prefix, code_prefix):
                ok &= ~_starts(digits, pattern.pattern if pattern is not None else None)
            if ok.any():
                done |= ok
                e164 = pc.if_else(ok, _prefixed("+" + code, digits), e164)
    return done, strings(e164)


def _international(digits: pa.ChunkedArray) -> np.ndarray:
    """Where `+digits` is possible as the fast path reads it: the shortest prefix that is a calling code,
    then the national number's length and national prefix (contact_points._fast_international)."""
    ok = np.zeros(len(digits), dtype=bool)
    left = ~_mask(pc.starts_with(digits, "0"))
    for size, codes in _CODES_BY_SIZE.items():
        prefix = pc.utf8_slice_codeunits(digits, 0, size)
        here = left & _is_in(prefix, codes)
        if not here.any():
            continue
        left &= ~here
        national = pc.utf8_slice_codeunits(digits, size)
        for code in strings(pc.unique(pc.filter(prefix, here))):
            rules = calling_code_rules(code)
            if rules is None:
                continue
            lengths, pattern = rules
            rows = here & _mask(pc.equal(prefix, code))
            rows &= ~_mask(pc.starts_with(national, "0")) & _is_in(pc.utf8_length(national), sorted(lengths))
            rows &= ~_starts(national, pattern.pattern if pattern is not None else None)
            ok |= rows
    return ok


def dates(text: pa.ChunkedArray, todo: np.ndarray, day_first: bool) -> tuple[np.ndarray, list[Any]]:
    """Among the rows `todo`: where an ISO (`2024-05-01`) or numeric (`01/05/2024`, a 4-digit year) date that
    exists was read, and each row's day at midnight UTC (parse_date says why the others are not dates)."""
    iso, numeric = pc.extract_regex(text, _ISO_DAY), pc.extract_regex(text, _NUMERIC_DAY)
    is_iso = todo & _mask(pc.is_valid(iso))
    is_numeric = todo & ~is_iso & _mask(pc.is_valid(numeric))
    if not (is_iso.any() or is_numeric.any()):
        return is_iso, []
    day_key, month_key = ("a", "b") if day_first else ("b", "a")
    years = strings(pc.if_else(is_iso, pc.struct_field(iso, "y"), pc.struct_field(numeric, "y")))
    months = strings(pc.if_else(is_iso, pc.struct_field(iso, "m"), pc.struct_field(numeric, month_key)))
    days = strings(pc.if_else(is_iso, pc.struct_field(iso, "d"), pc.struct_field(numeric, day_key)))
    done = is_iso | is_numeric
    out: list[Any] = [None] * len(text)
    for i in np.flatnonzero(done):
        if is_numeric[i] and int(years[i]) < 100:  # `1/2/0099`: parse_date reads 2-digit years its own way
            done[i] = False
            continue
        try:
            out[i] = datetime(int(years[i]), int(months[i]), int(days[i]), tzinfo=UTC)
        except ValueError:
            done[i] = False  # parse_date says why
    return done, out


def numbers(text: pa.ChunkedArray, todo: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Among the rows `todo`: where a plain integer (`-12`) or decimal (`3.50`) was read, and each row's number."""
    integer = todo & _mask(pc.match_substring_regex(text, _INTEGER))
    decimal = todo & ~integer & _mask(pc.match_substring_regex(text, _DECIMAL))
    out: list[Any] = [None] * len(text)
    if integer.any():
        values = pc.cast(pc.filter(text, integer), pa.int64()).to_pylist()
        for i, value in zip(np.flatnonzero(integer), values, strict=True):
            out[i] = value
    if decimal.any():
        values = pc.cast(pc.filter(text, decimal), pa.float64()).to_pylist()
        for i, value in zip(np.flatnonzero(decimal), values, strict=True):
            out[i] = value
    return integer | decimal, out
