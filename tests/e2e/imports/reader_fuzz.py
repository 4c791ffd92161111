"""A seeded generator of hostile import inputs for the reader fuzz (tests/e2e/imports/test_reader_fuzz.py).

Each input is built from a well-formed table (CSV, TSV, XLSX) or connector records (JSON), then mutated the way
files go wrong: bytes flipped, cut, repeated; odd encodings and BOMs; quotes and separators out of place;
headers that are numbers, huge or empty; in XLSX the XML itself (attributes that are no numbers, references that
are no cells, elements with invented names, DTDs, broken tags) and the zip around it; records nested, wide, or of
odd types. The same seed gives the same inputs, so a failure names the input that made it.
"""

from __future__ import annotations

import io
import json
import random
import string
import zipfile
from dataclasses import dataclass

from tests.e2e.imports.test_hostile_files import CONTENT_TYPES, MAIN, RELS, ROOT_RELS, WORKBOOK

HEADERS = [
    "email",
    "first_name",
    "last_name",
    "name",
    "phone",
    "website",
    "company",
    "tags",
    "owner",
    "address.city",
    "E-mail 1 - Value",
    "Phone 2 - Value",
    "Vorname",
    "Nachname",
    "E-Mail-Adresse",
    "expected_close_date",
    "value",
    "currency",
    "stage",
    "pipeline",
    "contact_email",
    "birthday",
    "notes",
]
WEIRD_TOKENS = [
    "",
    "²",
    "zz",
    "-1",
    "0",
    "1e999",
    "NaN",
    "9" * 40,
    "9" * 5000,
    "A1",
    "XFD1048576",
    "AAAA1",
    "\u0660",
    "①",
    "\x00",
    "\ufeff",
    "&amp;",
    "'",
    '"',
    ";",
    "\t",
    "\r\n",
    "=1+1",
    "@SUM(A1)",
    "𝟘𝟙",
    "٣",
    "Ω",
    "\ud7ff",
    "%s",
    "{{x}}",
    "<b>",
    "../../etc/passwd",
]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252", "latin-1", "shift_jis", "cp1251", "utf-32"]


@dataclass
class Input:
    """One generated input: a file (`name`, `content`) or connector records (`records`), with import options."""

    label: str
    name: str = ""
    content: bytes = b""
    records: list | None = None
    options: dict | None = None


def _value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(WEIRD_TOKENS)
    if kind < 0.5:
        return f"{''.join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 8)))}@example.com"
    if kind < 0.6:
        return rng.choice(["2024-05-01", "01/05/2024", "5 Jan 2024", "31.12.1999", "2024-13-45", "0/0/0"])
    if kind < 0.7:
        return rng.choice(["+1 415 555 0100", "(030) 1234567", "0049 30 1234", "12", "+" + "1" * 30])
    alphabet = string.printable + "äöüßéèçñ€中文한글🙂"
    return "".join(rng.choices(alphabet, k=rng.randint(0, 30)))


