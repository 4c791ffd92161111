"""The real CRM exports are test data: a run without them fails, it never skips them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_without_the_real_exports_their_tests_fail_instead_of_skipping(tmp_path):
    env = {**os.environ, "REALWORLD_DIR": str(tmp_path / "absent"), "PYTHONPATH": str(ROOT)}
    test = "tests/e2e/imports/test_realworld_files.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", "-rfs", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stdout[-2000:]
    assert "the real CRM exports are missing" in done.stdout and " skipped" not in done.stdout
