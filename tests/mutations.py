"""The mutation check: break each guarantee that must never break, one small change at a time, and see a test fail.

    python -m tests.mutations              # every change; exit 1 listing each one that survived
    python -m tests.mutations -k fence     # only the changes whose id contains "fence"
    python -m tests.mutations --list       # the changes, nothing run
    python -m tests.mutations --readme     # the list as tests/README.md gives it
    python -m tests.mutations --jobs 2     # two changes at a time, each in a copy of its own

Each change (tests/mutation_list.py) is one exact snippet of one product file and its replacement, and names a
claim of tests/README.md and the tests of that claim to run (a few of the tests README names for it, or all).
The tracked tree is copied once to a temporary directory; each change is made there, only there, and the named
tests run against that copy (cwd and PYTHONPATH), so the working tree is never touched and Ctrl-C leaves nothing
behind. A change survives when its tests pass; it is killed when they fail (pytest exit 1) or time out. Any other
pytest outcome (no tests collected, a usage or internal error) is an error of the check, reported as such.
Not part of the default test run (it takes tens of minutes on two cores); tests/unit/test_mutation_list.py
checks the list itself in the default run.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "tests" / "README.md"
#: A change whose tests run longer than this is killed by its timeout (it counts as killed, and is said so).
TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str
    original: str
    replacement: str
    #: A unique part of one claim's line in tests/README.md.
    claim: str
    #: Test node ids (path::name) or test files, each named on that claim's line.
    tests: tuple[str, ...]


def claim_line(claim: str, readme: str | None = None) -> str:
    """The one line of tests/README.md holding `claim` (ValueError if none or several)."""
    text = README.read_text(encoding="utf-8") if readme is None else readme
    lines = [line for line in text.splitlines() if line.startswith("- ") and claim in line]
    if len(lines) != 1:
        raise ValueError(f"claim {claim!r} is on {len(lines)} lines of tests/README.md, not one")
    return lines[0]


def named_tests(line: str) -> set[str]:
    """The test ids and test files a README line names (`path::name`, and `path` in "every test of `path`")."""
    return set(re.findall(r"`(tests/[^`]+?\.py(?:::[A-Za-z0-9_]+)?)`", line))


def problems(mutation: Mutation, readme: str | None = None) -> list[str]:
    """What is wrong with a change as written: its snippet not exactly once in its file, a test it names not
    named for its claim in tests/README.md, or not existing."""
    out = []
    path = ROOT / mutation.file
    if not path.is_file():
        return [f"{mutation.id}: no file {mutation.file}"]
    count = path.read_text(encoding="utf-8").count(mutation.original)
    if count != 1:
        out.append(f"{mutation.id}: its original snippet is {count} times in {mutation.file}, not once")
    if mutation.original == mutation.replacement:
        out.append(f"{mutation.id}: the replacement changes nothing")
    try:
        named = named_tests(claim_line(mutation.claim, readme))
    except ValueError as exc:
        return [*out, f"{mutation.id}: {exc}"]
    if not mutation.tests:
        out.append(f"{mutation.id}: names no test")
    for test in mutation.tests:
        file, _, name = test.partition("::")
        if test not in named and file not in named:
            out.append(f"{mutation.id}: {test} is not named for its claim in tests/README.md")
        if not (ROOT / file).is_file():
            out.append(f"{mutation.id}: no test file {file}")
        elif name and not re.search(
            rf"^(async )?def {re.escape(name)}\(", (ROOT / file).read_text(encoding="utf-8"), re.M
        ):
            out.append(f"{mutation.id}: no test {test}")
    return out


def _copy_tree(dest: Path) -> None:
    """The tracked files as they are in the working tree (uncommitted edits included)."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _run_one(tree: Path, mutation: Mutation, log) -> tuple[str, float]:
    """'killed', 'killed (timeout)', 'survived' or 'error: …', and the seconds it took."""
    target = tree / mutation.file
    original = target.read_text(encoding="utf-8")
    target.write_text(original.replace(mutation.original, mutation.replacement, 1), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("REALWORLD_DIR", str(_realworld()))
    for variable in ("REDIS_URL", "MONGODB_URI"):  # each run starts its own servers
        env.pop(variable, None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-n",
        "0",
        "-p",
        "no:cacheprovider",
        "-m",
        "not soak",
        *mutation.tests,
    ]
    started = time.monotonic()
    # Its own process group: a timeout or Ctrl-C interrupts pytest as Ctrl-C would (its fixtures stop the servers
    # they started), and only then kills what is left.
    run = subprocess.Popen(command, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        returncode = run.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        _interrupt(run)
        return "killed (timeout)", time.monotonic() - started
    except KeyboardInterrupt:
        _interrupt(run)
        raise
    finally:
        target.write_text(original, encoding="utf-8")
    took = time.monotonic() - started
    if returncode == 1:
        return "killed", took
    if returncode == 0:
        return "survived", took
    return f"error: pytest exited {returncode}", took


def _interrupt(run: subprocess.Popen) -> None:
    """SIGINT to the test run's process group, then SIGKILL if it has not ended within 30 s."""
    try:
        os.killpg(run.pid, signal.SIGINT)
        run.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    except ProcessLookupError:
        pass


def _realworld() -> Path:
    from tests.realworld import realworld_dir

    return realworld_dir()


def main(argv: list[str] | None = None) -> int:
    from tests.mutation_list import MUTATIONS

    parser = argparse.ArgumentParser(prog="python -m tests.mutations", description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only the changes whose id contains this")
    parser.add_argument("--list", action="store_true", help="list the changes and run nothing")
    parser.add_argument("--log", default=None, help="write every pytest run's output to this file")
    parser.add_argument("--readme", action="store_true", help="print the list as tests/README.md gives it")
    parser.add_argument("--jobs", type=int, default=1, help="changes tried at once, each in its own copy")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k in m.id]
    wrong = [p for m in chosen for p in problems(m)]
    if wrong:
        print("the mutation list is not well formed:", *wrong, sep="\n  ", file=sys.stderr)
        return 2
    if args.readme:
        for m in chosen:
            tests = ", ".join(f"`{t}`" if "::" in t else f"every test of `{t}`" for t in m.tests)
            print(f"- `{m.id}` ({m.file}) → {tests}")
        return 0
    if args.list:
        for m in chosen:
            print(f"{m.id}: {m.file} — {' '.join(m.tests)}")
        return 0
    log = open(args.log, "w", encoding="utf-8") if args.log else None  # noqa: SIM115
    outcomes: dict[str, str] = {}
    started = time.monotonic()
    lock = threading.Lock()
    done = iter(range(1, len(chosen) + 1))
    try:
        with tempfile.TemporaryDirectory(prefix="crm-mutations-") as tmp:
            trees: queue.Queue[Path] = queue.Queue()
            for n in range(max(1, args.jobs)):
                tree = Path(tmp) / f"tree{n}"
                tree.mkdir()
                _copy_tree(tree)
                trees.put(tree)

            def attempt(mutation: Mutation) -> None:
                tree = trees.get()
                try:
                    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
                        outcome, took = _run_one(tree, mutation, out)
                        out.seek(0)
                        text = out.read()
                finally:
                    trees.put(tree)
                with lock:
                    outcomes[mutation.id] = outcome
                    if log is not None:
                        log.write(f"\n===== {mutation.id} =====\n{text}")
                        log.flush()
                    print(f"[{next(done)}/{len(chosen)}] {mutation.id}: {outcome} ({took:.0f} s)", flush=True)

            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                for future in [pool.submit(attempt, m) for m in chosen]:
                    future.result()
    except KeyboardInterrupt:
        print("interrupted: the working tree was never changed", file=sys.stderr)
        return 130
    finally:
        if log is not None:
            log.close()
    survived = [i for i, o in outcomes.items() if o == "survived"]
    errors = [f"{i} ({o})" for i, o in outcomes.items() if o.startswith("error")]
    print(
        f"{len(chosen)} changes, {len(chosen) - len(survived) - len(errors)} killed, {len(survived)} survived, "
        f"{len(errors)} errors, in {time.monotonic() - started:.0f} s"
    )
    for name in survived:
        print(f"SURVIVED: {name}")
    for name in errors:
        print(f"ERROR: {name}")
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main())
