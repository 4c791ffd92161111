"""Guessing a text file's encoding from its first bytes: BOMs and UTF-8/UTF-16 for sure, legacy code pages
(Windows-1252, ISO-8859-2, Windows-1251, Shift-JIS…) with charset-normalizer, checked by how clean the
decoded words look. A guess that other encodings would make as well is reported as unsure."""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from charset_normalizer import from_bytes

# Code pages of exports people actually send, most common first: the order breaks ties.
COMMON = (
    "cp1252",
    "iso8859_2",
    "cp1250",
    "cp1251",
    "shift_jis",
    "cp932",
    "euc_jp",
    "gb18030",
    "big5",
    "euc_kr",
    "koi8_r",
    "iso8859_7",
    "cp1253",
    "iso8859_9",
    "cp1254",
    "iso8859_15",
    "cp1257",
    "iso8859_13",
    "iso8859_5",
    "cp1255",
    "cp1256",
    "mac_roman",
)
_WORD = re.compile(r"[^\s,;\t|\"'@.()/\d_-]+")
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "HEBREW", "ARABIC", "HANGUL", "THAI")


@dataclass(frozen=True)
class Guess:
    encoding: str  # a codec name Python knows, as people write it (`windows-1251`, `iso-8859-2`)
    sure: bool


def display_name(codec: str) -> str:
    name = codecs.lookup(codec).name
    if m := re.fullmatch(r"cp(125\d)", name):
        return f"windows-{m.group(1)}"
    if m := re.fullmatch(r"iso8859-(\d+)", name):
        return f"iso-8859-{m.group(1)}"
    return name


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return next((s for s in _SCRIPTS if name.startswith(s)), "CJK" if ch.isalpha() else "OTHER")


def mess(text: str) -> float:
    """The share of non-ASCII words that hold a symbol or mix scripts: `Å‚Ã³` is mess, `Łódź` is not."""
    bad = total = 0
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        total += 1
        odd = any(not (c.isalpha() or unicodedata.category(c).startswith("M")) for c in word if not c.isascii())
        if odd or len({_script(c) for c in word if c.isalpha()}) > 1:
            bad += 1
    return round(bad / total, 2) if total else 0.0


def guess_encoding(sample: bytes) -> Guess:
    """The encoding of a file starting with `sample`."""
    if sample.startswith(codecs.BOM_UTF8):
        return Guess("utf-8-sig", True)
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Guess("utf-16", True)
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
        return Guess("utf-16-le", True)
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4:
        return Guess("utf-16-be", True)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return Guess("utf-8", True)
    except UnicodeDecodeError:
        pass
    if b"\n" in sample[:-1]:
        sample = sample[: sample.rindex(b"\n") + 1]  # no character cut in half at the end
    found = [r.encoding for r in from_bytes(sample)]
    scored = []
    for codec in dict.fromkeys(found + list(COMMON)):
        try:
            text = sample.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        preference = COMMON.index(codec) if codec in COMMON else len(COMMON)
        scored.append((mess(text), codec not in found, preference, codec, text))
    if not scored:
        return Guess("windows-1252", False)
    scored.sort(key=lambda s: s[:3])
    best = scored[0]
    # Of the encodings reading the sample the same way, name the most common one (`José` is windows-1252).
    same = min((s for s in scored if s[4] == best[4]), key=lambda s: s[2])
    rivals = [s for s in scored[1:] if s[0] <= best[0] and s[3] in found and s[4] != best[4]]
    return Guess(display_name(same[3]), not rivals and best[3] in found)


def detect_encoding(sample: bytes) -> str:
    return guess_encoding(sample).encoding
