"""Tenancy property test: generated requests to every job-creating endpoint whose ids, filters, keys and files
point at another user's and another account's records. After each one, nothing outside what the caller may
touch has changed, and no answer, exported file or errors file carries a record the caller may not see.

Two accounts under owner_only, each with an owner and a user. The caller is A's user (who may touch only
what they own in A) or A's owner aiming at B (who may touch nothing of B). `CRM_FUZZ_REQUESTS` sets how many
requests the soak run (`pytest -m soak`) sends (default 2,000); the quick run sends 150. It prints how many it tried.
It also names others' stored files (previews, exports, attachments, folders), exports records
linked to ones only A's owner sees, triggers with event ids others used, and reads jobs as a service token (one
request in ten: never a download link, a storage key or a marked record).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import uuid

import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters.storage import storage_from_settings
from tests.conftest import wait_for_job
from tests.e2e.tenancy_world import Side, digest, freeze

MARKER = re.compile(
    r"\b([AB])-(owner|user|tag\d|owner-biz|user-biz|owner-deal|user-deal|note|reminder|file|autotag)"
    r"-[0-9a-f]{8}",
    re.IGNORECASE,
)
HEX = re.compile(r"\b[0-9a-f]{24}\b")


class Fuzz:
    def __init__(self, client, db, settings, seed: int):
        self.client, self.db, self.rnd = client, db, random.Random(seed)
        store = storage_from_settings(settings)
        self.store = store
        self.a, self.b = Side(db, store, label="A"), Side(db, store, label="B")
        self._foreign_jobs()
        self._foreign_files_links_and_events()
        self._settle()
        freeze(db, self.a)
        freeze(db, self.b)
        self.tried, self.crossings, self.server_errors, self.statuses, self.said = 0, [], [], {}, []
        self.baseline_b = digest(db, self.b, whole=True, caller_ids=set())
        self.baseline_a = self.digest_a()

    def _foreign_jobs(self):
        """Jobs of B and of A's owner: a completed bulk delete (undoable), a failed and a queued one."""
        for side in (self.a, self.b):
            t = side.tenant
            response = self.client.post(
                "/v1/crm/contacts/bulk-delete", json={"ids": [str(side.ids["owner"][-1])]}, headers=t.headers()
            )
            wait_for_job(self.db, response.get_json()["id"])
            failed, _ = jobs.create_job(self.db, t.account_id, "contacts.export", {}, created_by=t.owner_uid)
            self.db["queues"].update_one({"_id": failed["_id"]}, {"$set": {"status": "failed"}})
            side.ids["owner"].pop()

    def _foreign_files_links_and_events(self):
        """Stored files of others (B's and A's owner's previews, an export, an attachment), links from the
        caller's records to records only A's owner may see, and event ids others used."""
        self.foreign_keys = []
        for side in (self.a, self.b):
            t = side.tenant
            csv = f"email,first_name\n{side.marker('owner').lower()}@example.com,{side.marker('owner')}\n".encode()
            shown = self.client.post(
                "/v1/crm/contacts/import/preview",
                data={"file": (io.BytesIO(csv), "c.csv")},
                content_type="multipart/form-data",
                headers=t.headers(),
            ).get_json()
            key = shown["source"]["key"]
            self.foreign_keys += [key, key.rsplit("/", 1)[0], side.attachment]
            export = self.client.post("/v1/crm/contacts/export", json={}, headers=t.headers()).get_json()["id"]
            self.foreign_keys.append(wait_for_job(self.db, export)["result"]["file_key"])
            for deal in side.ids["deals_owner"][:1]:
                self.client.post(
                    "/v1/crm/automations/trigger",
                    json={"deal_id": str(deal), "stage_id": str(side.stages[0]), "event_id": "shared-event"},
                    headers=t.headers(),
                )
        a = self.a
        # The caller's own records linked to what only A's owner may see: an export must not show the links.
        self.db["crm.contacts"].update_many(
            {"_id": {"$in": a.ids["user"][1:]}}, {"$push": {"businesses": a.ids["owner"][0]}}
        )
        self.db["crm.deals"].update_many(
            {"_id": {"$in": a.ids["deals_user"]}},
            {
                "$set": {"business_id": a.ids["owner"][0]},
                "$push": {"contacts": {"$each": [a.ids["owner"][1]], "$position": 0}},
            },
        )

    def _settle(self):
        """Every job the set-up started (the triggered automation runs too) ended, its end's after-work done:
        a baseline taken before would see them change B on their own, and blame the next request."""
        from tests.conftest import wait_for

        accounts = [self.a.tenant.account_id, self.b.tenant.account_id]
        wait_for(
            lambda: (
                not self.db["queues"].find_one(
                    {
                        "account_id": {"$in": accounts},
                        "$or": [{"status": {"$in": ["queued", "running"]}}, {"events_pending": True}],
                    }
                )
            ),
            timeout=60,
            what="the set-up's jobs to end",
        )

    # ------------------------------------------------------------------ what the caller may not touch

    def caller_ids(self) -> set:
        a = self.a.tenant
        return {
            d["_id"]
            for c in ("crm.contacts", "crm.deals")
            for d in self.db[c].find({"account_id": a.account_id, "owner": a.user_uid}, {"_id": 1})
        }

    def digest_a(self):
        return digest(self.db, self.a, whole=False, caller_ids=self.caller_ids())

    def forbidden_text(self, as_owner: bool) -> set[str]:
        """Ids and markers the caller may not learn."""
        ids = {str(i) for i in self.b.all_ids()}
        markers = {"B-"}
        if not as_owner:
            ids |= {str(i) for i in [*self.a.ids["owner"], *self.a.ids["deals_owner"]]}
            markers |= {"A-owner-"}
        return ids | markers

    # ------------------------------------------------------------------ pools

    def some(self, pool: list, k=None):
        k = k if k is not None else self.rnd.randint(1, 3)
        return [str(self.rnd.choice(pool)) for _ in range(k)]

    def ids(self, kind: str, as_owner: bool) -> list[str]:
        own = self.a.ids["user"] if kind == "contacts" else self.a.ids["deals_user"]
        hidden = self.a.ids["owner"] if kind == "contacts" else self.a.ids["deals_owner"]
        foreign = (
            self.b.ids["owner"] + self.b.ids["user"]
            if kind == "contacts"
            else self.b.ids["deals_owner"] + self.b.ids["deals_user"]
        )
        pools = [foreign, foreign, [ObjectId()]] + ([] if as_owner else [hidden, hidden, own])
        return self.some(self.rnd.choice(pools))

    def foreign_filter(self, kind: str, as_owner: bool) -> dict:
        b, a = self.b, self.a
        choices = [
            {"owner": str(b.tenant.owner_uid)},
            {"owner": str(b.tenant.user_uid)},
            {"tags_any": self.some(b.tags)},
            {"tags_all": self.some(b.tags, 1)},
            {"import_id": str(self.rnd.choice(self.b.job_ids or [ObjectId()]))},
            {"ids": self.ids(kind, as_owner)},
            {"q": "B-owner"},
            {"q": "B-"},
        ]
        if kind == "deals":
            choices += [{"pipeline_id": str(b.pipeline)}, {"stage_id": str(self.rnd.choice(b.stages))}]
        if not as_owner:
            choices += [
                {"owner": str(a.tenant.owner_uid)},
                {"q": "A-owner"},
                {},
                {"created_to": "2099-01-01"},
                {"tags_any": self.some(a.tags)},
            ]
        return self.rnd.choice(choices)

    def selection(self, kind, as_owner) -> dict:
        return (
            {"ids": self.ids(kind, as_owner)}
            if self.rnd.random() < 0.5
            else {"filter": self.foreign_filter(kind, as_owner)}
        )

    # ------------------------------------------------------------------ requests, one generator per endpoint

    def requests(self, as_owner: bool) -> list:
        b, a = self.b, self.a
        kind = self.rnd.choice(["contacts", "deals"])
        sel = self.selection(kind, as_owner)
        ids_for = self.rnd.choice([b, b] if as_owner else [a, b, b])
        hidden_emails = b.emails["owner"] + b.emails["user"] + ([] if as_owner else a.emails["owner"])
        records = [
            {
                "first_name": f"fz{i}",
                "email": self.rnd.choice(hidden_emails + [f"new-{uuid.uuid4().hex[:6]}@example.com"]),
                "tags": self.rnd.choice(["x", f"n{self.rnd.randint(0, 3)}"]),
            }
            for i in range(3)
        ]
        deal_rows = [
            {"name": f"fzd{i}", "pipeline": "Sales", "contact_email": self.rnd.choice(hidden_emails)} for i in range(2)
        ]
        foreign_key = f"accounts/{b.tenant.account_id}/attachments/x/{uuid.uuid4().hex}.csv"
        foreign_job = str(self.rnd.choice(b.job_ids + ([] if as_owner else a.job_ids)))
        return [
            ("post", f"/v1/crm/{kind}/bulk-delete", sel),
            ("post", f"/v1/crm/{kind}/bulk-delete?dry_run=1", sel),
            (
                "post",
                f"/v1/crm/{kind}/bulk-update",
                {
                    **sel,
                    "tags_add": self.rnd.choice([["fuzz"], self.some(b.tags)]),
                    "tags_remove": self.some(b.tags + a.tags),
                },
            ),
            (
                "post",
                f"/v1/crm/{kind}/bulk-update",
                {
                    **sel,
                    "set": {"owner": str(self.rnd.choice([b.tenant.owner_uid, a.tenant.owner_uid, a.tenant.user_uid]))},
                },
            ),
            (
                "post",
                "/v1/crm/deals/bulk-update",
                {**self.selection("deals", as_owner), "set": {"stage_id": str(self.rnd.choice(b.stages + a.stages))}},
            ),
            (
                "post",
                "/v1/crm/contacts/link",
                {
                    **self.selection("contacts", as_owner),
                    **self.rnd.choice(
                        [
                            {"business_id": str(self.rnd.choice(ids_for.ids["owner"][:1] + b.ids["user"][:1]))},
                            {"deal_id": str(self.rnd.choice(ids_for.ids["deals_owner"] + a.ids["deals_user"]))},
                        ]
                    ),
                },
            ),
            ("post", f"/v1/crm/{kind}/export", {"filter": self.foreign_filter(kind, as_owner)}),
            (
                "post",
                "/v1/crm/contacts/import",
                {
                    "source": {"type": "records", "records": records},
                    "options": self.rnd.choice([{}, {"mode": "update"}, {"dedupe": "email", "tags": ["imp"]}]),
                },
            ),
            (
                "post",
                "/v1/crm/contacts/import",
                {
                    "source": {"type": "records", "records": records[:1]},
                    "options": {"owner": str(self.rnd.choice([b.tenant.owner_uid, a.tenant.owner_uid]))},
                },
            ),
            ("post", "/v1/crm/deals/import", {"source": {"type": "records", "records": deal_rows}}),
            ("post", "/v1/crm/contacts/import", {"source": {"type": "storage", "key": foreign_key}}),
            (
                "post",
                f"/v1/crm/{kind}/import/preview",
                {"source": {"type": "storage", "key": self.rnd.choice(self.foreign_keys)}},
            ),
            (
                "post",
                f"/v1/crm/{kind}/import",
                {"source": {"type": "storage", "key": self.rnd.choice(self.foreign_keys)}},
            ),
            ("post", f"/v1/crm/{kind}/export", {"filter": {}}),
            (
                "post",
                "/v1/crm/automations/trigger",
                {
                    "deal_id": str(self.rnd.choice(a.ids["deals_user"] + ids_for.ids["deals_owner"])),
                    "stage_id": str(self.rnd.choice(a.stages)),
                    "event_id": self.rnd.choice(["shared-event", "shared-event", f"e-{uuid.uuid4().hex[:6]}"]),
                },
            ),
            ("delete", f"/v1/crm/tags/{self.rnd.choice(ids_for.tags)}", None),
            ("delete", f"/v1/crm/fields/{ids_for.field}", None),
            ("delete", f"/v1/crm/stages/{ids_for.stages[2]}?move_to={ids_for.stages[0]}", None),
            ("delete", f"/v1/crm/pipelines/{ids_for.pipeline}", None),
            (
                "post",
                "/v1/crm/automations/trigger",
                {
                    "deal_id": str(self.rnd.choice(ids_for.ids["deals_owner"] + b.ids["deals_user"])),
                    "stage_id": str(self.rnd.choice(ids_for.stages)),
                },
            ),
            ("post", f"/v1/crm/jobs/{foreign_job}/cancel", None),
            ("post", f"/v1/crm/jobs/{foreign_job}/retry", None),
            ("post", f"/v1/crm/jobs/{foreign_job}/undo", None),
            ("post", f"/v1/crm/reminders/{self.rnd.choice(b.reminders + a.reminders[:2])}/complete", None),
        ]

    # ------------------------------------------------------------------ one round

    def one(self, *, as_owner: bool) -> None:
        tenant = self.a.tenant
        method, path, body = self.rnd.choice(self.requests(as_owner))
        headers = tenant.headers(owner=as_owner)
        if self.rnd.random() < 0.2:  # a key another user or account used
            headers["Idempotency-Key"] = self.rnd.choice(["k1", "digest:2026-11-25", f"automation-event:{ObjectId()}"])
        response = getattr(self.client, method)(path, json=body, headers=headers)
        self.tried += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        # What the caller wrote themselves (in this request or an earlier one: an email they imported into their
        # own contacts, say) is no leak when it comes back.
        self.said.append((json.dumps(body or {}) + path).lower())
        sent = "\n".join(self.said)
        seen = [response.get_data(as_text=True)]
        if response.status_code >= 500:
            self.server_errors.append(f"{method} {path} {body}: {response.status_code} {seen[0][:300]}")
            return
        if response.status_code == 202:
            job = wait_for_job(self.db, response.get_json()["id"], timeout=60)
            seen.append(json.dumps(jobs.job_to_json(job), default=str))
            seen += self.files_of(job, headers)
        self.check(method, path, body, sent, seen, as_owner)

    def files_of(self, job: dict, headers: dict) -> list[str]:
        texts = []
        if job["type"].endswith(".export") and job["status"] == "completed":
            key = job["result"]["file_key"]
            with self.store.open(key) as f:
                texts.append(f.read().decode("utf-8", "replace"))
        if job["type"].endswith(".import"):
            texts.append(self.client.get(f"/v1/crm/jobs/{job['_id']}/errors", headers=headers).get_data(as_text=True))
        return texts

    def check(self, method, path, body, sent: str, seen: list[str], as_owner: bool) -> None:
        forbidden = self.forbidden_text(as_owner)
        leaked = set()
        for text in seen:
            leaked |= {i for i in HEX.findall(text) if i in forbidden and i not in sent}
            prefixes = [f.lower() for f in forbidden if f.endswith("-")]
            leaked |= {
                m.group(0)
                for m in MARKER.finditer(text)
                if any(m.group(0).lower().startswith(p) for p in prefixes) and m.group(0).lower() not in sent
            }
        if leaked:
            self.crossings.append(f"LEAK {method} {path} {body}: {sorted(leaked)[:5]}")
        if digest(self.db, self.b, whole=True, caller_ids=set()) != self.baseline_b:
            self.crossings.append(f"CHANGED account B after {method} {path} {body}")
            self.baseline_b = digest(self.db, self.b, whole=True, caller_ids=set())
        now_a = self.digest_a()
        if now_a != self.baseline_a and not as_owner:
            changed = [k for k in now_a if now_a[k] != self.baseline_a[k]]
            self.crossings.append(f"CHANGED A's hidden {changed} after {method} {path} {body} (as user)")
        self.baseline_a = now_a  # A's owner may change A (completing their reminder, say): the next baseline

    def as_service(self) -> None:
        """A service token reads jobs of both accounts: never a download link, a storage key or a row of data."""
        from crm_workers.domain.principal import issue_service_token
        from tests.conftest import JWT_SECRET

        headers = {"Authorization": f"Bearer {issue_service_token(JWT_SECRET)}"}
        side = self.rnd.choice([self.a, self.b])
        job = self.rnd.choice(list(self.db["queues"].find({"account_id": side.tenant.account_id}, {"_id": 1})))
        path = self.rnd.choice(
            [f"/v1/crm/jobs/{job['_id']}", f"/v1/crm/jobs?account_id={side.tenant.account_id}", "/v1/crm/operator"]
        )
        response = self.client.get(path, headers=headers)
        self.tried += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        text = response.get_data(as_text=True)
        data = [k for k in ("download_url", "file_key", "/exports/", "/imports/", "errors_url") if k in text]
        data += [m.group(0) for m in MARKER.finditer(text)]
        if response.status_code != 200 or data:
            self.crossings.append(f"SERVICE {path}: {response.status_code} {data[:5]}")

    def run(self, n: int) -> None:
        for i in range(n):
            if i % 10 == 9:
                self.as_service()
            else:
                self.one(as_owner=i % 4 == 3)


def _run(client, db, settings, n: int, seed: int):
    fuzz = Fuzz(client, db, settings, seed)
    fuzz.run(n)
    print(
        f"\ntenancy fuzz: {fuzz.tried} requests (seed {seed}), statuses {dict(sorted(fuzz.statuses.items()))}, "
        f"{len(fuzz.crossings)} crossings, {len(fuzz.server_errors)} 5xx"
    )
    assert fuzz.server_errors == []
    assert fuzz.crossings == [], "\n".join(fuzz.crossings)
    return fuzz


def test_generated_requests_never_cross_accounts_or_users(client, db, worker, settings):
    fuzz = _run(client, db, settings, 150, int(os.environ.get("CRM_FUZZ_SEED", "12")))
    assert fuzz.statuses.get(202, 0) > 20  # jobs really ran, not only refusals


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_two_thousand_generated_requests_never_cross_accounts_or_users(client, db, worker, settings):
    n = int(os.environ.get("CRM_FUZZ_REQUESTS", "2000"))
    fuzz = _run(client, db, settings, n, int(os.environ.get("CRM_FUZZ_SEED", "2026")))
    assert fuzz.tried >= n
