"""The API from a terminal or a script (CRM_URL and CRM_TOKEN, or flags): `crm-jobs import | export | jobs |
watch | cancel | retry | undo | errors | warehouse`.

Exit codes, for scripts: 0 done (the job completed), 1 the job failed or was cancelled, or the API refused the
request, 2 usage (bad arguments, no token), 3 the API cannot be reached. Every failure is one line on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time

import requests

FINISHED = {"completed", "failed", "cancelled"}
BAR_WIDTH = 30
OK, JOB_FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3
#: Statuses a proxy or the API answers while it cannot serve at all: as good as unreachable.
UNAVAILABLE = {502, 503, 504}


class ClientError(Exception):
    """Raised when a command cannot do what it was asked; carries its exit code and one line to print."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Client:
    def __init__(self, url: str | None, token: str | None):
        self.url = (url or os.environ.get("CRM_URL") or "http://127.0.0.1:8000").rstrip("/")
        token = token or os.environ.get("CRM_TOKEN")
        if not token:
            raise ClientError("give --token or set CRM_TOKEN (crm-jobs token … prints one)", USAGE)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._etags: dict[str, tuple[str, dict]] = {}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, f"{self.url}/v1/crm{path}", timeout=60, **kwargs)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach the API at {self.url} ({type(exc).__name__})", UNREACHABLE) from None
        if response.status_code >= 400:
            try:
                error = response.json().get("error") or {}
            except ValueError:
                error = {}
            line = f"{response.status_code} {error.get('code', 'error')}: {error.get('message', response.reason)}"
            raise ClientError(line, UNREACHABLE if response.status_code in UNAVAILABLE else JOB_FAILED)
        return response

    def call(self, method: str, path: str, **kwargs) -> dict:
        return self.request(method, path, **kwargs).json()

    def poll(self, path: str) -> dict:
        """GET `path`, answered from the last copy while the API says 304 (its ETag has not changed)."""
        seen = self._etags.get(path)
        headers = {"If-None-Match": seen[0]} if seen else {}
        response = self.request("GET", path, headers=headers)
        if response.status_code == 304 and seen:
            return seen[1]
        body = response.json()
        if response.headers.get("ETag"):
            self._etags[path] = (response.headers["ETag"], body)
        return body


def progress_line(job: dict) -> str:
    p = job.get("progress") or {}
    done = int(BAR_WIDTH * (p.get("percent") or 0) / 100)
    total = p.get("total")
    return (
        f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {p.get('percent', 0):5.1f}% "
        f"{p.get('processed', 0)}/{total if total is not None else '?'} ok {p.get('succeeded', 0)} "
        f"failed {p.get('failed', 0)}  {job['status']}"
    )


def watch(client: Client, job_id: str, *, interval: float = 1.0, out=sys.stdout, as_json: bool = False) -> dict:
    """Follow a job to its end: a live bar on a terminal, a plain line per change elsewhere (logs, pipes), or
    with `as_json` only the finished job as JSON."""
    live = out.isatty() and not as_json
    last = None
    while True:
        job = client.poll(f"/jobs/{job_id}")
        line = progress_line(job)
        if live:
            out.write("\r" + line)
        elif not as_json and line != last:
            out.write(line + "\n")
        out.flush()
        last = line
        if job["status"] in FINISHED:
            break
        time.sleep(interval)
    if as_json:
        out.write(json.dumps(job, default=str) + "\n")
        return job
    if live:
        out.write("\n")
    if job.get("error"):
        out.write(f"error: {job['error']['code']}: {job['error']['message']}\n")
    if job.get("result") and job.get("type", "").endswith(".import"):
        out.write(import_summary(job))
    elif job.get("result"):
        out.write(json.dumps(job["result"], indent=2, default=str) + "\n")
    return job


SUMMARY_WARNINGS = 5


