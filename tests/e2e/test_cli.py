"""The `crm-jobs` command: one clear line for a missing setting, tokens for local use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bson import ObjectId

from crm_workers.domain.principal import read_token

CLEAN_ENV = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}


def crm_jobs(*argv, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "crm_jobs.cli", *argv], env={**CLEAN_ENV, **(env or {})},
                          capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("command,env,missing", [
    ("api", {"MONGODB_URI": "mongodb://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1"}, "JWT_SECRET"),
    ("api", {"JWT_SECRET": "x", "REDIS_URL": "redis://127.0.0.1:1"}, "MONGODB_URI"),
    ("worker", {"MONGODB_URI": "mongodb://127.0.0.1:1"}, "REDIS_URL"),
    ("scheduler", {"REDIS_URL": "redis://127.0.0.1:1"}, "MONGODB_URI"),
])
def test_a_process_missing_a_required_setting_stops_with_one_line_naming_it(command, env, missing, tmp_path):
    result = crm_jobs(command, env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"crm-jobs: missing required environment variable {missing}"]


def test_token_prints_a_bearer_token_with_the_claims_asked_for(tmp_path):
    account, uid = str(ObjectId()), str(ObjectId())
    secret = "cli-secret-cli-secret-cli-secret-cli"

    result = crm_jobs("token", "--account", account, "--uid", uid, "--owner", env={"JWT_SECRET": secret},
                      cwd=tmp_path)

    assert result.returncode == 0
    principal = read_token(secret, result.stdout.strip())
    assert (str(principal.account_id), str(principal.uid), principal.is_owner) == (account, uid, True)


def test_token_refuses_an_account_that_is_not_an_id(tmp_path):
    result = crm_jobs("token", "--account", "acme", "--uid", str(ObjectId()), env={"JWT_SECRET": "x"}, cwd=tmp_path)

    assert result.returncode != 0 and "--account must be a 24-hex id" in result.stderr
