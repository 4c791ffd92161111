"""The chaos soak's world: the system's processes, the local receivers, and the traffic of one account.

Each account's client behaves as a careful one does: every request carries an Idempotency-Key and is sent
again with the same key after a 503 or a refused connection, so an outage never makes a second job.
"""

from __future__ import annotations

import csv
import io
import json
import random
import threading
import time

import requests
from bson import ObjectId

from crm_workers.domain.principal import issue_token
from crm_workers.jobs import now
from tests.http_receiver import LocalServer, Request

FINISHED = ("completed", "failed", "cancelled")
ROWS = 40  # per import: 35 new people, 3 repeated inside the file, 2 bad rows


class WebhookReceiver:
    """Counts deliveries per (event, automation); a repeat is a duplicate delivery."""

    def __init__(self, path: str = "/hook"):
        self.deliveries: dict[tuple | str, int] = {}
        self.lock = threading.Lock()
        self.server = LocalServer(self._answer, path=path)
        self.url = self.server.url

    def key(self, body: dict):
        return body["event_id"], body["automation_id"]

    def _answer(self, request: Request) -> int:
        key = self.key(json.loads(request.body))
        with self.lock:
            self.deliveries[key] = self.deliveries.get(key, 0) + 1
        return 200

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.deliveries.values())


class SocketReceiver(WebhookReceiver):
    """The socket emit service: counts deliveries per notification id."""

    def __init__(self):
        super().__init__(path="")

    def key(self, body: dict):
        return body["data"].get("id")


class Client:
    """The API, as a client that retries through outages with the same Idempotency-Key."""

    def __init__(self, url: str, token: str, stop: threading.Event):
        self.url, self.stop = url, stop
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.retries = 0

    def call(self, method: str, path: str, *, deadline: float = 300, **kwargs) -> requests.Response:
        key = kwargs.pop("key", None)
        headers = {"Idempotency-Key": key} if key else {}
        end = time.monotonic() + deadline
        while True:
            try:
                response = self.session.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
                if response.status_code not in (502, 503, 504):
                    return response
            except requests.RequestException:
                pass
            self.retries += 1
            if time.monotonic() > end:
                raise TimeoutError(f"{method} {path}: no answer through the outage")
            time.sleep(1)

    def job(self, job_id: str, *, deadline: float = 600) -> dict:
        end = time.monotonic() + deadline
        while True:
            job = self.call("GET", f"/v1/crm/jobs/{job_id}").json()
            if job["status"] in FINISHED or time.monotonic() > end:
                return job
            time.sleep(0.5)


