"""Which record an import row is: the rows of a chunk that are one record, and the record among those
that exist, claimed against imports running at the same time (see claims.py).

Only records the caller may see are matched; a key whose records the caller cannot see stops the row
with a reason that says no more than that (docs/contract.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bson import ObjectId

from crm_workers.adapters.mongo import CASE_INSENSITIVE
from crm_workers.domain.ids import stable_id
from crm_workers.domain.import_rows import ParsedRow, merge_into
from crm_workers.services.imports.claims import Claim, claim_kind

if TYPE_CHECKING:
    from crm_workers.services.imports.writer import ChunkOutcome, ImportRun

#: Key kinds, as the reasons name them.
LABELS = {"external_id": "id", "deal.external_id": "id", "email": "email", "phone": "phone", "business": "name"}
#: The record field holding each kind of key.
FIELDS = {"external_id": "external_id", "deal.external_id": "external_id", "email": "email", "phone": "phone"}


@dataclass
class Group:
    """Rows of one chunk that are one record (they share a key), merged."""

    rows: list[ParsedRow]
    # merged and new_id are set by group_rows, which makes every group, before any use.
    merged: ParsedRow = None  # type: ignore[assignment]
    keys: list[tuple[str, str]] = field(default_factory=list)  # most telling first
    new_id: ObjectId = None  # type: ignore[assignment]  # the record's id if this group creates it
    found: dict | None = None  # the existing record it writes into
    into: Claim | None = None  # or the record another import is creating with its key right now
    claimed: list[tuple[str, str]] = field(default_factory=list)
    dropped: bool = False
    unchanged: bool = False  # the record found already held every value
    unlinked: bool = False  # a deal whose contact_email names no contact the caller can see

    @property
    def record_id(self) -> ObjectId:
        return self.found["_id"] if self.found else (self.into.record_id if self.into else self.new_id)


@dataclass
class Match:
    doc: dict | None = None
    kind: str | None = None
    blocked: str | None = None  # the kind of key whose only records the caller cannot see
    conflict: tuple[str, str] | None = None  # two keys of the row belong to two records


def _label(kind: str) -> str:
    return LABELS.get(kind, kind)


def group_rows(rows: list[ParsedRow], keys_of, job_id: ObjectId, out: ChunkOutcome) -> list[Group]:
    """Rows sharing a key are one group (later non-empty values win); a row whose keys point at two
    groups fails."""
    groups: list[Group] = []
    by_key: dict[tuple, Group] = {}
    for row in rows:
        keys = keys_of(row.record)
        hits = [(kind, by_key[(kind, value)]) for kind, value in keys if (kind, value) in by_key]
        if len({id(g) for _, g in hits}) > 1:
            first_hit = hits[0][1]
            other = next(kind for kind, g in hits if g is not first_hit)
            out.failed.append(
                (
                    row,
                    f"row {row.row}: its {_label(hits[0][0])} and its {_label(other)} belong to "
                    "different rows of this file",
                )
            )
            continue
        group = hits[0][1] if hits else None
        if group is None:
            group = Group(rows=[])
            groups.append(group)
        group.rows.append(row)
        for key in keys:
            by_key.setdefault(key, group)
    for group in groups:
        first = group.rows[0]
        group.merged = ParsedRow(row=first.row, values=first.values, record={}, tags=[])
        for row in group.rows:
            merge_into(group.merged, row)
        group.keys = keys_of(group.merged.record)
        group.new_id = stable_id(job_id, "row", first.row)
    return groups


def read_records(run: ImportRun, collection: str, keys: list[tuple[str, str]]) -> dict[tuple, list[dict]]:
    """The records holding each key, oldest first. Every record of the account (a record the caller cannot
    see must stop the row, not be created twice), except business names: only those the caller sees."""
    by_kind: dict[str, set] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, set()).add(value)
    found: dict[tuple, list[dict]] = {}
    for kind, values in by_kind.items():
        if kind == "business":
            query = {
                "account_id": run.account_id,
                "type": "business",
                "name": {"$in": list(values)},
                **run.visible_query(),
            }
            cursor = run.db[collection].find(query, collation=CASE_INSENSITIVE)
        else:
            cursor = run.db[collection].find({"account_id": run.account_id, FIELDS[kind]: {"$in": list(values)}})
        for doc in cursor.sort("_id", 1):
            value = doc["name"].strip().lower() if kind == "business" else doc[FIELDS[kind]]
            found.setdefault((kind, value), []).append(doc)
        if kind == "deal.external_id":  # a deal made here is exported with its own id as its external_id
            own = [ObjectId(v) for v in values if (kind, v) not in found and ObjectId.is_valid(v)]
            for doc in (
                run.db[collection].find({"account_id": run.account_id, "_id": {"$in": own}, "external_id": None})
                if own
                else ()
            ):
                found.setdefault((kind, str(doc["_id"])), []).append(doc)
    return found


def choose(run: ImportRun, keys: list[tuple[str, str]], candidates: dict) -> Match:
    """The record a group is: found by its first key that finds one; its other keys must not belong to
    another record."""
    first, first_kind = None, None
    for kind, value in keys:
        docs = candidates.get((kind, value)) or []
        if not docs:
            continue
        if first is None:
            seen = [d for d in docs if run.can_see(d)]
            if not seen:
                return Match(blocked=kind)
            first, first_kind = seen[0], kind
        elif all(d["_id"] != first["_id"] for d in docs):
            assert first_kind is not None, "set with first"
            if not any(run.can_see(d) for d in docs):
                return Match(blocked=kind)
            return Match(conflict=(first_kind, kind))
    return Match(doc=first, kind=first_kind)


def _stop(out_list: list, group: Group, reason: str) -> bool:
    out_list.extend((r, f"row {r.row}: {reason}") for r in group.rows)
    group.dropped = True
    return False


def take(run: ImportRun, group: Group, match: Match, noun: str, out: ChunkOutcome) -> bool:
    """Whether the group is written, given what it matched and the import's mode; otherwise why not."""
    if match.blocked:
        return _stop(out.skipped, group, f"a record with this {_label(match.blocked)} exists that you cannot change")
    if match.conflict:
        a, b = match.conflict
        return _stop(out.failed, group, f"its {_label(a)} and its {_label(b)} belong to different {noun}s")
    found = match.doc
    if found is None:
        if run.mode == "update":
            kind = group.keys[0][0] if group.keys else ("deal.external_id" if noun == "deal" else run.dedupe)
            return _stop(out.skipped, group, f"no {noun} with this {_label(kind)} to update")
        return True
    assert match.kind is not None, "a match's doc comes with its kind"
    if found.get("created_by_import") != run.job_id and run.mode == "create":
        return _stop(out.skipped, group, f"a {noun} with this {_label(match.kind)} exists")
    group.found = found
    return True


