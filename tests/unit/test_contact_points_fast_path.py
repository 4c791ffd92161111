"""The email and phone fast paths give what the libraries give: same value, or the same reason, always."""

from __future__ import annotations

import os

import phonenumbers
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm_workers.domain.contact_points import (
    parse_email,
    parse_email_by_library,
    parse_phone,
    parse_phone_by_library,
)

SETTINGS = settings(
    max_examples=int(os.environ.get("FAST_PATH_EXAMPLES", 600)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
COUNTRIES = st.sampled_from(
    [
        None,
        "US",
        "us",
        "GB",
        "DE",
        "FR",
        "IT",
        "BR",
        "AR",
        "IN",
        "JP",
        "CA",
        "AU",
        "MX",
        "CN",
        "RU",
        "NL",
        "BE",
        "CH",
        "SE",
        "ZZ",
        "",
        "001",
        "XK",
    ]
)
ATEXT = "abcXYZ019_!#$%&'*+-/=?^`{|}~éÉüßÿ×÷ſİ\u0301"
local_parts = st.one_of(
    st.text(alphabet=ATEXT + ".", min_size=1, max_size=70),
    st.from_regex(r"[a-z]{1,10}(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.just('"quoted local"'),
    st.just('"a@b"'),
    st.just("josé"),
    st.just("ü.ser"),
    st.just("a..b"),
    st.text(min_size=0, max_size=12),
)
domains = st.one_of(
    st.from_regex(
        r"[a-zA-Z0-9]([a-zA-Z0-9\-]{0,8}[a-zA-Z0-9])?(\.[a-zA-Z0-9\-]{1,10}){0,3}\.[a-zA-Z]{2,6}", fullmatch=True
    ),
    st.sampled_from(
        [
            "example.com",
            "Example.COM",
            "localhost",
            "test",
            "x.test",
            "a.invalid",
            "b.local",
            "xn--mnchen-3ya.de",
            "münchen.de",
            "ÉXAMPLE.fr",
            "例え.jp",
            "1.2.3.4",
            "[1.2.3.4]",
            "a-.com",
            "-a.com",
            "a..com",
            "a.com.",
            "a.123",
            "a." + "b" * 64 + ".com",
            "a.onion",
            "gmail.com",
            "Mail.Example.co.uk",
            "x.y",
            "a_b.com",
            "example",
            "arpa",
        ]
    ),
    st.text(min_size=0, max_size=20),
)
emails = st.one_of(
    st.builds(lambda lp, d: f"{lp}@{d}", local_parts, domains),
    st.builds(lambda lp, d, pad: f"{pad}{lp}@{d}{pad}", local_parts, domains, st.sampled_from([" ", "\t", "\u00a0"])),
    st.builds(lambda a, b: f"{a} ::: {b}", st.emails(), st.text(max_size=10)),
    st.builds(lambda lp: f"{lp}@{'d' * 60}.{'e' * 60}.{'f' * 60}.com", local_parts),
    st.builds(lambda e: f"={e}", st.emails()),
    st.builds(lambda e: f"Ann <{e}>", st.emails()),
    st.emails(),
    st.text(max_size=40),
)


def outcome(parse, *args):
    try:
        return "ok", parse(*args)
    except ValueError as exc:
        return "error", str(exc)


@SETTINGS
@given(emails)
@example("ANA.1@Example.com")
@example("a" * 64 + "@" + "b" * 185 + ".com")
@example("a" * 65 + "@example.com")
@example("info@EXAMPLE.com")
@example("é" * 127 + "@x.com")
@example("josé.ß@Example.com")
def test_an_email_reads_the_same_by_the_fast_path_and_by_email_validator(value):
    assert outcome(parse_email, value) == outcome(parse_email_by_library, value)


digits = st.text(alphabet="0123456789", min_size=0, max_size=18)
separators = st.sampled_from(["", " ", "-", ".", "  ", "/", "(", ")", " - "])


def _grouped(parts, seps):
    return "".join(p + s for p, s in zip(parts, seps + [""] * len(parts), strict=False))


grouped = st.builds(
    _grouped,
    st.lists(st.text(alphabet="0123456789", min_size=1, max_size=5), min_size=1, max_size=5),
    st.lists(separators, max_size=5),
)
phones = st.one_of(
    grouped,
    st.builds(lambda g: "+" + g, grouped),
    st.builds(lambda g: "00" + g, grouped),
    st.builds(lambda a, g: f"({a}) {g}", st.text(alphabet="0123456789", min_size=1, max_size=4), grouped),
    st.builds(lambda g, x: f"{g} x{x}", grouped, digits),
    st.builds(lambda g, x: f"{g} ext. {x}", grouped, digits),
    st.builds(lambda g: f"tel:+{g}", grouped),
    st.builds(lambda g: f"={g}", grouped),
    st.builds(lambda g: "+" + g + "9" * 30, grouped),
    st.builds(lambda g: f"{g} ::: +1 415 555 0100", grouped),
    st.builds(lambda n: "+" + n, digits),
    st.builds(lambda n: "0" + n, digits),
    st.sampled_from(
        [
            "(415) 555-0123",
            "+44 20 7946 0123",
            "415.555.0123",
            "+1 212 555 0123",
            "555-0123",
            "1-800-FLOWERS",
            "٠١٢٣٤٥٦٧٨٩",
            "+49 (0)30 1234567",
            "011 44 20 7946 0123",
            "+800 1234 5678",
            "+39 06 1234 5678",
            "+54 9 11 1234-5678",
            "0044 20 7946 0123",
            "+1",
            "++1 415 555 0123",
        ]
    ),
    st.text(max_size=25),
)


@SETTINGS
@given(phones, COUNTRIES)
@example("(415) 555-0123", "US")
@example("+44 20 7946 0123", "US")
@example("555-0123", "US")
@example("020 7946 0123", "GB")
@example("06 12345678", "NL")
def test_a_phone_reads_the_same_by_the_fast_path_and_by_phonenumbers(value, country):
    assert outcome(parse_phone, value, country) == outcome(parse_phone_by_library, value, country)


@SETTINGS
@given(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)), st.data())
def test_example_numbers_of_every_region_read_the_same_both_ways(region, data):
    example_number = phonenumbers.example_number(region)
    if example_number is None:
        return
    national = phonenumbers.format_number(example_number, phonenumbers.PhoneNumberFormat.NATIONAL)
    e164 = phonenumbers.format_number(example_number, phonenumbers.PhoneNumberFormat.E164)
    international = phonenumbers.format_number(example_number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    nsn = phonenumbers.national_significant_number(example_number)
    country = data.draw(st.sampled_from([region, "US", "GB", None]))
    for value in (national, e164, international, nsn, nsn[:-1], nsn + "1", e164[:-2]):
        assert outcome(parse_phone, value, country) == outcome(parse_phone_by_library, value, country), value
