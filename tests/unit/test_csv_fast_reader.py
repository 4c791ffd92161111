"""pandas' C engine reads a CSV as the csv module does: same rows, same numbers, blank lines and all."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm_workers.adapters import csv_fast
from crm_workers.adapters.limits import MAX_LINE_CHARS, UnreadableFile
from crm_workers.adapters.tabular import TableInfo, _csv_rows, _row_blocks, describe, scan
from crm_workers.domain.blocks import Block, fit

PIECES = [
    "a",
    "Ana",
    " b ",
    "",
    '"',
    '""',
    '"x,y"',
    '"line\nbreak"',
    '"two\n\nbreaks"',
    "0.0.00",
    "0000-00-00",
    "00-00-0000 00:00",
    "10-0",
    "é",
    "日本",
    "'=1+2",
    ";",
    "\t",
    "|",
    " ",
    'x"y',
    '"a""b"',
    "\ufeff",
    "\u2028",
    "\x1c",
    "O'Brien",
    "555-0123",
    '"0.0.00"',
    "\r",
    "\x00",
]


def _cells(draw_cells, delimiter):
    return delimiter.join(draw_cells)


@st.composite
def csv_texts(draw):
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = draw(st.integers(1, 5))
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append("")
        else:
            n = width if kind > 3 else draw(st.integers(1, width + 2))
            lines.append(
                delimiter.join(
                    draw(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), min_size=n, max_size=n))
                )
            )
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending, ending * 2]))
    return text, delimiter


def _read(reader, text, delimiter, width=3):
    """Rows as the import sees them: cut or padded to the header's width (pandas pads to the first line's)."""
    info = TableInfo(format="csv", headers=["h"] * width, encoding="utf-8", delimiter=delimiter)
    data = text.encode("utf-8")
    try:
        blocks = reader(lambda: io.BytesIO(data), info)
        return "rows", [(n, fit(v, width)) for block in blocks for n, v in _numbered(block)]
    except UnreadableFile as exc:
        return "unreadable", exc.code, str(exc)


def _numbered(block):
    return block.numbered() if isinstance(block, Block) else block


def _python_blocks(open_file, info):
    with open_file() as stream:
        yield list(_csv_rows(stream, info))


@settings(
    max_examples=int(os.environ.get("FAST_PATH_EXAMPLES", 500)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(csv_texts(), st.integers(1, 6))
@example(("a,b\n\n1,2\n\n\n3,4\n", ","), 2)
@example(('a,b\n"x\n\ny",2\n,\n""\n', ","), 2)
@example(("a,b\r\n\r\n1,2\r\n", ","), 2)
@example(("0.0.00,b\n1,0000-00-00\n", ","), 2)
def test_the_c_engine_reads_a_csv_as_the_csv_module(case, width):
    text, delimiter = case
    assert _read(_row_blocks, text, delimiter, width) == _read(_python_blocks, text, delimiter, width)


@pytest.mark.parametrize("block_rows", [1, 3])
def test_rows_read_across_many_blocks_keep_their_numbers(monkeypatch, block_rows):
    monkeypatch.setattr(csv_fast, "BLOCK_ROWS", block_rows)
    text = "h1,h2\n" + "".join(f'{i},"v\n{i}"\n' + ("\n" if i % 4 == 0 else "") for i in range(20))
    assert _read(_row_blocks, text, ",") == _read(_python_blocks, text, ",")


@pytest.mark.parametrize("before", [2**18 - 100, 2**17, 2**18 + 5000, 10])
def test_a_line_over_the_cap_across_blocks_is_refused_as_the_csv_module_refuses_it(before):
    """A line over MAX_LINE_CHARS (1,000 cells of 1,100 characters: none over its own limit) that starts in one
    block the guard reads and ends in a later one (the blocks between hold no line end): the csv module refuses
    it (`line_too_long`), so pandas must not read it. Before, the guard measured only the part of a line after
    the last line end it had seen."""
    header = ",".join(["h"] * 1000)
    long_line = ",".join(["z" * 1100] * 1000)
    assert len(long_line) > MAX_LINE_CHARS
    filler = ("y" * 999 + "\n") * (before // 1000) + "y" * (before % 1000 or 1)  # short lines of one cell
    text = header + "\n" + filler + "\n" + long_line + "\na\n"
    expected = _read(_python_blocks, text, ",", 1)
    assert expected[:2] == ("unreadable", "line_too_long")
    assert _read(_row_blocks, text, ",", 1) == expected


def test_the_counting_pass_refuses_a_long_quoted_cell_of_many_short_lines_in_any_column():
    """A quoted cell of 140 lines of 1,000 characters in the second column: over the cell limit, no line over
    any. The counting pass refuses the file before anything is written, as the csv module does (it once read
    the first column alone and counted the rows)."""
    text = "h,i\n" + "a,b\n" * 300 + 'x,"' + ("y" * 1000 + "\n") * 140 + '"\n' + "c,d\n"
    data = text.encode()
    info = describe(lambda: io.BytesIO(data), "f.csv")
    with pytest.raises(UnreadableFile) as refused:
        scan(lambda: io.BytesIO(data), info, None, limit=1000)
    assert refused.value.code == "cell_too_large"
