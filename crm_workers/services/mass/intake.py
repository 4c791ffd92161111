"""Accepting mass operations and structure deletes: validated at once, recorded, enqueued (or counted)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymongo.database import Database

from crm_workers.adapters.mongo import CASE_INSENSITIVE, CONTACTS, DEALS, FIELDS, PIPELINES, STAGES, TAGS, oid
from crm_workers.domain.principal import Principal
from crm_workers.domain.selection import MAX_IDS, Selection
from crm_workers.domain.values import parse_custom, parse_date
from crm_workers.errors import BadRequest, Conflict, NotFound
from crm_workers.jobs import JobRecord
from crm_workers.services.job_submission import submit_job
from crm_workers.services.mass.tags import tag_for_delete
from crm_workers.services.selection import selection_query
from crm_workers.services.visibility import require_structure_rights, restricted_to

COLLECTION = {"contact": CONTACTS, "deal": DEALS}
SETTABLE = {"contact": {"owner"}, "deal": {"owner", "stage_id", "status", "expected_close_date"}}


class MassRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, max_length=MAX_IDS)
    filter: Selection | None = None

    @model_validator(mode="after")
    def something_selected(self):
        if self.ids is None and self.filter is None:
            raise ValueError("give ids or a filter (an empty filter {} selects everything)")
        return self

    def selection(self) -> Selection:
        base = self.filter.model_dump(exclude_none=True) if self.filter else {}
        if self.ids is not None:
            base["ids"] = self.ids
        return Selection.model_validate(base)


class BulkUpdateRequest(MassRequest):
    set: dict[str, Any] = Field(default_factory=dict)
    tags_add: list[str] = Field(default_factory=list, max_length=100)
    tags_remove: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def something_to_change(self):
        if not (self.set or self.tags_add or self.tags_remove):
            raise ValueError("nothing to change: give set, tags_add or tags_remove")
        return self


class LinkRequest(MassRequest):
    business_id: str | None = None
    deal_id: str | None = None

    @model_validator(mode="after")
    def one_target(self):
        if (self.business_id is None) == (self.deal_id is None):
            raise ValueError("give exactly one of business_id or deal_id")
        return self


def _query(db, principal, entity, request: MassRequest) -> dict:
    try:
        selection = request.selection()
    except ValueError as exc:
        raise BadRequest(str(exc), details={"field": "ids"}) from None
    return selection_query(db, principal, entity, selection)


def matched(db: Database, principal: Principal, entity: str, request: MassRequest) -> int:
    return db[COLLECTION[entity]].count_documents(_query(db, principal, entity, request))


def _params(principal: Principal, request: MassRequest, **extra) -> dict:
    return {"selection": request.selection().model_dump(mode="json", exclude_none=True), **extra}


def request_delete(db, broker, principal, entity, request: MassRequest, *, idempotency_key=None) -> JobRecord:
    _query(db, principal, entity, request)
    return submit_job(
        db, broker, principal, f"{entity}s.bulk_delete", _params(principal, request), idempotency_key=idempotency_key
    )


def _tag_refs(db, account_id, refs: list[str], field: str, *, must_exist: bool) -> tuple[list[str], list[dict]]:
    ids = [r for r in refs if ObjectId.is_valid(r) and len(r) == 24]
    names = [r for r in refs if r not in ids]
    found = list(db[TAGS].find({"account_id": account_id, "_id": {"$in": [ObjectId(i) for i in ids]}}))
    if names:
        found += list(db[TAGS].find({"account_id": account_id, "name": {"$in": names}}, collation=CASE_INSENSITIVE))
    known_ids = {str(t["_id"]) for t in found}
    if must_exist and (missing := [i for i in ids if i not in known_ids]):
        raise BadRequest(f"unknown tags: {', '.join(missing)}", details={"field": field})
    return names, found


def _set_value(db, account_id, entity, key: str, value, fields: dict):
    where = {"field": f"set.{key}"}
    if key not in SETTABLE[entity] and not key.startswith("custom."):
        raise BadRequest(
            f"set.{key} cannot be set on {entity}s",
            details={**where, "settable": sorted(SETTABLE[entity] | {"custom.<field key>"})},
        )
    try:
        if key == "owner":
            if not (isinstance(value, str) and ObjectId.is_valid(value) and len(value) == 24):
                raise ValueError("must be a user id")
            return "owner", value
        if key == "status":
            if value not in ("open", "won", "lost"):
                raise ValueError("must be open, won or lost")
            return "status", value
        if key == "expected_close_date":
            return key, parse_date(value).isoformat()
        if key == "stage_id":
            stage = oid(value) and db[STAGES].find_one({"_id": oid(value), "account_id": account_id})
            if not stage:
                raise NotFound("stage not found", details=where)
            return "stage_id", value
        if key.startswith("custom."):
            definition = fields.get(key[7:])
            if definition is None:
                raise ValueError("no such custom field")
            parsed: Any = parse_custom(definition, value, country=None, day_first=False) if value is not None else None
            return key, parsed.isoformat() if hasattr(parsed, "isoformat") else parsed
    except ValueError as exc:
        raise BadRequest(f"set.{key}: {exc}", details=where) from None
    raise BadRequest(f"set.{key} cannot be set here", details={**where, "settable": sorted(SETTABLE[entity])})


def request_update(db, broker, principal, entity, request: BulkUpdateRequest, *, idempotency_key=None) -> JobRecord:
    _query(db, principal, entity, request)
    account_id = principal.account_id
    fields = {f["key"]: f for f in db[FIELDS].find({"account_id": account_id, "entity": entity})}
    sets = dict(_set_value(db, account_id, entity, k, v, fields) for k, v in request.set.items())
    _, removing = _tag_refs(db, account_id, request.tags_remove, "tags_remove", must_exist=False)
    locked = sorted(t["name"] for t in removing if t.get("locked"))
    if locked:
        raise Conflict(
            f"locked tags cannot be removed: {', '.join(locked)}", code="tags_locked", details={"tags": locked}
        )
    _tag_refs(db, account_id, request.tags_add, "tags_add", must_exist=True)
    params = _params(
        principal, request, set=sets, tags_add=request.tags_add, tags_remove=[str(t["_id"]) for t in removing]
    )
    return submit_job(db, broker, principal, f"{entity}s.bulk_update", params, idempotency_key=idempotency_key)


def request_link(db, broker, principal, request: LinkRequest, *, idempotency_key=None) -> JobRecord:
    _query(db, principal, "contact", request)
    if request.business_id:
        target = oid(request.business_id) and db[CONTACTS].find_one(
            {"_id": oid(request.business_id), "account_id": principal.account_id, "type": "business"}
        )
        field = "business_id"
    else:
        target = oid(request.deal_id) and db[DEALS].find_one(
            {"_id": oid(request.deal_id), "account_id": principal.account_id}
        )
        field = "deal_id"
    uid = restricted_to(db, principal)
    if not target or (uid is not None and target.get("owner") != uid):
        raise NotFound(f"{field.removesuffix('_id')} not found", details={"field": field})
    params = _params(principal, request, **{field: str(target["_id"])})
    return submit_job(db, broker, principal, "contacts.link", params, idempotency_key=idempotency_key)


def request_tag_delete(db, broker, principal, tag_id: str, *, idempotency_key=None) -> JobRecord:
    require_structure_rights(db, principal)
    tag = tag_for_delete(db, principal.account_id, tag_id)
    return submit_job(
        db, broker, principal, "tags.delete", {"tag_id": tag_id, "name": tag["name"]}, idempotency_key=idempotency_key
    )


def request_field_delete(db, broker, principal, field_id: str, *, idempotency_key=None) -> JobRecord:
    require_structure_rights(db, principal)
    field = oid(field_id) and db[FIELDS].find_one({"_id": oid(field_id), "account_id": principal.account_id})
    if not field:
        raise NotFound("field not found", details={"field_id": field_id})
    return submit_job(
        db,
        broker,
        principal,
        "fields.delete",
        {"field_id": field_id, "key": field["key"]},
        idempotency_key=idempotency_key,
    )


def request_stage_delete(
    db, broker, principal, stage_id: str, move_to: str | None, *, idempotency_key=None
) -> JobRecord:
    require_structure_rights(db, principal)
    account_id = principal.account_id
    stage = oid(stage_id) and db[STAGES].find_one({"_id": oid(stage_id), "account_id": account_id})
    if not stage:
        raise NotFound("stage not found", details={"stage_id": stage_id})
    if move_to is not None:
        target = oid(move_to) and db[STAGES].find_one(
            {"_id": oid(move_to), "account_id": account_id, "pipeline_id": stage["pipeline_id"]}
        )
        if not target or target["_id"] == stage["_id"]:
            raise BadRequest("move_to must be another stage of the same pipeline", details={"field": "move_to"})
    elif db[DEALS].count_documents({"account_id": account_id, "stage_id": stage["_id"]}, limit=1):
        raise Conflict(
            "the stage has deals: give move_to, the stage to move them to",
            code="stage_not_empty",
            details={"field": "move_to"},
        )
    return submit_job(
        db,
        broker,
        principal,
        "stages.delete",
        {"stage_id": stage_id, "move_to": move_to},
        idempotency_key=idempotency_key,
    )


def request_pipeline_delete(db, broker, principal, pipeline_id: str, *, idempotency_key=None) -> JobRecord:
    require_structure_rights(db, principal)
    pipeline = oid(pipeline_id) and db[PIPELINES].find_one(
        {"_id": oid(pipeline_id), "account_id": principal.account_id}
    )
    if not pipeline:
        raise NotFound("pipeline not found", details={"pipeline_id": pipeline_id})
    return submit_job(
        db, broker, principal, "pipelines.delete", {"pipeline_id": pipeline_id}, idempotency_key=idempotency_key
    )
