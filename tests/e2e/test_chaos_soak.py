"""The chaos soak for two minutes: workers SIGKILLed every ~20 s, Valkey restarted empty, SecantusDB restarted,
three accounts sending jobs meanwhile; nothing lost, nothing duplicated (see bench/chaos_soak.py).

Marked `soak` (not run by default: `python -m pytest -m soak` runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.soak

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1500)
def test_two_minutes_of_chaos_lose_and_duplicate_nothing():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos_soak.py"), "--minutes", "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=1200,
    )

    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "lost 0 duplicated 0" in done.stdout
    assert "valkey restarted empty" in done.stdout and "mongo restarted" in done.stdout
    assert "SIGKILL a worker" in done.stdout