def _holds(doc: dict, key: tuple[str, str]) -> bool:
    kind, value = key
    if kind == "business":
        return str(doc.get("name", "")).strip().lower() == value
    if kind == "deal.external_id" and doc.get("external_id") is None:
        return str(doc.get("_id")) == value  # its own id (read_records)
    return doc.get(FIELDS[kind]) == value


def claim(run: ImportRun, groups: list[Group], noun: str, out: ChunkOutcome) -> None:
    """Claim the keys each group is about to give its record; a group whose key another import is writing
    right now writes into that import's record (or stops, when it may not)."""
    restricted = run.restricted_uid
    wanted = {}
    for g in groups:
        if g.found is None:
            g.claimed = list(g.keys)
            who = (g.new_id, g.merged.record.get("owner") or run.owner)
        else:
            g.claimed = [k for k in g.keys if not _holds(g.found, k)]
            who = (g.found["_id"], g.found.get("owner"))
        for kind, value in g.claimed:
            wanted[(claim_kind(kind, restricted), value)] = who
    if not wanted:
        return
    standing = run.claims.take(wanted)
    for g in groups:
        mine = g.record_id
        stands = [(k, standing[(claim_kind(k[0], restricted), k[1])]) for k in g.claimed]
        theirs = [(k, c) for k, c in stands if not c.ours and c.record_id != mine]
        if not theirs:
            continue
        (kind, _), other = theirs[0]
        if not run.can_see({"owner": other.owner}):
            _stop(out.skipped, g, f"a record with this {_label(kind)} exists that you cannot change")
        elif g.found is not None or len({c.record_id for _, c in theirs}) > 1:
            _stop(out.failed, g, f"its {_label(kind)} belongs to another {noun}")
        elif run.mode == "create":
            _stop(out.skipped, g, f"a {noun} with this {_label(kind)} exists")
        else:
            g.into = other
            run.claims.point(
                [(claim_kind(k[0], restricted), k[1]) for k, c in stands if c.ours], other.record_id, other.owner
            )


def settle(run: ImportRun, groups: list[Group], collection: str, noun: str, out: ChunkOutcome) -> list[Group]:
    """Each group's record: the one that exists (read, claimed, read again), or a new one. Returns the
    groups to write."""
    candidates = read_records(run, collection, [k for g in groups for k in g.keys])
    pending = [g for g in groups if take(run, g, choose(run, g.keys, candidates), noun, out)]
    claim(run, pending, noun, out)
    pending = [g for g in pending if not g.dropped]
    # What another import wrote (and released) between our first read and our claim is visible now.
    fresh = [g for g in pending if g.found is None and g.keys] if run.claims.needed else []
    if fresh:
        candidates = read_records(run, collection, [k for g in fresh for k in g.keys])
        into = [g.into.record_id for g in fresh if g.into]
        targets = (
            {d["_id"]: d for d in run.db[collection].find({"_id": {"$in": into}, "account_id": run.account_id})}
            if into
            else {}
        )
        for g in fresh:
            match = choose(run, g.keys, candidates)
            if match.doc is None and g.into and g.into.record_id in targets:
                match = Match(doc=targets[g.into.record_id], kind=g.keys[0][0])
            if match.doc is not None and take(run, g, match, noun, out) and match.doc["_id"] != g.new_id:
                run.claims.point(
                    [(claim_kind(k, run.restricted_uid), v) for k, v in g.claimed],
                    match.doc["_id"],
                    match.doc.get("owner"),
                )
    return [g for g in pending if not g.dropped]
