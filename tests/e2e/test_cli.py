"""The `crm-jobs` command: one clear line for a missing setting, tokens for local use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bson import ObjectId

from crm_workers.domain.principal import read_token

# PYTHONPATH: the code under test, not whatever checkout the virtualenv was installed from.
CLEAN_ENV = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
             "PYTHONPATH": os.environ.get("PYTHONPATH", "")}


def crm_jobs(*argv, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "crm_jobs.cli", *argv], env={**CLEAN_ENV, **(env or {})},
                          capture_output=True, text=True, timeout=60, cwd=cwd)


DEPLOYED = {"STORAGE_URL": "s3://crm-files/prod", "PUBLIC_URL": "https://crm.example.com"}


@pytest.mark.parametrize("command,env,missing", [
    ("api", {"MONGODB_URI": "mongodb://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1", **DEPLOYED}, "JWT_SECRET"),
    ("api", {"JWT_SECRET": "x", "REDIS_URL": "redis://127.0.0.1:1", **DEPLOYED}, "MONGODB_URI"),
    ("worker", {"MONGODB_URI": "mongodb://127.0.0.1:1", **DEPLOYED}, "REDIS_URL"),
    ("scheduler", {"REDIS_URL": "redis://127.0.0.1:1"}, "MONGODB_URI"),
])
def test_a_process_missing_a_required_setting_stops_with_one_line_naming_it(command, env, missing, tmp_path):
    result = crm_jobs(command, env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"crm-jobs: missing required environment variable {missing}"]


@pytest.mark.parametrize("command", ["api", "worker"])
def test_the_api_and_worker_refuse_the_dev_defaults_of_storage_and_public_url(command, tmp_path):
    env = {"JWT_SECRET": "x", "MONGODB_URI": "mongodb://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1"}

    result = crm_jobs(command, env=env, cwd=tmp_path)
    storage_only = crm_jobs(command, env={**env, "PUBLIC_URL": "https://crm.example.com"}, cwd=tmp_path)

    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    line = result.stderr.strip()
    assert line.startswith("crm-jobs: missing required environment variables STORAGE_URL, PUBLIC_URL — set ")
    assert "s3://bucket/prefix" in line and "https://crm.example.com" in line
    assert storage_only.stderr.strip().startswith("crm-jobs: missing required environment variable STORAGE_URL — ")


def test_malformed_settings_are_all_named_in_one_line(tmp_path):
    result = crm_jobs("scheduler", env={"SCHEDULER_TICK_SECONDS": "soon", "WEBHOOK_ALLOW_PRIVATE": "maybe"},
                      cwd=tmp_path)

    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "SCHEDULER_TICK_SECONDS" in result.stderr and "WEBHOOK_ALLOW_PRIVATE" in result.stderr


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


def test_import_uploads_a_file_and_watches_the_job_to_its_end(live_api, db, worker, tenant, tmp_path):
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("Col A,Col B\ncli@example.com,Cli\nbroken,Bad\n")
    (tmp_path / "m.json").write_text('{"Col A": "email", "Col B": "first_name"}')
    token = tenant.headers()["Authorization"].removeprefix("Bearer ")
    env = {"CRM_URL": live_api, "CRM_TOKEN": token}

    result = crm_jobs("import", str(csv_file), "--mapping", str(tmp_path / "m.json"), env=env, cwd=tmp_path)
    table = crm_jobs("jobs", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "100.0% 2/2 ok 1 failed 1  completed" in result.stdout and '"created": 1' in result.stdout
    assert db["crm.contacts"].find_one({"account_id": tenant.account_id})["email"] == "cli@example.com"
    assert "contacts.import" in table.stdout and "completed" in table.stdout and "1 of 1" in table.stdout


def test_watch_exits_non_zero_for_a_job_that_did_not_complete_and_errors_are_one_line(live_api, db, tenant,
                                                                                       tmp_path):
    from crm_workers import jobs

    job, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {})
    jobs.request_cancel(db, job)
    env = {"CRM_URL": live_api, "CRM_TOKEN": tenant.headers()["Authorization"].removeprefix("Bearer ")}

    watched = crm_jobs("watch", str(job["_id"]), env=env, cwd=tmp_path)
    missing = crm_jobs("watch", str(ObjectId()), env=env, cwd=tmp_path)

    assert watched.returncode == 1 and "cancelled" in watched.stdout
    assert missing.returncode != 0 and missing.stderr.strip().startswith("crm-jobs: 404 not_found")
