"""Turning a Selection into a MongoDB query: always the caller's account, and under owner_only their records."""

from __future__ import annotations

from datetime import UTC

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import CASE_INSENSITIVE, TAGS
from crm_workers.domain.principal import Principal
from crm_workers.domain.selection import Selection, text_query
from crm_workers.errors import BadRequest
from crm_workers.services.visibility import job_principal, visible

TEXT_FIELDS = {"contact": ["first_name", "last_name", "name", "email"], "deal": ["name"]}


def _tag_ids(db: Database, account_id: ObjectId, refs: list[str], field: str) -> list[ObjectId]:
    ids = [ObjectId(r) for r in refs if ObjectId.is_valid(r) and len(r) == 24]
    names = [r for r in refs if not (ObjectId.is_valid(r) and len(r) == 24)]
    if names:
        found = {
            t["name"].lower(): t["_id"]
            for t in db[TAGS].find(
                {"account_id": account_id, "name": {"$in": names}}, {"name": 1}, collation=CASE_INSENSITIVE
            )
        }
        unknown = [n for n in names if n.lower() not in found]
        if unknown:
            raise BadRequest(f"unknown tags: {', '.join(unknown)}", details={"field": f"filter.{field}"})
        ids += [found[n.lower()] for n in names]
    return ids


def _utc(value):
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _also(query: dict, field: str, condition) -> None:
    """Add a condition on `field`, combined with any already there (AND), never replacing it."""
    if field in query:
        query.setdefault("$and", []).append({field: condition})
    else:
        query[field] = condition


def selection_query(db: Database, principal: Principal, entity: str, selection: Selection) -> dict:
    """The query for `selection`, scoped to the account and the caller's visibility. Every condition the
    selection and the caller's rights bring is combined with the others (AND), never replacing one."""
    query: dict = {"account_id": principal.account_id}
    s = selection
    conditions: list[tuple[str, object]] = []
    if s.ids is not None:
        conditions.append(("_id", {"$in": [ObjectId(i) for i in s.ids]}))
    if s.type and entity == "contact":
        conditions.append(("type", s.type))
    if s.tags_any:
        conditions.append(("tags", {"$in": _tag_ids(db, principal.account_id, s.tags_any, "tags_any")}))
    if s.tags_all:
        conditions.append(("tags", {"$all": _tag_ids(db, principal.account_id, s.tags_all, "tags_all")}))
    if s.owner:
        conditions.append(("owner", ObjectId(s.owner)))
    if s.created_from or s.created_to:
        conditions.append(
            ("created_at", {k: _utc(v) for k, v in (("$gte", s.created_from), ("$lte", s.created_to)) if v})
        )
    for name in ("pipeline_id", "stage_id", "import_id"):
        if getattr(s, name):
            conditions.append((name, ObjectId(getattr(s, name))))
    if s.q:
        conditions.append(("$or", text_query(s.q, TEXT_FIELDS[entity])["$or"]))
    conditions += list(visible(db, principal).items())
    for field, condition in conditions:
        _also(query, field, condition)
    return query


def job_selection_query(db: Database, job: dict, entity: str, *, key: str = "selection") -> dict:
    """The query of a mass job, rebuilt in the worker as its requester could see then, limited to the records
    that existed when the job was requested (the earlier of that and any `created_to` the user gave)."""
    query = selection_query(db, job_principal(db, job), entity, Selection.model_validate(job["params"].get(key) or {}))
    _also(query, "created_at", {"$lte": job["created_at"]})
    return query
