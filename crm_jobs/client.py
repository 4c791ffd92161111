"""`crm-jobs import | export | jobs | watch`: the API from a terminal (CRM_URL and CRM_TOKEN, or flags)."""

from __future__ import annotations

import json
import os
import sys
import time

import requests

FINISHED = {"completed", "failed", "cancelled"}
BAR_WIDTH = 30


class Client:
    def __init__(self, url: str | None, token: str | None):
        self.url = (url or os.environ.get("CRM_URL") or "http://127.0.0.1:8000").rstrip("/")
        token = token or os.environ.get("CRM_TOKEN")
        if not token:
            sys.exit("crm-jobs: give --token or set CRM_TOKEN (crm-jobs token … prints one)")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, f"{self.url}/v1/crm{path}", timeout=60, **kwargs)
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code >= 400:
            error = body.get("error", {})
            sys.exit(f"crm-jobs: {response.status_code} {error.get('code', '')}: {error.get('message', response.text)}")
        return body


def progress_line(job: dict) -> str:
    p = job.get("progress") or {}
    done = int(BAR_WIDTH * (p.get("percent") or 0) / 100)
    total = p.get("total")
    return (f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {p.get('percent', 0):5.1f}% "
            f"{p.get('processed', 0)}/{total if total is not None else '?'} ok {p.get('succeeded', 0)} "
            f"failed {p.get('failed', 0)}  {job['status']}")


def watch(client: Client, job_id: str, *, interval: float = 1.0, out=sys.stdout) -> dict:
    while True:
        job = client.call("GET", f"/jobs/{job_id}")
        out.write("\r" + progress_line(job))
        out.flush()
        if job["status"] in FINISHED:
            out.write("\n")
            if job.get("error"):
                out.write(f"error: {job['error']['code']}: {job['error']['message']}\n")
            if job.get("result"):
                out.write(json.dumps(job["result"], indent=2, default=str) + "\n")
            return job
        time.sleep(interval)


def jobs_table(client: Client, *, status: str | None, limit: int, out=sys.stdout) -> None:
    params = {"per_page": limit} | ({"status": status} if status else {})
    page = client.call("GET", "/jobs", params=params)
    out.write(f"{'ID':<24}  {'TYPE':<22} {'STATUS':<10} {'PROGRESS':>8}  CREATED\n")
    for job in page["jobs"]:
        out.write(f"{job['id']:<24}  {job['type']:<22} {job['status']:<10} "
                  f"{(job['progress'] or {}).get('percent', 0):>7.1f}%  {job['created_at']}\n")
    out.write(f"{len(page['jobs'])} of {page['total']}\n")


def import_file(client: Client, path: str, *, entity: str, mapping: str | None, options: str | None) -> dict:
    opts = json.loads(options) if options else {}
    if mapping:
        with open(mapping) as f:
            opts["mapping"] = json.load(f)
    with open(path, "rb") as f:
        return client.call("POST", f"/{entity}/import", files={"file": (os.path.basename(path), f)},
                           data={"options": json.dumps(opts)})


def export(client: Client, *, entity: str, filter_json: str | None, fmt: str) -> dict:
    return client.call("POST", f"/{entity}/export", json={"filter": json.loads(filter_json or "{}"), "format": fmt})
