"""Emails and phone numbers: a fast path for the ordinary ones, the libraries for the rest, same answers.

`email_by_library` and `phone_by_library` are the reference: `email-validator` and `phonenumbers` decide. The
fast paths take only the shapes where the libraries' answer is known without asking them, and ask them
otherwise (tests/unit/test_contact_points_fast_path.py compares both on generated values):

- an email whose local part is RFC 5322 dot-atom (ASCII, or with Latin-1 letters) and whose domain is plain
  ASCII LDH labels: the domain is validated by the library once and remembered (a per-domain cache), the address is then
  `local@domain` lower-cased — what the library normalises it to.
- a phone number in E.164 (`+` and digits, or `00` and digits, with single spaces, dots or dashes between
  groups) or in the national format of the row's country (digits in such groups, the first one may be in
  parentheses): the digits are checked against a per-country table derived from phonenumbers' metadata
  (calling code, possible lengths, international and national prefixes). A number the table cannot settle
  (a national prefix, an international prefix, a leading zero, an unusual length) goes to the library.

Library answers are cached (recent values): a file repeats its domains, companies' switchboards and errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from functools import lru_cache
from typing import Final, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

MULTI_VALUE_SEPARATOR = " ::: "  # Google Contacts: several emails or phones in one cell
_CACHE_SIZE = 4096
_DOMAINS_KEPT = 10_000
EMAIL_MAX_LENGTH = 254  # email-validator's limit; an ASCII address is as long in characters as in bytes

# RFC 5322 atext, and the precomposed Latin-1 letters (é, ü, ß…: already NFC, the library accepts them as they are).
_ATEXT = r"A-Za-z0-9_!#$%&'*+\-/=?^`{|}~\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff"
PLAIN_EMAIL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@([A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)")
_domains: dict[str, str | None] = {}


def first_value(value: object) -> str:
    """The first of Google's ` ::: `-separated values (`a@x.com ::: b@x.com` → `a@x.com`)."""
    return str(value).split(MULTI_VALUE_SEPARATOR, 1)[0].strip()


@lru_cache(maxsize=_CACHE_SIZE)
def email_by_library(text: str) -> str:
    """The address as email-validator normalises it (lower-cased), or ValueError with its reason."""
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address ({exc})") from None


def plain_domains() -> dict[str, str | None]:
    """The domains seen so far: the domain lower-cased when plain, None when the library must look."""
    return _domains


def plain_domain(domain: str) -> str | None:
    """The domain lower-cased when the library accepts it as it is (no IDNA change), else None."""
    known: str | None | Literal[False] = _domains.get(domain, False)
    if known is not False:
        return known
    try:
        normalized = validate_email("a@" + domain, check_deliverability=False).domain
    except EmailNotValidError:
        normalized = None
    answer = normalized if normalized is not None and normalized == domain.lower() else None
    if len(_domains) >= _DOMAINS_KEPT:
        _domains.clear()
    _domains[domain] = answer
    return answer


def plain_email(text: str, domain_ok: Callable[[str], str | None] = plain_domain) -> str | None:
    """The one email check's fast path: `text` lower-cased when it is a plain address (dot-atoms, at most 254
    bytes) of a domain `domain_ok` accepts as it is; None when only the library can say."""
    if (
        (m := PLAIN_EMAIL.fullmatch(text))
        and (len(text) if text.isascii() else len(text.encode())) <= EMAIL_MAX_LENGTH
        and domain_ok(m.group(1))
    ):
        return text.lower()
    return None


def parse_email(value: object) -> str:
    text = first_value(value)
    return plain_email(text) or email_by_library(text)


def _phone_text(value: object) -> str:
    raw = first_value(value)
    return "+" + raw[2:] if raw.startswith("00") else raw


