"""Claims: how imports running at the same time keep one email (phone, external id…) one record.

An import reads what exists, then writes; another job of the same account may write in between. So a
chunk *claims* each key it is about to give a record (`crm.import.claims`, unique on account, kind and
key) before deciding, and reads again after claiming:

- a claim taken: nobody else is writing a record with that key now, and whatever was written before
  the claim is visible to the read that follows it;
- a claim held by another job: that job is writing the record named in the claim; this chunk writes into
  the same record (an upsert, so whichever job comes first creates it and the other updates it).

Claims live for one chunk (released at its end) and expire on their own (a TTL index) when a worker dies
holding them; a retried chunk of the same job finds its own claims and takes them back. Nothing here is a
unique index on contacts or deals: an account's old duplicates never stop an import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from crm_workers.adapters.mongo import IMPORT_CLAIMS

DUPLICATE_KEY = 11000
#: How long a claim outlives a worker that died holding it (seconds); a chunk holds its claims for far less.
CLAIM_LEASE_SECONDS = 600
#: Rounds of claiming: a claim released or expired while we looked at it is tried again.
CLAIM_ROUNDS = 3


@dataclass(frozen=True)
class Claim:
    """Who is writing the record with a key: its id, its owner (for visibility) and whether it is us."""

    record_id: ObjectId
    owner: ObjectId | None
    ours: bool


def claim_kind(kind: str, restricted_uid: ObjectId | None) -> str:
    """The kind a key is claimed under. Emails, phones and ids are one record per account, whoever imports;
    business names are per user for a user limited to their own records (they never see the others')."""
    return f"{kind}:{restricted_uid}" if kind == "business" and restricted_uid is not None else kind


class Claims:
    """The claims of one import job in one account."""

    def __init__(self, db: Database, account_id: ObjectId, job_id: ObjectId, now):
        self.db, self.account_id, self.job_id, self.now = db, account_id, job_id, now
        self.needed = True  # False while no other import of the account runs (importers.py)

    def take(self, wanted: dict[tuple[str, str], tuple[ObjectId, ObjectId | None]]) -> dict[tuple[str, str], Claim]:
        """Claim each (kind, key) for (record id, owner); returns the claim that stands for each key."""
        if not self.needed:
            return {key: Claim(record_id, owner, True) for key, (record_id, owner) in wanted.items()}
        standing: dict[tuple[str, str], Claim] = {}
        pending = dict(wanted)
        for _ in range(CLAIM_ROUNDS):
            if not pending:
                break
            conflicts = self._insert(pending)
            for key in set(pending) - conflicts:
                record_id, owner = pending[key]
                standing[key] = Claim(record_id, owner, True)
            pending = {k: pending[k] for k in conflicts}
            retry = {}
            for key, doc in self._read(list(pending)).items():
                record_id, owner = pending[key]
                if doc is None:  # released meanwhile: claim again
                    retry[key] = pending[key]
                elif doc["job_id"] == self.job_id:  # ours, from this job's last attempt at this chunk
                    if doc["record_id"] != record_id:
                        self.db[IMPORT_CLAIMS].update_one(
                            {"_id": doc["_id"], "job_id": self.job_id},
                            {"$set": {"record_id": record_id, "owner": owner}},
                        )
                    standing[key] = Claim(record_id, owner, True)
                elif doc["expires_at"] <= self.now():  # its worker died holding it
                    self.db[IMPORT_CLAIMS].delete_one({"_id": doc["_id"], "expires_at": doc["expires_at"]})
                    retry[key] = pending[key]
                else:
                    standing[key] = Claim(doc["record_id"], doc.get("owner"), False)
            pending = retry
        for key, doc in self._read(list(pending)).items():  # still contended after every round
            if doc is None:
                standing[key] = Claim(*pending[key], True)
            else:
                standing[key] = Claim(doc["record_id"], doc.get("owner"), doc["job_id"] == self.job_id)
        return standing

    def point(self, keys: list[tuple[str, str]], record_id: ObjectId, owner: ObjectId | None) -> None:
        """Our claims now stand for another record (the chunk found the one to write into)."""
        if keys:
            self.db[IMPORT_CLAIMS].update_many(
                {
                    "account_id": self.account_id,
                    "job_id": self.job_id,
                    "$or": [{"kind": kind, "key": key} for kind, key in keys],
                },
                {"$set": {"record_id": record_id, "owner": owner}},
            )

    def release(self) -> None:
        """Every claim of this job: its writes are done (or it stops), others may decide again."""
        if self.needed:
            self.db[IMPORT_CLAIMS].delete_many({"account_id": self.account_id, "job_id": self.job_id})

    def _insert(self, pending: dict) -> set:
        keys = list(pending)
        expires = self.now() + timedelta(seconds=CLAIM_LEASE_SECONDS)
        docs = [
            {
                "account_id": self.account_id,
                "kind": kind,
                "key": key,
                "record_id": pending[(kind, key)][0],
                "owner": pending[(kind, key)][1],
                "job_id": self.job_id,
                "expires_at": expires,
            }
            for kind, key in keys
        ]
        try:
            self.db[IMPORT_CLAIMS].insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return {keys[e["index"]] for e in errors}
        return set()

    def _read(self, keys: list[tuple[str, str]]) -> dict:
        found: dict = dict.fromkeys(keys)
        by_kind: dict[str, list[str]] = {}
        for kind, key in keys:
            by_kind.setdefault(kind, []).append(key)
        for kind, values in by_kind.items():
            for doc in self.db[IMPORT_CLAIMS].find(
                {"account_id": self.account_id, "kind": kind, "key": {"$in": values}}
            ):
                found[(kind, doc["key"])] = doc
        return found
