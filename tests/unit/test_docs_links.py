"""The README's and the docs' links lead somewhere: every relative link names a file of the repository (and an
anchor of a docs page, where it names one, is one of that page's headings)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor MkDocs' table of contents gives a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text).strip("-")


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]


def _broken(path: Path) -> list[str]:
    broken = []
    for link in _links(path):
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            broken.append(link)
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), flags=re.M)
            if anchor not in {_slug(h) for h in headings}:
                broken.append(link)
    return broken


def test_every_link_of_the_readme_and_the_changelog_resolves():
    for name in ("README.md", "CHANGELOG.md", "tests/README.md", "bench/README.md"):
        assert _broken(ROOT / name) == [], name


def test_every_link_of_the_docs_resolves_and_every_page_is_in_the_nav():
    pages = sorted((ROOT / "docs").glob("*.md"))
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")

    assert {p.name: _broken(p) for p in pages if _broken(p)} == {}
    assert [p.name for p in pages if f": {p.name}" not in nav] == []
    assert len(_links(ROOT / "README.md")) >= 15
