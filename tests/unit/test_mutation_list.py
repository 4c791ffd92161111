"""The mutation check's list (tests/mutation_list.py) cannot rot: each change still finds its snippet exactly once,
names tests that exist and that tests/README.md names for its claim, and is listed in tests/README.md."""

from __future__ import annotations

import re

from tests.mutation_list import MUTATIONS
from tests.mutations import README, Mutation, named_tests, problems


def test_every_change_finds_its_snippet_once_and_names_tests_of_its_claim_that_exist():
    assert len(MUTATIONS) >= 40
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)  # ids are unique
    assert [p for m in MUTATIONS for p in problems(m)] == []


def test_every_change_is_listed_in_the_tests_readme():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The mutation check") :]
    listed = set(re.findall(r"^- `([a-z0-9-]+)`", section, re.M))
    assert listed == {m.id for m in MUTATIONS}


def test_the_checks_own_checks_catch_a_rotten_change():
    line = "- a claim → `tests/unit/test_rules.py::test_search_text_is_escaped_never_a_pattern`"
    assert named_tests(line) == {"tests/unit/test_rules.py::test_search_text_is_escaped_never_a_pattern"}
    rotten = Mutation(
        "rotten",
        "crm_workers/domain/cells.py",
        "no such snippet",
        "x",
        "a claim",
        ("tests/unit/test_rules.py::test_no_such_test",),
    )
    found = problems(rotten, readme=line)
    assert any("0 times" in p for p in found) and any("not named for its claim" in p for p in found)
    assert any("no test tests/unit/test_rules.py::test_no_such_test" in p for p in found)