def _header(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(HEADERS)
    return rng.choice([_value(rng), "E-mail " + "7" * rng.choice([1, 12, 5000]) + " - Value", " " * 3, "custom.x"])


def _table(rng: random.Random) -> list[list[str]]:
    width = rng.choice([1, 2, 3, 5, 8, rng.randint(1, 40)])
    rows = [[_header(rng) for _ in range(width)]]
    for _ in range(rng.randint(0, 30)):
        rows.append([_value(rng) for _ in range(width + rng.choice([0, 0, 0, -1, 1, 5]))])
    if rng.random() < 0.2:
        rows.insert(0, ["Notes:", "exported by a tool"])  # a preamble above the header
    return rows


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not data:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            continue
        op, at = rng.random(), rng.randrange(len(data))
        if op < 0.3:
            data[at] = rng.randrange(256)
        elif op < 0.45:
            del data[at : at + rng.randint(1, 64)]
        elif op < 0.6:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        elif op < 0.7:
            chunk = data[at : at + rng.randint(1, 200)]
            data[at:at] = chunk * rng.randint(2, 50)
        elif op < 0.8:
            data[at:at] = rng.choice(
                [b'"', b'""', b"\r", b"\n", b"\x00", b";", b"\t", b",", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]
            )
        else:
            del data[rng.randrange(len(data)) :]  # cut short
    return bytes(data)


def _delimited(rng: random.Random, delimiter: str) -> tuple[bytes, dict]:
    rows = _table(rng)
    out = io.StringIO()
    for row in rows:
        quoted = [f'"{v}"' if rng.random() < 0.2 else v.replace(delimiter, " ") for v in row]
        out.write(delimiter.join(quoted) + rng.choice(["\n", "\r\n", "\r"]))
    encoding = rng.choice(ENCODINGS)
    content = out.getvalue().encode(encoding, errors="replace")
    options = {"encoding": rng.choice(ENCODINGS)} if rng.random() < 0.2 else {}
    return content, options


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(rng: random.Random, ref: str, value: str) -> str:
    attrs = f' r="{ref}"' if rng.random() < 0.9 else ""
    if rng.random() < 0.15:
        attrs += f' s="{rng.choice(WEIRD_TOKENS[:12])}"'
    kind = rng.random()
    if kind < 0.5:
        return f'<c{attrs} t="inlineStr"><is><t>{_xml_text(value)}</t></is></c>'
    if kind < 0.7:
        return f'<c{attrs} t="s"><v>{rng.choice(["0", "1", "2", "²", "-1", "9" * 30])}</v></c>'
    if kind < 0.85:
        return f"<c{attrs}><v>{rng.choice(['1', '45000.5', '1e308', 'abc', '', '-0', '9' * 400])}</v></c>"
    return f'<c{attrs} t="{rng.choice(["b", "e", "d", "str", "zz"])}"><v>{_xml_text(value)}</v></c>'


def _sheet(rng: random.Random) -> str:
    rows = []
    for n, row in enumerate(_table(rng), start=1):
        number = rng.choice([str(n)] * 8 + WEIRD_TOKENS[:12])
        cols = [_cell(rng, f"{string.ascii_uppercase[i % 26] * (1 + i // 26)}{n}", v) for i, v in enumerate(row)]
        rows.append(f'<row r="{number}">{"".join(cols)}</row>')
    body = "".join(rows)
    if rng.random() < 0.2:  # invented element names (each one new), as in the cache-growth finding
        body += "".join(f"<x{rng.randrange(10**9)}:c/>" for _ in range(rng.randint(1, 300)))
    return f'<?xml version="1.0"?><worksheet {MAIN}><sheetData>{body}</sheetData></worksheet>'


def _xlsx(rng: random.Random) -> bytes:
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "xl/workbook.xml": WORKBOOK,
        "xl/_rels/workbook.xml.rels": RELS,
        "xl/worksheets/sheet1.xml": _sheet(rng),
        "xl/sharedStrings.xml": f"<sst {MAIN}>"
        + "".join(f"<si><t>{_xml_text(_value(rng))}</t></si>" for _ in range(3))
        + "</sst>",
    }
    if rng.random() < 0.5:  # one part's XML mutated as text: tags broken, attributes odd, a DTD
        name = rng.choice(list(parts))
        text = parts[name]
        op = rng.random()
        if op < 0.3:
            text = "<!DOCTYPE x [<!ENTITY a 'aaaa'>]>" + text
        elif op < 0.6:
            cut = rng.randrange(len(text))
            text = text[:cut] + rng.choice(["<", ">", "</c>", "<row>", '"', "&", "\x00", "<c r='²'>"]) + text[cut:]
        else:
            text = text.replace('r="', f'r="{rng.choice(WEIRD_TOKENS[:12])}', 1)
        parts[name] = text
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])) as book:
        for name, text in parts.items():
            if rng.random() < 0.03:
                continue  # a part missing
            book.writestr(name, text.encode("utf-8", "surrogatepass"))
    data = out.getvalue()
    return _mutate_bytes(rng, data) if rng.random() < 0.25 else data


def _record(rng: random.Random, depth: int = 0):
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(
            [_value(rng), rng.randint(-(10**6), 10**6), rng.random(), True, None, [], {}, [_value(rng)], 10**30]
        )
    return {
        (_header(rng) if rng.random() < 0.7 else _value(rng)): _record(rng, depth + 1) for _ in range(rng.randint(1, 5))
    }


def _records(rng: random.Random) -> list:
    shape = rng.random()
    if shape < 0.1:  # every record a key of its own: the quadratic finding
        return [{f"k{i}": "v"} for i in range(rng.randint(900, 1500))]
    records = [_record(rng) for _ in range(rng.randint(1, 30))]
    return [r if isinstance(r, dict) else {"email": r} for r in records]


def generate(count: int, seed: int):
    """`count` inputs from `seed`: a quarter each CSV, TSV, XLSX and connector records."""
    rng = random.Random(seed)
    for i in range(count):
        kind = i % 4
        label = f"seed={seed} input={i}"
        if kind == 0:
            content, options = _delimited(rng, rng.choice([",", ";", "|"]))
            if rng.random() < 0.5:
                content = _mutate_bytes(rng, content)
            yield Input(f"{label} csv", "contacts.csv", content, options=options)
        elif kind == 1:
            content, options = _delimited(rng, "\t")
            if rng.random() < 0.5:
                content = _mutate_bytes(rng, content)
            yield Input(f"{label} tsv", "contacts.tsv", content, options=options)
        elif kind == 2:
            yield Input(f"{label} xlsx", "contacts.xlsx", _xlsx(rng))
        else:
            yield Input(f"{label} records", records=_records(rng))


def body_of(item: Input) -> bytes:
    return json.dumps({"source": {"type": "records", "records": item.records}}, default=str).encode()
