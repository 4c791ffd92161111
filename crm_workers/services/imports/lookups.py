"""Names in an import resolved to ids, once per job: tags (created when missing), businesses, pipelines."""

from __future__ import annotations

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from crm_workers.adapters.mongo import CASE_INSENSITIVE, CONTACTS, PIPELINES, STAGES, TAGS
from crm_workers.domain.ids import stable_id


def _first_spellings(names: list[str], known: dict) -> list[str]:
    """The names not known yet, once each, as first spelled in the file."""
    first: dict[str, str] = {}
    for name in names:
        if name.lower() not in known:
            first.setdefault(name.lower(), name)
    return list(first.values())


class Lookups:
    def __init__(self, db: Database, account_id: ObjectId, job_id: ObjectId, now):
        self.db, self.account_id, self.job_id, self.now = db, account_id, job_id, now
        self._tags: dict[str, ObjectId] = {}
        self._businesses: dict[str, ObjectId] = {}
        self._pipelines: dict[str, dict | None] = {}
        self._stages: dict[tuple, dict | None] = {}

    def tag_ids(self, names: list[str]) -> list[ObjectId]:
        """Ids of the tags named (case-insensitive), creating the missing ones once."""
        missing = _first_spellings(names, self._tags)
        if missing:
            for doc in self.db[TAGS].find({"account_id": self.account_id, "name": {"$in": missing}},
                                          {"name": 1}, collation=CASE_INSENSITIVE):
                self._tags[doc["name"].lower()] = doc["_id"]
            for name in missing:
                if name.lower() not in self._tags:
                    self._tags[name.lower()] = self._create_tag(name)
        return [self._tags[n.lower()] for n in names]

    def _create_tag(self, name: str) -> ObjectId:
        doc = {"_id": stable_id(self.job_id, "tag", name.lower()), "account_id": self.account_id, "name": name,
               "locked": False, "created_at": self.now(), "updated_at": self.now(),
               "created_by_import": self.job_id}
        try:
            self.db[TAGS].insert_one(doc)
            return doc["_id"]
        except DuplicateKeyError:  # created meanwhile (another import, or this one before a retry)
            found = self.db[TAGS].find_one({"account_id": self.account_id, "name": name}, {"_id": 1},
                                           collation=CASE_INSENSITIVE)
            return found["_id"]

    def business_ids(self, names: list[str], owner=None) -> list[ObjectId]:
        """Ids of the business contacts named (case-insensitive), creating the missing ones in one write."""
        missing = _first_spellings(names, self._businesses)
        if missing:
            for doc in self.db[CONTACTS].find({"account_id": self.account_id, "type": "business",
                                               "name": {"$in": missing}}, {"name": 1}, collation=CASE_INSENSITIVE):
                self._businesses.setdefault(doc["name"].lower(), doc["_id"])
            new = [n for n in missing if n.lower() not in self._businesses]
            if new:
                self._create_businesses(new, owner)
        return [self._businesses[n.lower()] for n in names]

    def _create_businesses(self, names: list[str], owner) -> None:
        docs = []
        for name in names:
            doc = {"_id": stable_id(self.job_id, "business", name.lower()), "account_id": self.account_id,
                   "type": "business", "name": name, "tags": [], "source": "import", "import_id": self.job_id,
                   "created_by_import": self.job_id, "created_at": self.now(), "updated_at": self.now()}
            if owner:
                doc["owner"] = owner
            docs.append(doc)
            self._businesses[name.lower()] = doc["_id"]
        try:
            self.db[CONTACTS].insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # duplicates: this import created them before a retry
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    def pipeline(self, name: str) -> dict | None:
        key = name.lower()
        if key not in self._pipelines:
            self._pipelines[key] = self.db[PIPELINES].find_one({"account_id": self.account_id, "name": name},
                                                               collation=CASE_INSENSITIVE)
        return self._pipelines[key]

    def stage(self, pipeline_id: ObjectId, name: str | None) -> dict | None:
        """The stage named in the pipeline, or its first stage when no name is given."""
        key = (pipeline_id, (name or "").lower())
        if key not in self._stages:
            query = {"account_id": self.account_id, "pipeline_id": pipeline_id}
            if name:
                self._stages[key] = self.db[STAGES].find_one({**query, "name": name}, collation=CASE_INSENSITIVE)
            else:
                self._stages[key] = next(iter(self.db[STAGES].find(query).sort("position", 1).limit(1)), None)
        return self._stages[key]