class Account:
    """One account's steady mix of jobs, with what each should have done recorded for the final checks."""

    def __init__(self, db, url: str, secret: str, hook_url: str, index: int, stop: threading.Event):
        self.db, self.index, self.stop = db, index, stop
        self.id, self.owner = ObjectId(), ObjectId()
        ts = now()
        db["_accounts"].insert_one(
            {
                "_id": self.id,
                "name": f"chaos {index}",
                "preferences": {"crm_visibility": "everyone", "timezone": "UTC", "currency": "USD"},
            }
        )
        self.pipeline = (
            db["crm.pipelines"]
            .insert_one({"account_id": self.id, "name": "Sales", "currency": "USD", "created_at": ts, "updated_at": ts})
            .inserted_id
        )
        self.stages = (
            db["crm.pipeline.stages"]
            .insert_many(
                [
                    {
                        "account_id": self.id,
                        "pipeline_id": self.pipeline,
                        "name": n,
                        "position": i,
                        "created_at": ts,
                        "updated_at": ts,
                    }
                    for i, n in enumerate(["Lead", "Hot"])
                ]
            )
            .inserted_ids
        )
        self.automation = (
            db["crm.automations"]
            .insert_one(
                {
                    "account_id": self.id,
                    "pipeline_id": self.pipeline,
                    "stage_id": self.stages[1],
                    "trigger": "stage_entered",
                    "enabled": True,
                    "delay_seconds": 0,
                    "created_at": ts,
                    "updated_at": ts,
                    "actions": [
                        {"type": "create_note", "params": {"content": "hot"}},
                        {"type": "webhook", "params": {"url": hook_url}},
                    ],
                }
            )
            .inserted_id
        )
        token = issue_token(secret, account_id=str(self.id), uid=str(self.owner), is_owner=True)
        self.client = Client(url, token, stop)
        self.jobs: list[str] = []  # every job answered 202
        self.imports: list[tuple[str, str]] = []  # (job id, round tag)
        self.undos: list[tuple[str, list[dict], str]] = []  # (undo job id, documents before, round tag)
        self.exports: list[tuple[str, int]] = []
        self.moved_deals: list[ObjectId] = []
        self.reminders: list[ObjectId] = []
        self.errors: list[str] = []
        self.rounds = 0

    def _start(self, method: str, path: str, key: str, **kwargs) -> str | None:
        response = self.client.call(method, path, key=key, **kwargs)
        if response.status_code != 202:
            self.errors.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return None
        self.jobs.append(response.json()["id"])
        return response.json()["id"]

    def _csv(self, tag: str) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["First Name", "Email", "Phone"])
        for i in range(35):
            writer.writerow([f"P{i}", f"{tag}-{i}@chaos.example", f"+1415555{i:04d}"])
        for i in range(3):
            writer.writerow([f"P{i} again", f"{tag}-{i}@chaos.example", ""])  # merged into the first
        writer.writerow(["", "not an email", ""])
        writer.writerow(["Bad", "also@not@valid", ""])
        return out.getvalue().encode()

    def one_round(self) -> None:
        n, tag = self.rounds, f"a{self.index}r{self.rounds}"
        self.rounds += 1
        key = f"chaos-{self.id}-{n}"
        job = self._start(
            "POST",
            "/v1/crm/contacts/import",
            f"{key}-import",
            files={"file": (f"{tag}.csv", self._csv(tag))},
            data={"options": json.dumps({"tags": [tag], "country": "US"})},
        )
        if job is None:
            return
        self.imports.append((job, tag))
        if self.client.job(job)["status"] != "completed":
            return
        export = self._start("POST", "/v1/crm/contacts/export", f"{key}-export", json={"filter": {"tags_any": [tag]}})
        if export:
            self.exports.append((export, 35))
            self.client.job(export)
        if n % 2 == 0:
            before = sorted(
                self.db["crm.contacts"].find({"account_id": self.id, "tags": self._tag_id(tag)}),
                key=lambda d: str(d["_id"]),
            )
            deleted = self._start(
                "POST", "/v1/crm/contacts/bulk-delete", f"{key}-delete", json={"filter": {"tags_any": [tag]}}
            )
            if deleted:
                self.client.job(deleted)
                undo = self._start("POST", f"/v1/crm/jobs/{deleted}/undo", f"{key}-undo")
                if undo:
                    self.undos.append((undo, before, tag))
                    self.client.job(undo)
        self._deals_enter_hot(key)
        self._due_reminders()

    def _tag_id(self, tag: str):
        found = self.db["crm.tags"].find_one({"account_id": self.id, "name": tag})
        return found and found["_id"]

    def _deals_enter_hot(self, key: str) -> None:
        ts = now()
        ids = (
            self.db["crm.deals"]
            .insert_many(
                [
                    {
                        "account_id": self.id,
                        "name": f"deal {i}",
                        "pipeline_id": self.pipeline,
                        "stage_id": self.stages[0],
                        "owner": self.owner,
                        "tags": [],
                        "contacts": [],
                        "status": "open",
                        "created_at": ts,
                        "updated_at": ts,
                    }
                    for i in range(3)
                ]
            )
            .inserted_ids
        )
        moved = self._start(
            "POST",
            "/v1/crm/deals/bulk-update",
            f"{key}-hot",
            json={"ids": [str(i) for i in ids], "set": {"stage_id": str(self.stages[1])}},
        )
        if moved:
            self.moved_deals += ids
            self.client.job(moved)

    def _due_reminders(self) -> None:
        ts = now()
        self.reminders += (
            self.db["crm.reminders"]
            .insert_many(
                [
                    {
                        "account_id": self.id,
                        "title": f"call {i}",
                        "due_at": ts,
                        "assigned_to": [self.owner],
                        "status": "pending",
                        "notified_at": None,
                        "claim_id": None,
                        "created_at": ts,
                        "updated_at": ts,
                    }
                    for i in range(5)
                ]
            )
            .inserted_ids
        )

    def run(self) -> None:
        rnd = random.Random(self.index)
        while not self.stop.is_set():
            try:
                self.one_round()
            except Exception as exc:  # the check at the end says what was lost; keep the traffic going
                self.errors.append(f"round {self.rounds}: {type(exc).__name__}: {exc}")
            self.stop.wait(rnd.uniform(1, 3))
