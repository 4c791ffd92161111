"""tests/README.md lists every claim of the README beside its tests: each test it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
WHOLE_FILE = re.compile(r"every test of `(tests/[\w/]+\.py)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_test_the_claims_index_names_exists():
    index = (ROOT / "tests" / "README.md").read_text()
    named = REFERENCE.findall(index)
    missing = [
        f"{path}::{name}" for path, name in named if not (ROOT / path).exists() or name not in _tests_in(ROOT / path)
    ]
    missing += [path for path in WHOLE_FILE.findall(index) if not _tests_in(ROOT / path)]

    assert len(named) > 200
    assert missing == []


def test_every_claim_line_names_a_test():
    lines = [line for line in (ROOT / "tests" / "README.md").read_text().splitlines() if line.startswith("- ")]
    claims = [line for line in lines if " → " in line]

    assert [line for line in claims if not (REFERENCE.search(line) or WHOLE_FILE.search(line))] == []
