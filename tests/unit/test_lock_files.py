"""The lock files CI and the images install from cover every dependency pyproject.toml declares, pinned with
hashes, at versions inside the declared bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(n) for n in names]


def pinned(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    assert "--hash=sha256:" in text
    return {
        re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)", text, re.M)
    }


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_declared_dependency_is_locked_within_its_bounds():
    for lock, extras in (("requirements.lock", ()), ("requirements-dev.lock", ("dev",))):
        versions = pinned(lock)
        for requirement in declared(*extras):
            version = versions.get(normal(requirement.name))
            assert version, f"{requirement.name} is not in {lock}: refresh it (pyproject.toml says how)"
            assert requirement.specifier.contains(version, prereleases=True), (lock, requirement, version)


def test_the_runtime_lock_and_the_dev_lock_agree():
    runtime, dev = pinned("requirements.lock"), pinned("requirements-dev.lock")

    assert {name: dev.get(name) for name in runtime} == runtime
