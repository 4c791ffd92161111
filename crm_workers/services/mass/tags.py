"""Tags: deleting a tag takes it off every contact and deal of the account, then removes it."""

from __future__ import annotations

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS, TAGS, id_batches, oid, update_by_ids
from crm_workers.errors import BadRequest, Conflict, NotFound, PermanentJobError
from crm_workers.jobs import Progress

TAGGED = {"contacts": CONTACTS, "deals": DEALS}


def tag_for_delete(db: Database, account_id: ObjectId, tag_id: str) -> dict:
    """The tag to delete, checked: NotFound outside the account, Conflict when locked."""
    _id = oid(tag_id)
    if _id is None:
        raise BadRequest("tag_id must be a 24-hex id", details={"field": "tag_id"})
    tag = db[TAGS].find_one({"_id": _id, "account_id": account_id})
    if not tag:
        raise NotFound("tag not found", details={"tag_id": tag_id})
    if tag.get("locked"):
        raise Conflict(f"tag {tag['name']!r} is locked and cannot be deleted", code="tag_locked",
                       details={"tag_id": tag_id, "name": tag["name"]})
    return tag


def delete_tag(db: Database, account_id: ObjectId, tag_id: ObjectId, progress: Progress, *,
               batch_size: int) -> dict:
    """Pull the tag from every record in batches (a checkpoint between each), then delete it.

    Resumable: counts are derived from what still carries the tag, so a rerun never counts twice.
    """
    if tag_id is None:
        raise PermanentJobError("params.tag_id is not a tag id", code="bad_params")
    tagged = {"account_id": account_id, "tags": tag_id}
    totals = progress.state.get("totals")
    if totals is None:
        totals = {name: db[coll].count_documents(tagged) for name, coll in TAGGED.items()}
        progress.total = sum(totals.values())
        progress.save_state(totals=totals)
        done = dict.fromkeys(TAGGED, 0)
    else:  # a resumed run: what no longer carries the tag was done by the run before
        done = {name: totals[name] - db[coll].count_documents(tagged) for name, coll in TAGGED.items()}
    for name, coll in TAGGED.items():
        if totals[name] - done[name] > batch_size:
            for ids in id_batches(db[coll], tagged, batch_size):
                progress.set(processed=sum(done.values()), succeeded=sum(done.values()))
                progress.checkpoint()
                done[name] += update_by_ids(db[coll], account_id, ids, {"$pull": {"tags": tag_id}}).modified_count
        # The rest in one go: a small remainder, and records tagged while the cursor ran, behind it.
        done[name] += db[coll].update_many(tagged, {"$pull": {"tags": tag_id}}).modified_count
    progress.set(processed=sum(done.values()), succeeded=sum(done.values()))
    tag = db[TAGS].find_one({"_id": tag_id, "account_id": account_id}, {"name": 1})
    db[TAGS].delete_one({"_id": tag_id, "account_id": account_id})
    return {
        "tag_id": str(tag_id),
        "name": tag["name"] if tag else None,
        "contacts_updated": done["contacts"],
        "deals_updated": done["deals"],
    }
