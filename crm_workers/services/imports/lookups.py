"""Names in an import resolved to ids, once per job: tags (created when missing), businesses, pipelines and
stages (created when the import says so).

Creating is claimed like contacts (claims.py): two imports naming the same new business, pipeline or stage
at once make one.
"""

from __future__ import annotations

from typing import cast

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from crm_workers.adapters.mongo import CASE_INSENSITIVE, CONTACTS, PIPELINES, STAGES, TAGS, oid
from crm_workers.domain.ids import stable_id
from crm_workers.services.imports.changes import create_records
from crm_workers.services.imports.claims import Claims, claim_kind


def _first_spellings(names: list[str], known: dict) -> list[str]:
    """The names not known yet, once each, as first spelled in the file."""
    first: dict[str, str] = {}
    for name in names:
        if name.lower() not in known:
            first.setdefault(name.lower(), name)
    return list(first.values())


class Lookups:
    def __init__(
        self,
        db: Database,
        account_id: ObjectId,
        job_id: ObjectId,
        now,
        *,
        claims: Claims | None = None,
        visible: dict | None = None,
        restricted_uid: ObjectId | None = None,
        currency: str | None = None,
    ):
        self.db, self.account_id, self.job_id, self.now = db, account_id, job_id, now
        # Tags need no claims (their names are a unique index); other jobs (bulk update, automations) use tags only.
        self.claims = claims or Claims(db, account_id, job_id, now)
        self.visible = visible or {}  # businesses are found among the records the caller may see
        self.restricted_uid = restricted_uid
        self.currency = currency  # of a pipeline the import creates
        self._tags: dict[str, ObjectId] = {}
        self._businesses: dict[str, ObjectId] = {}
        self._pipelines: dict[str, dict | None] = {}
        self._stages: dict[tuple, dict | None] = {}

    def tag_ids(self, names: list[str]) -> list[ObjectId]:
        """Ids of the tags named (case-insensitive), creating the missing ones once."""
        missing = _first_spellings(names, self._tags)
        if missing:
            for doc in self.db[TAGS].find(
                {"account_id": self.account_id, "name": {"$in": missing}}, {"name": 1}, collation=CASE_INSENSITIVE
            ):
                self._tags[doc["name"].lower()] = doc["_id"]
            for name in missing:
                if name.lower() not in self._tags:
                    self._tags[name.lower()] = self._create_tag(name)
        return [self._tags[n.lower()] for n in names]

    def _create_tag(self, name: str) -> ObjectId:
        doc = {
            "_id": stable_id(self.job_id, "tag", name.lower()),
            "account_id": self.account_id,
            "name": name,
            "locked": False,
            "created_at": self.now(),
            "updated_at": self.now(),
            "created_by_import": self.job_id,
        }
        try:
            self.db[TAGS].insert_one(doc)
            return doc["_id"]
        except DuplicateKeyError:  # created meanwhile (another import, or this one before a retry)
            found = self.db[TAGS].find_one(
                {"account_id": self.account_id, "name": name}, {"_id": 1}, collation=CASE_INSENSITIVE
            )
            return cast(dict, found)["_id"]

    def _find_businesses(self, names: list[str]) -> None:
        query = {"account_id": self.account_id, "type": "business", "name": {"$in": names}, **self.visible}
        for doc in self.db[CONTACTS].find(query, {"name": 1}, collation=CASE_INSENSITIVE).sort("_id", 1):
            self._businesses.setdefault(doc["name"].lower(), doc["_id"])

    def business_ids(self, names: list[str], owner=None) -> list[ObjectId]:
        """Ids of the business contacts named (case-insensitive), creating the missing ones in one write."""
        missing = _first_spellings(names, self._businesses)
        if missing:
            self._find_businesses(missing)
            new = [n for n in missing if n.lower() not in self._businesses]
            if new:
                self._create_businesses(new, owner)
        return [self._businesses[n.lower()] for n in names]

    def _create_businesses(self, names: list[str], owner) -> None:
        kind = claim_kind("business", self.restricted_uid)
        standing = self.claims.take(
            {(kind, n.lower()): (stable_id(self.job_id, "business", n.lower()), owner) for n in names}
        )
        self._find_businesses(names)  # made by another import before our claim
        ts, ops = self.now(), []
        for name in names:
            if name.lower() in self._businesses:
                continue
            claim = standing[(kind, name.lower())]  # ours, or the one another import is making right now
            doc = {
                "type": "business",
                "name": name,
                "tags": [],
                "source": "import",
                "import_id": self.job_id,
                "created_by_import": self.job_id,
                "created_at": ts,
                "updated_at": ts,
            }
            if owner:
                doc["owner"] = owner
            ops.append(
                ({"_id": claim.record_id, "account_id": self.account_id, **doc}, {"$setOnInsert": doc}, not claim.ours)
            )
            self._businesses[name.lower()] = claim.record_id
        create_records(self.db[CONTACTS], self.account_id, self.job_id, ops)

    def pipeline(self, ref: str, *, create: bool = False) -> dict | None:
        """The pipeline with this id or name (case-insensitive); created when asked and missing."""
        key = ref.strip().lower()
        if key not in self._pipelines:
            doc = None
            if oid(ref.strip()):
                doc = self.db[PIPELINES].find_one({"_id": oid(ref.strip()), "account_id": self.account_id})
            doc = doc or self._pipeline_named(ref.strip())
            if doc is None and create:
                doc = self._create_pipeline(ref.strip())
            self._pipelines[key] = doc
        return self._pipelines[key]

    def pipeline_by_id(self, pipeline_id: ObjectId | None) -> dict | None:
        return self.pipeline(str(pipeline_id)) if isinstance(pipeline_id, ObjectId) else None

    def _pipeline_named(self, name: str) -> dict | None:
        return next(
            iter(
                self.db[PIPELINES]
                .find({"account_id": self.account_id, "name": name}, collation=CASE_INSENSITIVE)
                .sort("_id", 1)
                .limit(1)
            ),
            None,
        )

    def _create_pipeline(self, name: str) -> dict:
        claim = self.claims.take(
            {("pipeline", name.lower()): (stable_id(self.job_id, "pipeline", name.lower()), None)}
        )[("pipeline", name.lower())]
        found = self._pipeline_named(name)
        if found is not None:
            return found
        ts = self.now()
        self.db[PIPELINES].update_one(
            {"_id": claim.record_id, "account_id": self.account_id},
            {
                "$setOnInsert": {
                    "name": name,
                    "currency": self.currency,
                    "created_by_import": self.job_id,
                    "created_at": ts,
                    "updated_at": ts,
                }
            },
            upsert=True,
        )
        return cast(dict, self.db[PIPELINES].find_one({"_id": claim.record_id, "account_id": self.account_id}))

    def stage(self, pipeline_id: ObjectId, name: str | None, *, create: bool = False) -> dict | None:
        """The stage named in the pipeline, or its first stage when no name is given; a missing stage is
        created last in the pipeline when asked (so stages come in the order the file first names them)."""
        key = (pipeline_id, (name or "").strip().lower())
        if key not in self._stages:
            query = {"account_id": self.account_id, "pipeline_id": pipeline_id}
            if name:
                doc = self._stage_named(pipeline_id, name.strip())
                if doc is None and create:
                    doc = self._create_stage(pipeline_id, name.strip())
                self._stages[key] = doc
            else:
                self._stages[key] = next(
                    iter(self.db[STAGES].find(query).sort([("position", 1), ("_id", 1)]).limit(1)), None
                )
        return self._stages[key]

    def _stage_named(self, pipeline_id: ObjectId, name: str) -> dict | None:
        return next(
            iter(
                self.db[STAGES]
                .find(
                    {"account_id": self.account_id, "pipeline_id": pipeline_id, "name": name},
                    collation=CASE_INSENSITIVE,
                )
                .sort("_id", 1)
                .limit(1)
            ),
            None,
        )

    def _create_stage(self, pipeline_id: ObjectId, name: str) -> dict:
        key = ("stage", f"{pipeline_id}:{name.lower()}")
        claim = self.claims.take({key: (stable_id(self.job_id, "stage", pipeline_id, name.lower()), None)})[key]
        found = self._stage_named(pipeline_id, name)
        if found is not None:
            return found
        last = next(
            iter(
                self.db[STAGES]
                .find({"account_id": self.account_id, "pipeline_id": pipeline_id})
                .sort("position", -1)
                .limit(1)
            ),
            None,
        )
        ts = self.now()
        self.db[STAGES].update_one(
            {"_id": claim.record_id, "account_id": self.account_id},
            {
                "$setOnInsert": {
                    "pipeline_id": pipeline_id,
                    "name": name,
                    "position": (last["position"] + 1) if last else 0,
                    "created_by_import": self.job_id,
                    "created_at": ts,
                    "updated_at": ts,
                }
            },
            upsert=True,
        )
        return cast(dict, self.db[STAGES].find_one({"_id": claim.record_id, "account_id": self.account_id}))
