"""The European Central Bank's exchange-rate files (eurofxref-daily.xml, eurofxref-hist-90d.xml), read.

The shape: `<gesmes:Envelope>…<Cube><Cube time="YYYY-MM-DD"><Cube currency="USD" rate="1.0843"/>…`. Anything
else (an HTML error page, a truncated file, a rate that is not a positive number) is refused as a whole with
EcbFormatError: a half-read file would store a day with currencies missing, and a day is stored only once.
"""

from __future__ import annotations

import math
import re
from datetime import date
from xml.etree import ElementTree

#: The largest file read (bytes): the 90-day file is ~50 KB, the full history ~600 KB.
MAX_BYTES = 4 * 1024 * 1024
_CODE = re.compile(r"^[A-Z]{3}$")


class EcbFormatError(ValueError):
    """The answer is not an ECB rates file."""

    code = "rates_malformed"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_ecb(data: bytes) -> dict[str, dict[str, float]]:
    """{"YYYY-MM-DD": {currency: units per 1 EUR}} for every day of the file (EUR itself included as 1)."""
    if len(data) > MAX_BYTES:
        raise EcbFormatError(f"the file is over {MAX_BYTES} bytes")
    if b"<!DOCTYPE" in data[:2048].upper() or b"<!ENTITY" in data.upper():
        raise EcbFormatError("a document type or entity declaration: not an ECB rates file")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise EcbFormatError(f"not XML: {exc}") from None
    days: dict[str, dict[str, float]] = {}
    for cube in root.iter():
        if _local(cube.tag) != "Cube" or "time" not in cube.attrib:
            continue
        try:
            day = date.fromisoformat(cube.attrib["time"]).isoformat()
        except ValueError:
            raise EcbFormatError(f"a day that is not a date: {cube.attrib['time']!r}") from None
        rates = {"EUR": 1.0}
        for child in cube:
            code, text = child.attrib.get("currency", ""), child.attrib.get("rate", "")
            try:
                rate = float(text)
            except ValueError:
                raise EcbFormatError(f"{day}: rate {text!r} of {code!r} is not a number") from None
            if not _CODE.match(code) or not math.isfinite(rate) or rate <= 0:
                raise EcbFormatError(f"{day}: currency {code!r} rate {text!r} is not a currency and a positive rate")
            rates[code] = rate
        if len(rates) < 2:
            raise EcbFormatError(f"{day}: no rates")
        days[day] = rates
    if not days:
        raise EcbFormatError("no day of rates in the file")
    return days
