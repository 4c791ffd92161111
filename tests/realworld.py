"""Where the real CRM exports are: `../shared/realworld` beside the repository (for a git worktree, beside its
main checkout), or `REALWORLD_DIR` (the mutation check runs the tests from a copy of the tree elsewhere).

The folder is part of the test data: when it is missing, the tests that read it FAIL (the `realworld` fixture),
they never skip, so a run that did not import the samples cannot pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def candidates() -> list[Path]:
    if os.environ.get("REALWORLD_DIR"):  # said where: only there
        return [Path(os.environ["REALWORLD_DIR"])]
    found = [ROOT.parent / "shared" / "realworld"]
    git = ROOT / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text().split(":", 1)[1].strip())
        found.append(gitdir.parents[2].parent / "shared" / "realworld")
    return found


def realworld_dir() -> Path:
    """The folder; the first place looked at when it is nowhere (so that reading it fails loudly)."""
    return next((c for c in candidates() if c.is_dir()), candidates()[0])


REALWORLD = realworld_dir()


@pytest.fixture(scope="session")  # session: set up before the servers, so a run without it fails at once
def realworld() -> Path:
    """The samples' folder; the test fails (not skips) when it is missing."""
    if not REALWORLD.is_dir():
        pytest.fail(
            f"the real CRM exports are missing (looked in {', '.join(map(str, candidates()))}); "
            "they are test data: put ../shared/realworld beside the repository or set REALWORLD_DIR"
        )
    return REALWORLD


#: For the tests that read the samples.
samples = pytest.mark.usefixtures("realworld")