def import_summary(job: dict) -> str:
    """An import's end in a few lines: its counts, the rows imported with a value left out, the first warnings,
    and the command that hands back the rows to look at (the full result: --json)."""
    result, job_id = job["result"], job["id"]
    counts = result.get("counts") or {}
    lines = [
        f"{result.get('rows', 0)} rows: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("created", "updated", "skipped", "failed"))
        + (f" ({result['unchanged']} already up to date)" if result.get("unchanged") else "")
    ]
    if warned := result.get("rows_with_warnings"):
        lines.append(f"{warned} rows imported with a value left out (rows_with_warnings)")
    if ignored := result.get("ignored_columns"):
        lines.append(
            f"{len(ignored)} columns not imported: " + ", ".join(ignored[:8]) + (", …" if len(ignored) > 8 else "")
        )
    warnings = result.get("warnings") or []
    for warning in warnings[:SUMMARY_WARNINGS]:
        lines.append(f"warning: {warning}")
    if len(warnings) > SUMMARY_WARNINGS:
        lines.append(f"… and {len(warnings) - SUMMARY_WARNINGS} more warnings")
    if counts.get("failed") or counts.get("skipped") or warned:
        what = "the failed rows" if counts.get("failed") or counts.get("skipped") else "the rows with warnings"
        lines.append(f"{what}, to fix and import again: crm-jobs errors {job_id} --output {job_id}-errors.csv")
    lines.append(f"the full result: crm-jobs watch {job_id} --json")
    return "\n".join(lines) + "\n"


def exit_code(job: dict) -> int:
    return OK if job["status"] == "completed" else JOB_FAILED


def jobs_page(
    client: Client, *, status: str | None, job_type: str | None, account: str | None, limit: int, after: str | None
) -> dict:
    params = {"per_page": limit, "status": status, "type": job_type, "account_id": account, "after": after}
    return client.call("GET", "/jobs", params={k: v for k, v in params.items() if v is not None})


def jobs_table(page: dict, *, out=sys.stdout) -> None:
    account = len({j.get("account_id") for j in page["jobs"]}) > 1  # a service token's listing
    out.write(f"{'ID':<24}  {'TYPE':<22} {'STATUS':<10} {'PROGRESS':>8}  CREATED{'  ACCOUNT' if account else ''}\n")
    for job in page["jobs"]:
        out.write(
            f"{job['id']:<24}  {job['type']:<22} {job['status']:<10} "
            f"{(job['progress'] or {}).get('percent', 0):>7.1f}%  {job['created_at']}"
            f"{'  ' + job['account_id'] if account else ''}\n"
        )
    total = page["total"] if page.get("total") is not None else "?"
    more = f" (more: --after {page['next_after']})" if page.get("next_after") else ""
    out.write(f"{len(page['jobs'])} of {total}{more}\n")


def warehouse_table(runs: list[dict], *, out=sys.stdout) -> None:
    """The warehouse feed's runs, newest first: status, window end, rows, deletes, values of unexpected shape."""
    out.write(f"{'RUN':<24}  {'STATUS':<10} {'TO':<24} {'ROWS':>9} {'DELETED':>8} {'UNEXPECTED':>10}  CREATED\n")
    for run in runs:
        unexpected = sum(c["unexpected"] for c in (run.get("collections") or {}).values())
        written = run.get("to") is not None
        out.write(
            f"{run['id']:<24}  {run['status']:<10} {run.get('to') or '-':<24} "
            f"{run['rows'] if written else '-':>9} {run['deleted'] if written else '-':>8} "
            f"{unexpected if written else '-':>10}  {run['created_at']}\n"
        )
    out.write(f"{len(runs)} runs\n")


def import_file(client: Client, path: str, *, entity: str, mapping: str | None, options: str | None) -> dict:
    opts = _json_arg(options, "--options") or {}
    if mapping:
        try:
            with open(mapping) as f:
                opts["mapping"] = json.load(f)
        except (OSError, ValueError) as exc:
            raise ClientError(f"--mapping: {exc}", USAGE) from None
    try:
        with open(path, "rb") as f:
            return client.call(
                "POST",
                f"/{entity}/import",
                files={"file": (os.path.basename(path), f)},
                data={"options": json.dumps(opts)},
            )
    except OSError as exc:
        raise ClientError(f"{path}: {exc.strerror}", USAGE) from None


def export(client: Client, *, entity: str, filter_json: str | None, fmt: str) -> dict:
    body = {"filter": _json_arg(filter_json, "--filter") or {}, "format": fmt}
    return client.call("POST", f"/{entity}/export", json=body)


def error_rows(client: Client, job_id: str) -> str:
    """The failed rows of an import, as the CSV the API serves."""
    return client.request("GET", f"/jobs/{job_id}/errors").content.decode("utf-8-sig")


def csv_as_records(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _json_arg(raw: str | None, flag: str):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ClientError(f"{flag} is not valid JSON ({exc})", USAGE) from None
