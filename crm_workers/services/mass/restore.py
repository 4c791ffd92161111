"""Putting back what a delete job moved to the trash: exactly where nothing changed since, and saying what
could not be put back (and why) where something did.

Each entry gets an `outcome` once handled (`restored` or `not_restored` with a `code` and `reason`), so a
cancelled or failed undo run again continues where it stopped, and its result always covers the whole job.
Order: the structure first (tags, fields, pipelines, stages: what other entries require), then every other
document, then links, values and moves on records that stayed, then files.

(Over 300 lines on purpose: the order, the outcomes and the resumption are one algorithm, read best whole.)
"""

from __future__ import annotations

import copy
from typing import Any, cast

from pymongo import ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from crm_workers.adapters.mongo import ACTIVITY, FIELDS, IN_CHUNK, PIPELINES, STAGES, TAGS, TRASH
from crm_workers.jobs import mark_undone, now
from crm_workers.services.mass.trash import RESTORABLE, RESTORE_GRACE, keep_until, owned_key, trash_key

RESTORE_BATCH = 100
LISTED_MAX = 100
STRUCTURE = [TAGS, FIELDS, PIPELINES, STAGES]
PHASES: list[dict[str, Any]] = [
    {"kind": "doc", "collection": {"$in": STRUCTURE}},
    {"kind": "doc", "collection": {"$nin": STRUCTURE}},
    {"kind": {"$in": ["pull", "unset", "set"]}},
    {"kind": "file"},
]
#: What the result calls each kind of restored entry.
RESTORED_AS = {
    "doc": "documents",
    "pull": "links",
    "unset": "fields",
    "file": "files",
    "deal_moved": "deals_moved_back",
    "automation_disabled": "automations_enabled",
    "view_aligned": "views",
}
CHANGED_SINCE = {
    "deal_moved": ("moved_since", "the deal was moved since; it stays where it is"),
    "automation_disabled": ("changed_since", "the automation was changed since; it stays as it is"),
    "view_aligned": ("changed_since", "the view was changed since; it stays as it is"),
}


class NotRestored(Exception):  # noqa: N818 — an outcome, not an error
    """Raised inside the restore of one entry when it cannot be put back; carries the code and the reason."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Batch:
    """One batch of entries of one phase: their records read at once, their writes and outcomes sent at once."""

    def __init__(self, db: Database, storage, account_id, target_id, required: dict):
        self.db, self.storage, self.account_id, self.target_id = db, storage, account_id, target_id
        self.required = required  # (collection, id) -> exists, shared across batches
        self.outcomes: list = []

    def requirement_met(self, entry: dict) -> None:
        need = entry.get("requires")
        if not need:
            return
        key = (need["collection"], need["record_id"])
        if key not in self.required:
            self.required[key] = (
                self.db[key[0]].find_one({"_id": key[1], "account_id": self.account_id}, {"_id": 1}) is not None
            )
        if not self.required[key]:
            raise NotRestored("depends", f"{need['collection']} {need['record_id']} could not be put back")

    def records(self, collection: str, ids: list) -> dict:
        found = {}
        for start in range(0, len(ids), IN_CHUNK):
            for d in self.db[collection].find(
                {"_id": {"$in": ids[start : start + IN_CHUNK]}, "account_id": self.account_id}
            ):
                found[d["_id"]] = d
        return found

    def flush(self) -> tuple[int, int]:
        """Record the batch's outcomes; returns (restored, not restored)."""
        ts = now()
        updates = []
        for entry, code, reason in self.outcomes:
            if code is None:
                updates.append(
                    UpdateOne(
                        {"_id": entry["_id"]},
                        {"$set": {"outcome": "restored", "restored_at": ts}, "$unset": {"doc": ""}},
                    )
                )
            else:
                updates.append(
                    UpdateOne(
                        {"_id": entry["_id"]},
                        {"$set": {"outcome": "not_restored", "code": code, "reason": reason, "restored_at": ts}},
                    )
                )
        if updates:
            self.db[TRASH].bulk_write(updates, ordered=False)
        failed = sum(1 for _, code, _ in self.outcomes if code is not None)
        counts = (len(self.outcomes) - failed, failed)
        self.outcomes = []
        return counts


