"""The `crm-jobs` command: one clear line for a missing setting, tokens for local use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest
import requests
from bson import ObjectId

from crm_workers.domain.principal import Service, read_token
from crm_workers.jobs import now
from tests.http_receiver import LocalServer

# PYTHONPATH: the code under test, not whatever checkout the virtualenv was installed from.
CLEAN_ENV = {
    "PATH": os.environ.get("PATH", ""),
    "HOME": os.environ.get("HOME", "/tmp"),
    "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
}


def crm_jobs(*argv, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "crm_jobs.cli", *argv],
        env={**CLEAN_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


DEPLOYED = {"STORAGE_URL": "s3://crm-files/prod", "PUBLIC_URL": "https://crm.example.com"}


@pytest.mark.parametrize(
    "command,env,missing",
    [
        ("api", {"MONGODB_URI": "mongodb://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1", **DEPLOYED}, "JWT_SECRET"),
        ("api", {"JWT_SECRET": "x", "REDIS_URL": "redis://127.0.0.1:1", **DEPLOYED}, "MONGODB_URI"),
        ("worker", {"MONGODB_URI": "mongodb://127.0.0.1:1", **DEPLOYED}, "REDIS_URL"),
        ("scheduler", {"REDIS_URL": "redis://127.0.0.1:1"}, "MONGODB_URI"),
    ],
)
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
    result = crm_jobs(
        "scheduler", env={"SCHEDULER_TICK_SECONDS": "soon", "WEBHOOK_ALLOW_PRIVATE": "maybe"}, cwd=tmp_path
    )

    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "SCHEDULER_TICK_SECONDS" in result.stderr and "WEBHOOK_ALLOW_PRIVATE" in result.stderr


def test_token_prints_a_bearer_token_with_the_claims_asked_for(tmp_path):
    account, uid = str(ObjectId()), str(ObjectId())
    secret = "cli-secret-cli-secret-cli-secret-cli"

    result = crm_jobs("token", "--account", account, "--uid", uid, "--owner", env={"JWT_SECRET": secret}, cwd=tmp_path)

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
    assert "100.0% 2/2 ok 1 failed 1  completed" in result.stdout
    assert "2 rows: 1 created, 0 updated, 0 skipped, 1 failed" in result.stdout
    job_id = result.stdout.split()[1]
    assert f"crm-jobs errors {job_id} --output {job_id}-errors.csv" in result.stdout
    assert '"mapping"' not in result.stdout and len(result.stdout.splitlines()) < 12  # a summary, not the JSON
    assert db["crm.contacts"].find_one({"account_id": tenant.account_id})["email"] == "cli@example.com"
    assert "contacts.import" in table.stdout and "completed" in table.stdout and "1 of 1" in table.stdout


def test_an_import_ends_with_a_summary_of_counts_warnings_and_the_errors_command_and_json_gives_it_all(
    live_api, db, worker, tenant, tmp_path
):
    (tmp_path / "p.csv").write_text(
        "Email,Phone,OwnerId\na@example.com,12,005Ec000004oBPNIA2\nb@example.com,+1 415 555 0134,005Ec000004oBPNIA3\n"
    )
    env = env_for(live_api, tenant)

    plain = crm_jobs("import", str(tmp_path / "p.csv"), env=env, cwd=tmp_path)
    as_json = crm_jobs("import", str(tmp_path / "p.csv"), "--json", env=env, cwd=tmp_path)

    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    job_id = lines[0].split()[1]
    assert "2 rows: 2 created, 0 updated, 0 skipped, 0 failed" in lines
    assert "1 rows imported with a value left out (rows_with_warnings)" in lines
    assert "warning: `OwnerId` values are not user ids: left unmatched" in lines
    assert (
        f"the rows with warnings, to fix and import again: crm-jobs errors {job_id} --output "
        f"{job_id}-errors.csv" in lines
    )
    assert len(lines) < 12
    full = json.loads(as_json.stdout)
    assert full["result"]["rows_with_warnings"] == 1 and "matches" in full["result"]


def test_watch_exits_1_for_a_job_that_did_not_complete_and_errors_are_one_line(live_api, db, tenant, tmp_path):
    from crm_workers import jobs

    job, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {})
    jobs.request_cancel(db, job)
    env = {"CRM_URL": live_api, "CRM_TOKEN": tenant.headers()["Authorization"].removeprefix("Bearer ")}

    watched = crm_jobs("watch", str(job["_id"]), env=env, cwd=tmp_path)
    missing = crm_jobs("watch", str(ObjectId()), env=env, cwd=tmp_path)

    assert watched.returncode == 1 and "cancelled" in watched.stdout
    assert missing.returncode == 1 and missing.stderr.strip().startswith("crm-jobs: 404 not_found")
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_an_api_answering_502_503_or_504_exits_3_in_one_line(status, tmp_path):
    # A proxy in front of the API answering that it cannot serve: as good as unreachable (3), not a failed job (1).
    body = b'{"error": {"code": "unavailable", "message": "try later"}}'
    server = LocalServer(lambda request: (status, {"Content-Type": "application/json"}, body))
    try:
        env = {"CRM_URL": server.url, "CRM_TOKEN": "any"}
        listed = crm_jobs("jobs", env=env, cwd=tmp_path)
        watched = crm_jobs("watch", str(ObjectId()), env=env, cwd=tmp_path)
    finally:
        server.stop()

    for result in (listed, watched):
        assert result.returncode == 3, (result.returncode, result.stderr)
        assert result.stderr.strip().splitlines() == [f"crm-jobs: {status} unavailable: try later"]


def test_token_service_prints_a_service_token_and_json_on_request(tmp_path):
    secret = "cli-secret-cli-secret-cli-secret-cli"

    result = crm_jobs(
        "token", "--service", "--name", "queue-manager", "--json", env={"JWT_SECRET": secret}, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert read_token(secret, json.loads(result.stdout)["token"]) == Service("queue-manager")


# ------------------------------------------------------------------ exit codes and --json against a live API


def env_for(live_api, tenant, **headers) -> dict:
    return {"CRM_URL": live_api, "CRM_TOKEN": tenant.headers(**headers)["Authorization"].removeprefix("Bearer ")}


def test_a_failed_import_exits_1_with_its_error_and_json_says_why(live_api, db, worker, tenant, tmp_path):
    (tmp_path / "nothing.csv").write_text("Colour,Mood\nblue,calm\n")  # no column matches an import target

    plain = crm_jobs("import", str(tmp_path / "nothing.csv"), env=env_for(live_api, tenant), cwd=tmp_path)
    as_json = crm_jobs("import", str(tmp_path / "nothing.csv"), "--json", env=env_for(live_api, tenant), cwd=tmp_path)

    assert plain.returncode == 1 and "error: nothing_to_import" in plain.stdout
    assert as_json.returncode == 1
    job = json.loads(as_json.stdout)  # one JSON document, no progress lines
    assert job["status"] == "failed" and job["error"]["code"] == "nothing_to_import"
    assert db["queues"].find_one({"_id": ObjectId(job["id"])})["status"] == "failed"


def test_usage_errors_exit_2_and_an_unreachable_api_exits_3_each_in_one_line(live_api, tenant, tmp_path):
    env = env_for(live_api, tenant)

    bad_flag = crm_jobs("jobs", "--bogus", env=env, cwd=tmp_path)
    bad_json = crm_jobs("export", "--filter", "{nope", env=env, cwd=tmp_path)
    no_token = crm_jobs("jobs", env={"CRM_URL": live_api}, cwd=tmp_path)
    no_file = crm_jobs("import", str(tmp_path / "absent.csv"), env=env, cwd=tmp_path)
    unreachable = crm_jobs("jobs", env={**env, "CRM_URL": "http://127.0.0.1:9"}, cwd=tmp_path)

    for result in (bad_flag, bad_json, no_token, no_file):
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert unreachable.returncode == 3
    assert unreachable.stderr.strip().splitlines() == [
        "crm-jobs: cannot reach the API at http://127.0.0.1:9 (ConnectionError)"
    ]


def test_cancel_retry_undo_and_errors_from_the_command_line(live_api, client, db, worker, tenant, tmp_path):
    from crm_workers import jobs

    env = env_for(live_api, tenant)
    waiting, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {}, created_by=tenant.owner_uid)
    cancelled = crm_jobs("cancel", str(waiting["_id"]), "--json", env=env, cwd=tmp_path)
    (tmp_path / "p.csv").write_text("email,first_name\nok@example.com,Ok\nnot-an-email,Bad\n")
    imported = json.loads(crm_jobs("import", str(tmp_path / "p.csv"), "--json", env=env, cwd=tmp_path).stdout)
    errors = crm_jobs("errors", imported["id"], "--json", env=env, cwd=tmp_path)
    errors_csv = crm_jobs("errors", imported["id"], "-o", str(tmp_path / "e.csv"), env=env, cwd=tmp_path)
    undone = crm_jobs("undo", imported["id"], "--json", env=env, cwd=tmp_path)
    again = crm_jobs("retry", imported["id"], env=env, cwd=tmp_path)  # completed: not retryable

    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["status"] == "cancelled"
    assert db["queues"].find_one({"_id": waiting["_id"]})["status"] == "cancelled"
    assert errors.returncode == 0
    rows = json.loads(errors.stdout)
    assert [r["email"] for r in rows] == ["not-an-email"] and rows[0]["error"]
    assert "not-an-email" in (tmp_path / "e.csv").read_text(encoding="utf-8-sig") and errors_csv.returncode == 0
    assert undone.returncode == 0 and json.loads(undone.stdout)["status"] == "completed"
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id}) == 0
    assert again.returncode == 1 and again.stderr.startswith("crm-jobs: 409 invalid_transition")


def test_a_failed_job_retried_from_the_command_line_exits_0_once_it_completes(live_api, db, worker, tenant, tmp_path):
    from crm_workers import jobs
    from tests.e2e.mass.test_tags_delete import make_tag

    tag = make_tag(db, tenant.account_id, "Retry me")
    job, _ = jobs.create_job(
        db, tenant.account_id, "tags.delete", {"tag_id": str(tag), "name": "Retry me"}, created_by=tenant.owner_uid
    )
    db["queues"].update_one({"_id": job["_id"]}, {"$set": {"status": "failed"}})

    retried = crm_jobs("retry", str(job["_id"]), env=env_for(live_api, tenant), cwd=tmp_path)

    assert retried.returncode == 0, retried.stderr
    assert "completed" in retried.stdout and db["crm.tags"].find_one({"_id": tag}) is None


def test_jobs_json_pages_by_cursor(live_api, db, tenant, tmp_path):
    from crm_workers import jobs

    made = [str(jobs.create_job(db, tenant.account_id, "tags.delete", {})[0]["_id"]) for _ in range(3)]
    env = env_for(live_api, tenant)

    first = json.loads(crm_jobs("jobs", "--json", "--limit", "2", env=env, cwd=tmp_path).stdout)
    rest = json.loads(
        crm_jobs("jobs", "--json", "--limit", "2", "--after", first["next_after"], env=env, cwd=tmp_path).stdout
    )
    table = crm_jobs("jobs", "--limit", "2", env=env, cwd=tmp_path)

    assert [j["id"] for j in first["jobs"] + rest["jobs"]] == made[::-1] and rest["next_after"] is None
    assert f"2 of 3 (more: --after {first['next_after']})" in table.stdout


def test_progress_is_plain_lines_in_a_pipe_and_a_live_bar_on_a_terminal(live_api, db, tenant, tmp_path):
    import pty

    from crm_workers import jobs

    job, _ = jobs.create_job(db, tenant.account_id, "tags.delete", {})
    jobs.request_cancel(db, job)
    argv = [sys.executable, "-m", "crm_jobs", "watch", str(job["_id"])]
    env = {**CLEAN_ENV, **env_for(live_api, tenant)}

    piped = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    leader, follower = pty.openpty()
    on_tty = subprocess.run(argv, env=env, stdout=follower, stderr=subprocess.DEVNULL, timeout=60, cwd=tmp_path)
    os.close(follower)
    screen = os.read(leader, 65536).decode()
    os.close(leader)

    assert piped.returncode == on_tty.returncode == 1
    assert "\r" not in piped.stdout and piped.stdout.splitlines()[0].endswith("cancelled")
    assert screen.startswith("\r[") and "cancelled" in screen


def test_python_m_crm_jobs_is_the_command_and_tells_its_version(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "crm_jobs", "--version"],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )

    assert result.returncode == 0 and result.stdout.startswith("crm-jobs ")


def test_export_from_the_command_line_watches_the_job_and_prints_its_download_link(
    live_api, db, worker, tenant, tmp_path
):
    ts = now()
    db["crm.contacts"].insert_many(
        [
            {
                "account_id": tenant.account_id,
                "type": "person",
                "first_name": name,
                "email": f"{name.lower()}@example.com",
                "tags": [],
                "created_at": ts,
                "updated_at": ts,
            }
            for name in ("Ann", "Bob")
        ]
    )
    env = env_for(live_api, tenant)

    plain = crm_jobs("export", "--filter", '{"q": "ann"}', env=env, cwd=tmp_path)
    as_json = crm_jobs("export", "--format", "xlsx", "--json", env=env, cwd=tmp_path)
    bad = crm_jobs("export", "--filter", "{not json", env=env, cwd=tmp_path)

    assert plain.returncode == 0, plain.stderr
    [csv_job] = [
        j
        for j in db["queues"].find({"account_id": tenant.account_id, "type": "contacts.export"})
        if j["params"].get("format", "csv") == "csv"
    ]
    link = csv_job["result"]["download_url"]
    assert link in plain.stdout and csv_job["result"]["rows"] == 1
    parsed = urlparse(link)
    data = requests.get(f"{live_api}{parsed.path}?{parsed.query}", timeout=10).content.decode("utf-8-sig")
    assert "ann@example.com" in data and "bob@example.com" not in data  # the filter reached the job
    assert as_json.returncode == 0, as_json.stderr
    job = json.loads(as_json.stdout)
    assert job["status"] == "completed" and job["result"]["format"] == "xlsx" and job["result"]["rows"] == 2
    assert bad.returncode == 2 and bad.stderr.strip().startswith("crm-jobs: --filter is not valid JSON")


def test_api_without_port_listens_on_the_port_setting(settings, tmp_path):
    import signal

    from crm_jobs.servers import free_port
    from tests.conftest import wait_for
    from tests.e2e.process_tree import crm_jobs_process, tail

    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URI": settings.mongodb_uri,
        "MONGODB_DB": settings.mongodb_db,
        "REDIS_URL": settings.redis_url,
        "REDIS_NAMESPACE": settings.redis_namespace,
        "JWT_SECRET": "x" * 32,
        "STORAGE_URL": settings.storage_url,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
    }
    log = tmp_path / "api.log"
    api = crm_jobs_process(["api", "--host", "127.0.0.1", "--workers", "1"], env=env, log=log)
    try:

        def healthy():
            assert api.poll() is None, tail(log)
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a busy machine
                return False

        wait_for(healthy, timeout=60, interval=0.2, what=f"the API on PORT {port}")
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(timeout=30)