@lru_cache(maxsize=_CACHE_SIZE)
def phone_by_library(raw: str, country: str | None) -> str:
    """E.164 as phonenumbers reads `raw` in `country`, or ValueError with the reason."""
    try:
        number = phonenumbers.parse(raw, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        if not raw.startswith("+") and not country:
            raise ValueError("not a phone number in international form (+…) and no default country") from None
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Digits in groups of single spaces, dots or dashes; a national number's first group may sit in parentheses.
E164_SHAPE = re.compile(r"\+([0-9]+(?:[ .\-][0-9]+)*)")
NATIONAL_SHAPE = re.compile(r"(?:\([0-9]+\) ?|[0-9]+[ .\-])?([0-9]+(?:[ .\-][0-9]+)*)")
_SEPARATORS = str.maketrans("", "", " .-()")
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' bounds on a national number's length


class _Unknown(Enum):
    """Not looked up yet (None in the caches below is an answer)."""

    UNKNOWN = 0


_UNKNOWN: Final = _Unknown.UNKNOWN
#: A calling code's possible national number lengths and its national prefix pattern.
_CodeRules = tuple[frozenset[int], re.Pattern[str] | None]
#: A region's calling code, international and national prefix patterns, and its calling code's rules.
_RegionRules = tuple[str, re.Pattern[str] | None, re.Pattern[str] | None, _CodeRules | None]
_calling_codes: dict[str, _CodeRules | None] = {}
_regions: dict[str | None, _RegionRules | None] = {}
_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def calling_code_rules(code: str) -> _CodeRules | None:
    """For a calling code: the national number lengths phonenumbers calls possible, and its national prefix
    pattern (a number it matches may be read without the prefix: left to the library). None: not a code."""
    rules = _calling_codes.get(code, _UNKNOWN)
    if rules is _UNKNOWN:
        number = int(code)
        region = phonenumbers.region_code_for_country_code(number)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(number, region)
        rules = None
        if metadata is not None:
            lengths = frozenset(
                n
                for n in range(_MIN_NSN, _MAX_NSN + 1)
                if phonenumbers.is_possible_number(
                    phonenumbers.PhoneNumber(country_code=number, national_number=int("1" * n))
                )
            )
            prefix = metadata.national_prefix_for_parsing
            rules = lengths, (re.compile(prefix) if prefix else None)
        _calling_codes[code] = rules
    return rules


def region_rules(region: str | None) -> _RegionRules | None:
    """For a default region: its calling code, international and national prefix patterns, and its calling
    code's rules. None: not a region phonenumbers reads national numbers in."""
    rules = _regions.get(region, _UNKNOWN)
    if rules is _UNKNOWN:
        rules = None
        if region and not region.isdigit() and region.upper() in phonenumbers.SUPPORTED_REGIONS:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
            if metadata is not None:
                idd, prefix, code = (
                    metadata.international_prefix,
                    metadata.national_prefix_for_parsing,
                    str(metadata.country_code),
                )
                rules = (
                    code,
                    re.compile(idd) if idd else None,
                    re.compile(prefix) if prefix else None,
                    calling_code_rules(code),
                )
        if len(_regions) < 1024:  # regions come from options: a hostile caller may not grow this
            _regions[region] = rules
    return rules


def calling_codes() -> frozenset[str]:
    """The calling codes phonenumbers knows (1 to 3 digits)."""
    return _CODES


def _possible(rules: _CodeRules | None, national: str) -> bool:
    return (
        rules is not None
        and national[:1] not in ("", "0")
        and len(national) in rules[0]
        and (rules[1] is None or not rules[1].match(national))
    )


def _fast_international(digits: str) -> str | None:
    if digits[:1] == "0":
        return None
    for size in (1, 2, 3):  # phonenumbers takes the shortest prefix that is a calling code
        if digits[:size] in _CODES:
            return "+" + digits if _possible(calling_code_rules(digits[:size]), digits[size:]) else None
    return None


@lru_cache(maxsize=64)
def phone_reader(country: str | None) -> Callable[[str], str | None]:
    """For numbers read in `country`: E.164 for a stripped cell in one of the fast path's shapes, None when the
    library must read it."""
    rules = region_rules(country) if country else None
    if rules is not None:
        code, idd, prefix, code_rules = rules
        lengths, code_prefix = code_rules if code_rules is not None else ((), None)
    international, national, separators = E164_SHAPE.fullmatch, NATIONAL_SHAPE.fullmatch, _SEPARATORS

    def read(text: str) -> str | None:
        if len(text) > 40:
            return None
        if text[:1] == "+":
            m = international(text)
            return _fast_international(m.group(1).translate(separators)) if m else None
        if text[:2] == "00":
            m = international("+" + text[2:])
            return _fast_international(m.group(1).translate(separators)) if m else None
        if rules is None or not national(text):
            return None
        digits = text.translate(separators)
        if (
            len(digits) < _MIN_NSN + 1
            or digits[0] == "0"
            or len(digits) not in lengths
            or digits.startswith(code)
            or (idd and idd.match(digits))
            or (prefix and prefix.match(digits))
            or (code_prefix and code_prefix.match(digits))
        ):
            return None
        return "+" + code + digits

    return read


def parse_phone(value: object, country: str | None) -> str:
    """E.164, reading numbers without a leading + in `country` (ISO 3166 alpha-2)."""
    raw = _phone_text(value)
    return phone_reader(country)(raw) or phone_by_library(raw, country)


def parse_phone_by_library(value: object, country: str | None) -> str:
    """The reference for parse_phone: the library on every value."""
    return phone_by_library.__wrapped__(_phone_text(value), country)


def parse_email_by_library(value: object) -> str:
    """The reference for parse_email: the library on every value."""
    return email_by_library.__wrapped__(first_value(value))
