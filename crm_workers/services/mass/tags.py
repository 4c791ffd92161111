"""Tags: deleting a tag takes it off every contact and deal of the account, then removes it; all of it kept
in the trash, so that undo puts the tag back in its place on every record."""

from __future__ import annotations

from bson import ObjectId
from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS, TAGS, oid, update_by_ids
from crm_workers.errors import BadRequest, Conflict, NotFound, PermanentJobError
from crm_workers.jobs import Progress
from crm_workers.services.mass import trash

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
        raise Conflict(
            f"tag {tag['name']!r} is locked and cannot be deleted",
            code="tag_locked",
            details={"tag_id": tag_id, "name": tag["name"]},
        )
    return tag


def _untag(
    db: Database, account_id, job_id, collection: str, tag_id, batch_size: int, progress, *, passes: int = 2
) -> int:
    """Take the tag off every record of `collection`, a batch at a time, each batch kept in the trash first."""
    tagged = {"account_id": account_id, "tags": tag_id}
    done = 0
    for _ in range(passes):  # twice: the second pass takes records tagged behind the first one meanwhile
        for records in trash.record_batches(db[collection], tagged, {"tags": 1}, batch_size):
            progress.checkpoint()
            done += _untag_batch(db, account_id, job_id, collection, tag_id, records)
            progress.add(succeeded=len(records))
    return done


def _untag_batch(db: Database, account_id, job_id, collection: str, tag_id, records: list[dict]) -> int:
    listed = [r for r in records if isinstance(r.get("tags"), list)]
    scalar = [r for r in records if not isinstance(r.get("tags"), list)]  # `tags: <id>`, not a list
    trash.keep_pulls(
        db,
        account_id,
        job_id,
        collection,
        "tags",
        {r["_id"]: (r["tags"], [tag_id]) for r in listed},
        requires=(TAGS, tag_id),
    )
    if scalar:
        trash.keep_unsets(
            db,
            account_id,
            job_id,
            collection,
            "tags",
            list(db[collection].find({"_id": {"$in": [r["_id"] for r in scalar]}, "account_id": account_id})),
            requires=(TAGS, tag_id),
        )
    return (
        update_by_ids(
            db[collection], account_id, [r["_id"] for r in listed], {"$pull": {"tags": tag_id}}
        ).modified_count
        + update_by_ids(db[collection], account_id, [r["_id"] for r in scalar], {"$unset": {"tags": ""}}).modified_count
    )


def delete_tag(
    db: Database, account_id: ObjectId, tag_id: ObjectId | None, progress: Progress, *, batch_size: int
) -> dict:
    """Pull the tag from every record in batches (a checkpoint between each), then delete it.

    Resumable: counts are derived from what still carries the tag, so a rerun never counts twice.
    """
    if tag_id is None:
        raise PermanentJobError("params.tag_id is not a tag id", code="bad_params")
    job_id = progress.job_id
    if progress.job.get("undo_requested_at"):  # the job as claimed for this run: no read needed
        trash.refuse_if_undone(db, job_id)
    tagged = {"account_id": account_id, "tags": tag_id}
    totals = progress.state.get("totals")
    first: dict[str, list] = {}
    if totals is None:
        # One read per collection answers both "how many" and "which" when they fit in one batch (most
        # tags): it is counted only when there are more.
        first = {
            name: list(db[coll].find(tagged, {"tags": 1}).sort("_id", 1).limit(batch_size + 1))
            for name, coll in TAGGED.items()
        }
        totals = {
            name: len(rows) if len(rows) <= batch_size else db[TAGGED[name]].count_documents(tagged)
            for name, rows in first.items()
        }
        progress.total = sum(totals.values())
        if progress.total:  # what a resumed run needs; a tag on nothing has nothing to resume
            progress.save_state(totals=totals, name=progress.job["params"].get("name"))
        done = dict.fromkeys(TAGGED, 0)
    else:  # a resumed run: what no longer carries the tag was done by the run before
        done = {name: totals[name] - db[coll].count_documents(tagged) for name, coll in TAGGED.items()}
    progress.set(processed=sum(done.values()), succeeded=sum(done.values()))
    for name, coll in TAGGED.items():
        rows = first.get(name)
        if rows is not None and len(rows) <= batch_size:  # all of them in hand already
            if rows:
                done[name] += _untag_batch(db, account_id, job_id, coll, tag_id, rows)
                progress.add(succeeded=len(rows))
                # Once more, for records tagged since the read.
                done[name] += _untag(db, account_id, job_id, coll, tag_id, batch_size, progress, passes=1)
            continue
        done[name] += _untag(db, account_id, job_id, coll, tag_id, batch_size, progress)
    progress.set(processed=sum(done.values()), succeeded=sum(done.values()))
    # The tag kept in the trash by the server itself, then deleted: two writes, nothing read.
    trash.keep_doc_in_server(db, account_id, job_id, TAGS, tag_id)
    db[TAGS].delete_one({"_id": tag_id, "account_id": account_id})
    return {
        "tag_id": str(tag_id),
        "name": progress.job["params"].get("name") or progress.state.get("name"),
        "contacts_updated": done["contacts"],
        "deals_updated": done["deals"],
    }
