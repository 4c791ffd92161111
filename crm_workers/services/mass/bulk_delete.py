"""contacts.bulk_delete and deals.bulk_delete: in batches, cascades first, everything kept in the trash.

Per batch the dependants go first (attachment files, notes, reminders, activity, links from other records),
then the records themselves: a crash between the two leaves no orphan, and the rerun finds the same records
and does the same (idempotent) work again. Attachment keys outside the job's account are never touched.
The dependants of a batch are moved side by side (each kind touches its own collections), so the server
always has work while the worker builds the next write; the records wait for all of them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from pymongo.database import Database

from crm_workers.adapters.mongo import (
    ACTIVITY,
    CONTACTS,
    DEALS,
    NOTES,
    REMINDERS,
    delete_by_ids,
    find_in,
    id_batches,
    update_by_ids,
)
from crm_workers.services.mass import trash
from crm_workers.services.selection import job_selection_query

ENTITY_COLLECTION = {"contact": CONTACTS, "deal": DEALS}
LINK_BATCH = 200
#: Kinds of dependants of one batch moved at once (notes, reminders, activity, links).
CASCADE_THREADS = 4


def _move_to_trash(db: Database, account_id, job_id, collection: str, docs: list[dict]) -> list[dict]:
    trash.keep_docs(db, account_id, job_id, collection, docs)
    delete_by_ids(db[collection], account_id, [d["_id"] for d in docs])
    return docs


def _pull_links(db: Database, account_id, job_id, collection: str, field: str, ids: list) -> None:
    gone = set(ids)
    pulls = {
        d["_id"]: (d[field], [i for i in d[field] if i in gone])
        for d in find_in(db[collection], account_id, field, ids, projection={field: 1})
        if isinstance(d[field], list)
    }
    trash.keep_pulls(db, account_id, job_id, collection, field, pulls)
    holders = list(pulls)
    for start in range(0, len(holders), LINK_BATCH):  # a business can be linked from thousands of records
        update_by_ids(db[collection], account_id, holders[start : start + LINK_BATCH], {"$pull": {field: {"$in": ids}}})


def _attachments(db: Database, storage, account_id, job_id, notes: list[dict]) -> None:
    """The notes' files to the trash before the notes themselves: a rerun still finds them."""
    if storage is None:
        return
    for note in notes:
        attachments = note.get("attachments")
        for index, attachment in enumerate(attachments if isinstance(attachments, list) else []):
            key = attachment.get("key") if isinstance(attachment, dict) else attachment
            if key:
                trash.keep_file(db, storage, account_id, job_id, key, note_id=note["_id"], index=index)


def _links(db: Database, account_id, job_id, ids: list) -> None:
    """Links to the contacts from deals and other contacts pulled, deals' business_id unset (kept in the trash)."""
    _pull_links(db, account_id, job_id, DEALS, "contacts", ids)
    _pull_links(db, account_id, job_id, CONTACTS, "businesses", ids)
    linked = find_in(db[DEALS], account_id, "business_id", ids)
    trash.keep_unsets(db, account_id, job_id, DEALS, "business_id", linked)
    if linked:
        db[DEALS].update_many(
            {"_id": {"$in": [d["_id"] for d in linked]}, "account_id": account_id}, {"$unset": {"business_id": ""}}
        )


def _dependants(db: Database, storage, account_id, job_id, entity: str, ids: list, pool) -> None:
    field = "contact_id" if entity == "contact" else "deal_id"

    def notes():
        found = find_in(db[NOTES], account_id, field, ids)
        _attachments(db, storage, account_id, job_id, found)
        _move_to_trash(db, account_id, job_id, NOTES, found)

    def reminders():
        _move_to_trash(db, account_id, job_id, REMINDERS, find_in(db[REMINDERS], account_id, field, ids))

    def activity():
        _move_to_trash(
            db,
            account_id,
            job_id,
            ACTIVITY,
            find_in(db[ACTIVITY], account_id, "entity_id", ids, {"entity_type": entity}),
        )

    kinds = [notes, reminders, activity] + (
        [lambda: _links(db, account_id, job_id, ids)] if entity == "contact" else []
    )
    for moved in [pool.submit(kind) for kind in kinds]:
        moved.result()  # every kind before the records: a failure stops the batch here, with no orphan made


def delete_records(
    db: Database, storage, account_id, job_id, entity: str, query: dict, progress, *, batch_size: int
) -> int:
    """Delete what `query` matches (already scoped to the account), with cascades; returns how many."""
    collection = ENTITY_COLLECTION[entity]
    if progress.total is None:  # a first run: nothing deleted yet (a count is a whole pass on some servers)
        progress.total = db[collection].count_documents(query)
        progress.save_state(total_at_start=progress.total)
        deleted = 0
    else:  # a resumed run: what no longer matches was deleted by the run before
        deleted = progress.state["total_at_start"] - db[collection].count_documents(query)
    with ThreadPoolExecutor(CASCADE_THREADS, thread_name_prefix="cascade") as pool:
        for ids in id_batches(db[collection], query, batch_size):
            progress.set(processed=deleted, succeeded=deleted)
            progress.checkpoint()  # cancelled here: between batches, never inside one
            _dependants(db, storage, account_id, job_id, entity, ids, pool)
            records = find_in(db[collection], account_id, "_id", ids)
            deleted += len(_move_to_trash(db, account_id, job_id, collection, records))
    progress.set(processed=deleted, succeeded=deleted)
    return deleted


def run_bulk_delete(db: Database, storage, job: dict, progress, *, entity: str, batch_size: int) -> dict:
    """contacts.bulk_delete / deals.bulk_delete: the job's selection, with cascades, into the trash."""
    trash.refuse_if_undone(db, job["_id"])
    query = job_selection_query(db, job, entity)
    deleted = delete_records(db, storage, job["account_id"], job["_id"], entity, query, progress, batch_size=batch_size)
    return {"deleted": deleted, "attachments_skipped": trash.files_skipped(db, job["account_id"], job["_id"])}