def _restore_docs(batch: _Batch, entries: list[dict]) -> None:
    by_collection: dict[str, list] = {}
    for e in entries:
        by_collection.setdefault(e["collection"], []).append(e)
    for collection, group in by_collection.items():
        ready = []
        for e in group:
            try:
                if e["doc"].get("account_id") != batch.account_id:
                    raise NotRestored("other_account", "the document is not of this account")
                batch.requirement_met(e)
                ready.append(e)
            except NotRestored as exc:
                batch.outcomes.append((e, exc.code, exc.reason))
        existing = batch.records(collection, [e["doc"]["_id"] for e in ready])
        fresh = [e for e in ready if e["doc"]["_id"] not in existing]
        for e in ready:
            if e["doc"]["_id"] in existing:  # put back by an earlier run, or made again since
                same = existing[e["doc"]["_id"]] == e["doc"]
                batch.outcomes.append(
                    (e, None, None)
                    if same
                    else (e, "exists", "a record with this id exists again; it was left as it is")
                )
        failed = {}
        try:
            if fresh:
                batch.db[collection].insert_many([e["doc"] for e in fresh], ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                if err.get("code") != 11000:
                    raise
                failed[err["index"]] = err.get("keyValue") or {}
        for i, e in enumerate(fresh):
            if i not in failed:
                batch.outcomes.append((e, None, None))
            else:
                clash = {k: v for k, v in failed[i].items() if k != "account_id"}
                batch.outcomes.append(
                    (
                        e,
                        "conflict",
                        f"another record holds the same {', '.join(clash) or 'key'} "
                        f"({', '.join(map(str, clash.values()))}) now",
                    )
                )


def _insert_after(parent: dict, after_key, leaf: str, value) -> dict:
    """`parent` with `leaf` put back right after `after_key` (first when None; last when that key is gone)."""
    if after_key is not None and after_key not in parent:
        return {**parent, leaf: value}
    rebuilt = {} if after_key is not None else {leaf: value}
    for k, v in parent.items():
        rebuilt[k] = v
        if k == after_key:
            rebuilt[leaf] = value
    return rebuilt


def _undo_unset(e: dict, doc: dict) -> None:
    path = e["field"]
    parent_path, _, leaf = path.rpartition(".")
    parents: list[Any] = [doc]
    for part in parent_path.split(".") if parent_path else []:
        parents.append(parents[-1].get(part) if isinstance(parents[-1], dict) else None)
    parent = parents[-1]
    if not isinstance(parent, dict):
        raise NotRestored("changed_since", f"{parent_path} is no longer an object")
    if leaf in parent:
        if parent[leaf] == e["value"]:
            return  # put back already
        raise NotRestored("changed_since", f"{path} was set again since; the new value was kept")
    rebuilt = _insert_after(parent, e.get("after_key"), leaf, e["value"])
    if parent_path:
        parents[-2][parent_path.rpartition(".")[2]] = rebuilt
    else:
        doc.clear()
        doc.update(rebuilt)
    if "touched_after" in e and doc.get("updated_at") == e["touched_after"]:
        doc["updated_at"] = e["touched_before"]


def _undo_pull(e: dict, doc: dict) -> None:
    field, original = e["field"], e["original"]
    current = doc.get(field)
    if current == original:
        return  # put back already
    if not isinstance(current, list):
        raise NotRestored("changed_since", f"{field} is no longer a list")
    pulled = [v for v in original if v not in e["values"]]
    # Unchanged since the pull: the array exactly as it was; changed: the links added back.
    doc[field] = list(original) if current == pulled else current + [v for v in e["values"] if v not in current]


def _undo_set(e: dict, doc: dict) -> None:
    after, before, missing = e["after"], e["before"], e["before_missing"]
    checked = [f for f in after if f != "updated_at"]

    def as_before(f):
        return f not in doc if f in missing else doc.get(f) == before.get(f)

    if all(as_before(f) for f in checked):
        return  # put back already
    if any(doc.get(f) != after[f] for f in checked):
        raise NotRestored(*CHANGED_SINCE.get(e["field"], ("changed_since", "changed since")))
    untouched = "updated_at" in after and doc.get("updated_at") == after["updated_at"]
    for f in checked + (["updated_at"] if untouched else []):
        if f in missing:
            doc.pop(f, None)
        else:
            doc[f] = before[f]


UNDO_ON_RECORD = {"pull": _undo_pull, "unset": _undo_unset, "set": _undo_set}


def _apply(batch: _Batch, record: dict | None, entries: list[dict]) -> tuple[dict | None, list]:
    """The record with every entry of it undone, in memory, and each entry's outcome."""
    doc = copy.deepcopy(record) if record is not None else None
    outcomes: list[tuple[dict, str | None, str | None]] = []
    for e in entries:
        try:
            batch.requirement_met(e)
            if doc is None:
                raise NotRestored("record_deleted", "the record was deleted since")
            UNDO_ON_RECORD[e["kind"]](e, doc)
            outcomes.append((e, None, None))
        except NotRestored as exc:
            outcomes.append((e, exc.code, exc.reason))
    return doc, outcomes


def _restore_on_records(batch: _Batch, entries: list[dict]) -> None:
    """Links, values and moves: each record rebuilt in memory, then replaced only if it is still as read."""
    by_record: dict[tuple, list] = {}
    for e in entries:
        by_record.setdefault((e["collection"], e["record_id"]), []).append(e)
    planned = []  # (collection, record as read, record undone, outcomes)
    for collection in {c for c, _ in by_record}:
        records = batch.records(collection, [rid for c, rid in by_record if c == collection])
        for (c, rid), group in by_record.items():
            if c == collection:
                planned.append((collection, records.get(rid), *_apply(batch, records.get(rid), group)))
    ops: dict[str, list] = {}
    for collection, read, doc, _ in planned:
        if read is not None and doc != read:
            ops.setdefault(collection, []).append(ReplaceOne(read, doc))
    stale = sum(len(o) for o in ops.values()) - sum(
        batch.db[c].bulk_write(o, ordered=False).matched_count for c, o in ops.items()
    )
    for collection, read, doc, outcomes in planned:
        if stale and read is not None and doc != read:
            outcomes = _again(batch, collection, read, doc, outcomes)
        batch.outcomes += outcomes
        for e, code, _ in outcomes:
            if code is None and e["kind"] == "set" and e["field"] == "deal_moved":
                # The move is undone: so is the stage change it recorded.
                batch.db[ACTIVITY].delete_many(
                    {
                        "account_id": batch.account_id,
                        "entity_type": "deal",
                        "entity_id": e["record_id"],
                        "type": "stage_change",
                        "data.job_id": batch.target_id,
                    }
                )


def _again(batch: _Batch, collection: str, read: dict, doc: dict | None, outcomes: list, tries: int = 3) -> list:
    """A record changed between the read and the write (rare): done again on what it is now."""
    for _ in range(tries):
        current = batch.db[collection].find_one({"_id": read["_id"], "account_id": batch.account_id})
        if current == doc:
            return outcomes  # the first write went through
        entries = [e for e, _, _ in outcomes]
        doc, outcomes = _apply(batch, current, entries)
        # doc is None only when current is: _apply undoes a record it is given.
        if (
            current is None
            or doc == current
            or batch.db[collection].replace_one(current, cast(dict, doc)).matched_count
        ):
            return outcomes
    return [(e, "busy", "the record kept changing during the undo") for e, _, _ in outcomes]


def _restore_files(batch: _Batch, entries: list[dict]) -> None:
    storage = batch.storage
    for e in entries:
        key = e["record_id"]
        if not owned_key(batch.account_id, key):  # never written outside the account, whatever the entry says
            batch.outcomes.append((e, "key_outside_account", "the file key is not under this account"))
        elif storage.exists(key):
            batch.outcomes.append((e, None, None))  # put back already
        elif not storage.exists(trash_key(batch.target_id, key)):
            batch.outcomes.append((e, "file_missing", "the file is no longer in the trash"))
        else:
            with storage.open(trash_key(batch.target_id, key)) as source:
                storage.put_stream(key, source)
            storage.delete(trash_key(batch.target_id, key))
            batch.outcomes.append((e, None, None))


def _summary(db: Database, account_id, target_id, expected: int | None) -> dict:
    base = {"account_id": account_id, "job_id": target_id, "kind": {"$in": RESTORABLE}}
    restored = dict.fromkeys(RESTORED_AS.values(), 0)
    present = 0
    for row in db[TRASH].aggregate(
        [
            {"$match": {**base, "outcome": "restored"}},
            {"$group": {"_id": {"kind": "$kind", "field": "$field"}, "n": {"$sum": 1}}},
        ]
    ):
        kind = row["_id"]["kind"]
        restored[RESTORED_AS.get(row["_id"].get("field") if kind == "set" else kind, kind)] += row["n"]
        present += row["n"]
    listed = [
        {
            "collection": e["collection"],
            "id": str(e["record_id"]),
            "kind": e["kind"],
            "code": e["code"],
            "reason": e["reason"],
        }
        for e in db[TRASH].find({**base, "outcome": "not_restored"}).sort("_id", 1).limit(LISTED_MAX)
    ]
    not_restored = db[TRASH].count_documents({**base, "outcome": "not_restored"})
    present += not_restored
    if expected is not None and expected > present:  # entries gone before the undo reached them
        missing = expected - present
        not_restored += missing
        listed.append(
            {
                "collection": None,
                "id": None,
                "kind": None,
                "code": "expired",
                "reason": f"{missing} items had left the trash before the undo reached them",
            }
        )
    return {
        "job_id": str(target_id),
        "restored": restored,
        "not_restored": listed,
        "not_restored_count": not_restored,
        "complete": not_restored == 0,
    }


def restore_job(db: Database, storage, account_id, target_id, progress, *, expected: int | None = None) -> dict:
    """Put back everything job `target_id` moved to the trash that is not put back yet; the whole job's result."""
    keep_until(db, account_id, target_id, now() + RESTORE_GRACE)
    base = {"account_id": account_id, "job_id": target_id}
    total = db[TRASH].count_documents({**base, "kind": {"$in": RESTORABLE}})
    ok = db[TRASH].count_documents({**base, "kind": {"$in": RESTORABLE}, "outcome": "restored"})
    not_ok = db[TRASH].count_documents({**base, "kind": {"$in": RESTORABLE}, "outcome": "not_restored"})
    progress.total = max(total, expected or 0)
    progress.set(processed=ok + not_ok, succeeded=ok, failed=not_ok)  # what earlier runs did
    required: dict = {}
    for phase in PHASES:
        cursor = db[TRASH].find({**base, **phase, "outcome": None}).batch_size(RESTORE_BATCH)
        entries: list[dict] = []
        for entry in cursor:
            entries.append(entry)
            if len(entries) == RESTORE_BATCH:
                _handle(db, storage, account_id, target_id, required, entries, progress)
                entries = []
        if entries:
            _handle(db, storage, account_id, target_id, required, entries, progress)
    mark_undone(db, account_id, target_id)
    return _summary(db, account_id, target_id, expected)


def _handle(db, storage, account_id, target_id, required, entries, progress) -> None:
    batch = _Batch(db, storage, account_id, target_id, required)
    kind = entries[0]["kind"]  # one phase: documents, files, or changes on records
    (_restore_docs if kind == "doc" else _restore_files if kind == "file" else _restore_on_records)(batch, entries)
    restored, not_restored = batch.flush()
    progress.add(succeeded=restored, failed=not_restored)
    # Every batch reports (and sees a cancel) at once: a cancelled undo stops within one batch.
    progress.checkpoint(flush=True)
