"""Undo of every destructive job, through the API and a real worker: the account's documents compared before
and after byte for byte (BSON: fields, their order, types and values)."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers.adapters.storage import storage_from_settings
from crm_workers.jobs import now
from crm_workers.services.mass import trash
from scheduler.app import build_scheduler
from tests.conftest import wait_for_job
from tests.e2e.mass.seed import exact_snapshot, orphans, seed

DAYS_30 = timedelta(days=30)


@pytest.fixture
def store(settings):
    return storage_from_settings(settings)


def start(client, tenant, path, body=None, *, method="post") -> str:
    response = getattr(client, method)(path, json=body, headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def run(client, db, tenant, path, body=None, *, method="post", timeout=30.0) -> dict:
    return wait_for_job(db, start(client, tenant, path, body, method=method), timeout=timeout)


def undo(client, db, tenant, job_id, *, timeout=30.0) -> dict:
    done = run(client, db, tenant, f"/v1/crm/jobs/{job_id}/undo", {}, timeout=timeout)
    assert done["type"] == "trash.restore" and done["status"] == "completed", done
    return done


def job(db, job_id) -> dict:
    return db["queues"].find_one({"_id": ObjectId(str(job_id))})


def entries(db, job_id, **query) -> list[dict]:
    return list(db["crm.trash"].find({"job_id": ObjectId(str(job_id)), **query}))


def persons(db, tenant) -> int:
    return db["crm.contacts"].count_documents({"account_id": tenant.account_id, "type": "person"})


def test_a_cancelled_bulk_delete_is_undone_exactly_and_its_trash_expires_30_days_after_its_end(
    client, db, worker, store, tenant, hold
):
    seed(db, tenant, store, people=50)
    before = exact_snapshot(db, tenant.account_id)
    held = hold(tenant.account_id, after_processed=20)
    job_id = start(client, tenant, "/v1/crm/contacts/bulk-delete", {"filter": {"type": "person"}})
    held.reached()
    trash.seal_finished(db, accounts=[tenant.account_id])
    running = entries(db, job_id)

    client.post(f"/v1/crm/jobs/{job_id}/cancel", headers=tenant.headers())
    held.release_for_the_next_checkpoint_to_write()
    cancelled = wait_for_job(db, job_id)
    trash.seal_finished(db, accounts=[tenant.account_id])

    assert running and all(e.get("expires_at") is None for e in running)  # its end is not known yet
    assert cancelled["status"] == "cancelled" and persons(db, tenant) == 30
    # Documents by their TTL, files by the purge: both 30 days after the job's end.
    assert {e.get("expires_at") or e["purge_at"] for e in entries(db, job_id)} == {cancelled["finished_at"] + DAYS_30}
    done = undo(client, db, tenant, job_id)
    assert done["result"]["complete"] is True and done["result"]["not_restored"] == []
    assert done["result"]["restored"]["documents"] == len(entries(db, job_id, kind="doc"))
    assert exact_snapshot(db, tenant.account_id) == before
    assert orphans(db, tenant.account_id) == []


def test_a_bulk_delete_that_failed_part_way_is_undone_exactly(client, db, worker, store, tenant):
    ids = seed(db, tenant, store, people=30)
    # The last person's note has an attachment the storage cannot read (a folder where its file should be):
    # the delete fails at that person's batch, after the batches before it (10 a batch in the tests).
    broken = f"accounts/{tenant.account_id}/attachments/{ObjectId()}/folder"
    store.path(broken).mkdir(parents=True)
    db["crm.notes"].insert_one(
        {
            "account_id": tenant.account_id,
            "contact_id": max(ids["people"]),
            "content": "x",
            "attachments": [{"key": broken}],
            "created_at": now(),
            "updated_at": now(),
        }
    )
    before = exact_snapshot(db, tenant.account_id)

    failed = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"filter": {"type": "person"}}, timeout=120)

    assert failed["status"] == "failed" and 0 < persons(db, tenant) < 30
    done = undo(client, db, tenant, failed["_id"])
    assert done["result"]["complete"] is True
    assert exact_snapshot(db, tenant.account_id) == before
    assert store.path(broken).is_dir()

    # The undone delete, retried, refuses to run again (`undone`): it never deletes what the undo put back.
    retried = client.post(f"/v1/crm/jobs/{failed['_id']}/retry", headers=tenant.headers())
    assert retried.status_code == 202, retried.get_json()
    again = wait_for_job(db, failed["_id"], timeout=60)
    assert again["status"] == "failed" and again["error"]["code"] == "undone"
    assert exact_snapshot(db, tenant.account_id) == before


def test_a_tag_delete_is_undone_exactly(client, db, worker, store, tenant, other_tenant):
    mine = seed(db, tenant, store)
    seed(db, other_tenant, store)
    before, theirs = exact_snapshot(db, tenant.account_id), exact_snapshot(db, other_tenant.account_id)
    vip = mine["tags"]["VIP"]

    deleted = run(client, db, tenant, f"/v1/crm/tags/{vip}", method="delete")

    assert deleted["result"]["contacts_updated"] == 3 and deleted["result"]["deals_updated"] == 4
    assert db["crm.tags"].find_one({"_id": vip}) is None
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id, "tags": vip}) == 0
    done = undo(client, db, tenant, deleted["_id"])
    assert done["result"]["restored"]["documents"] == 1 and done["result"]["restored"]["links"] == 7
    assert exact_snapshot(db, tenant.account_id) == before
    assert exact_snapshot(db, other_tenant.account_id) == theirs


def test_a_field_delete_and_every_value_is_undone_exactly(client, db, worker, store, tenant):
    mine = seed(db, tenant, store)
    # A value after `tier` on some records: undo puts `tier` back before it, where it was.
    db["crm.contacts"].update_many({"_id": {"$in": mine["people"][:2]}}, {"$set": {"custom_fields.region": "EU"}})
    before = exact_snapshot(db, tenant.account_id)
    field = db["crm.fields"].find_one({"account_id": tenant.account_id, "key": "tier"})

    deleted = run(client, db, tenant, f"/v1/crm/fields/{field['_id']}", method="delete")

    assert deleted["result"]["records_updated"] == 6
    still = {"account_id": tenant.account_id, "custom_fields.tier": {"$exists": 1}}
    assert db["crm.contacts"].count_documents(still) == 0
    done = undo(client, db, tenant, deleted["_id"])
    assert done["result"]["restored"]["fields"] == 6 and done["result"]["restored"]["documents"] == 1
    assert exact_snapshot(db, tenant.account_id) == before


def stage_with_automations(db, tenant, mine) -> tuple[ObjectId, ObjectId]:
    """An automation on Lead, and the Won automation's move_to_stage pointing at Lead."""
    lead, won, _ = mine["stages"]
    own = (
        db["crm.automations"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "pipeline_id": mine["pipeline"],
                "stage_id": lead,
                "trigger": "stage_entered",
                "enabled": True,
                "delay_seconds": 0,
                "actions": [{"type": "create_note", "params": {"content": "welcome"}}],
                "created_at": now(),
                "updated_at": now(),
            }
        )
        .inserted_id
    )
    pointing = db["crm.automations"].find_one({"account_id": tenant.account_id, "stage_id": won})["_id"]
    db["crm.automations"].update_one(
        {"_id": pointing},
        {
            "$set": {
                "actions": [
                    {"type": "add_tags", "params": {"tags": ["Old"]}},
                    {"type": "move_to_stage", "params": {"stage_id": str(lead)}},
                ]
            }
        },
    )
    return own, pointing


def test_a_stage_delete_with_its_automations_and_another_automations_move_is_undone_exactly(
    client, db, worker, store, tenant
):
    mine = seed(db, tenant, store)
    lead, _, lost = mine["stages"]
    own, pointing = stage_with_automations(db, tenant, mine)
    before = exact_snapshot(db, tenant.account_id)

    deleted = run(client, db, tenant, f"/v1/crm/stages/{lead}?move_to={lost}", method="delete")

    result = deleted["result"]
    assert result["deals_moved"] == 2 and result["automations_deleted"] == 1
    assert result["automations_disabled"] == [str(pointing)]
    assert db["crm.automations"].find_one({"_id": own}) is None
    disabled = db["crm.automations"].find_one({"_id": pointing})
    assert disabled["enabled"] is False and disabled["disabled_reason"]["code"] == "stage_deleted"
    stages = {str(s["_id"]) for s in db["crm.pipeline.stages"].find({"account_id": tenant.account_id})}
    for a in db["crm.automations"].find({"account_id": tenant.account_id, "enabled": True}):
        assert str(a["stage_id"]) in stages  # no enabled automation on, or moving deals to, a missing stage
        assert all(str(x["params"]["stage_id"]) in stages for x in a["actions"] if x["type"] == "move_to_stage")
    done = undo(client, db, tenant, deleted["_id"])
    assert done["result"]["restored"]["deals_moved_back"] == 2
    assert done["result"]["restored"]["automations_enabled"] == 1
    assert exact_snapshot(db, tenant.account_id) == before


def test_an_undo_moves_back_only_the_deals_still_where_the_delete_put_them_and_lists_the_others(
    client, db, worker, store, tenant
):
    mine = seed(db, tenant, store)
    lead, won, lost = mine["stages"]
    deleted = run(client, db, tenant, f"/v1/crm/stages/{lead}?move_to={lost}", method="delete")
    moved_on = mine["deals"][0]  # a user moves it on after the delete
    db["crm.deals"].update_one({"_id": moved_on}, {"$set": {"stage_id": won, "updated_at": now()}})

    done = undo(client, db, tenant, deleted["_id"])

    assert done["result"]["complete"] is False and done["result"]["not_restored_count"] == 1
    [listed] = done["result"]["not_restored"]
    assert listed["collection"] == "crm.deals" and listed["id"] == str(moved_on) and listed["code"] == "moved_since"
    assert db["crm.deals"].find_one({"_id": moved_on})["stage_id"] == won
    assert db["crm.deals"].find_one({"_id": mine["deals"][2]})["stage_id"] == lead
    assert done["progress"]["failed"] == 1


def test_an_undo_cannot_bring_back_a_tag_whose_name_was_taken_since_and_says_so(client, db, worker, store, tenant):
    mine = seed(db, tenant, store)
    deleted = run(client, db, tenant, f"/v1/crm/tags/{mine['tags']['Old']}", method="delete")
    taken = db["crm.tags"].insert_one({"account_id": tenant.account_id, "name": "old"}).inserted_id
    left = exact_snapshot(db, tenant.account_id)

    done = undo(client, db, tenant, deleted["_id"])

    codes = {(e["collection"], e["code"]) for e in done["result"]["not_restored"]}
    assert codes == {("crm.tags", "conflict"), ("crm.contacts", "depends")}
    assert done["result"]["not_restored_count"] == 4 and done["result"]["complete"] is False
    assert exact_snapshot(db, tenant.account_id) == left  # nothing half put back
    assert db["crm.tags"].find_one({"_id": taken})["name"] == "old"


def test_an_undo_on_the_last_day_restores_everything_and_keeps_the_trash_until_it_has_run(
    client, db, worker, store, tenant
):
    mine = seed(db, tenant, store)
    before = exact_snapshot(db, tenant.account_id)
    deleted = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(mine["people"][0])]})
    # It ended 29 days and 23 hours ago.
    db["queues"].update_one({"_id": deleted["_id"]}, {"$set": {"finished_at": now() - DAYS_30 + timedelta(hours=1)}})
    trash.seal_finished(db, accounts=[tenant.account_id])
    ended = job(db, deleted["_id"])["finished_at"]
    kept = entries(db, deleted["_id"])

    assert {e["expires_at"] for e in kept if e["kind"] != "file"} == {ended + DAYS_30}
    [file] = [e for e in kept if e["kind"] == "file"]
    assert file["purge_at"] == ended + DAYS_30 and "expires_at" not in file  # no TTL may take a file's entry
    undo_id = start(client, tenant, f"/v1/crm/jobs/{deleted['_id']}/undo", {})
    grace = now() + trash.RESTORE_GRACE - timedelta(minutes=1)
    assert all(e.get("expires_at", e.get("purge_at")) > grace for e in entries(db, deleted["_id"]))
    assert wait_for_job(db, undo_id)["result"]["complete"] is True
    assert exact_snapshot(db, tenant.account_id) == before
    assert store.exists(mine["attachment"])


def test_an_undo_after_30_days_is_refused(client, db, worker, tenant):
    seed(db, tenant)
    deleted = run(client, db, tenant, "/v1/crm/deals/bulk-delete", {"filter": {}})
    db["queues"].update_one({"_id": deleted["_id"]}, {"$set": {"finished_at": now() - DAYS_30 - timedelta(minutes=1)}})

    response = client.post(f"/v1/crm/jobs/{deleted['_id']}/undo", headers=tenant.headers())

    assert response.status_code == 409 and response.get_json()["error"]["code"] == "undo_expired"


def test_the_scheduler_sets_the_expiry_of_the_trash_of_ended_jobs(client, db, broker, worker, settings, tenant):
    seed(db, tenant)
    deleted = run(client, db, tenant, "/v1/crm/deals/bulk-delete", {"filter": {}})
    sched, lease = build_scheduler(
        settings.with_(redis_namespace=f"{settings.redis_namespace}-{ObjectId()}"), blocking=False, db=db, broker=broker
    )

    acted = sched.get_job("trash-expiry").func()

    lease.release()
    assert acted["sealed"] >= 1
    assert {e["expires_at"] for e in entries(db, deleted["_id"])} == {job(db, deleted["_id"])["finished_at"] + DAYS_30}


def test_trash_files_are_purged_with_their_documents_never_before(client, db, worker, store, tenant):
    mine = seed(db, tenant, store)
    deleted = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(mine["people"][0])]})
    db["queues"].update_one({"_id": deleted["_id"]}, {"$set": {"finished_at": now() - DAYS_30 - timedelta(days=1)}})
    trash.seal_finished(db, accounts=[tenant.account_id])
    [file] = entries(db, deleted["_id"], kind="file")
    in_trash = trash.trash_key(deleted["_id"], mine["attachment"])

    trash.purge_old_files(db, store, at=file["purge_at"] - timedelta(seconds=1), accounts=[tenant.account_id])
    assert store.exists(in_trash) and entries(db, deleted["_id"], kind="file")
    trash.purge_old_files(db, store, at=file["purge_at"] + timedelta(seconds=1), accounts=[tenant.account_id])

    assert not store.exists(in_trash) and entries(db, deleted["_id"]) == []


def test_a_trash_file_that_cannot_be_purged_is_marked_and_the_others_are_purged(client, db, worker, store, tenant):
    mine = seed(db, tenant, store)
    deleted = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(mine["people"][0])]})
    past = now() - timedelta(days=1)
    bad = (
        db["crm.trash"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "job_id": deleted["_id"],
                "collection": "files",
                "record_id": "../../outside",
                "kind": "file",
                "field": None,
                "purge_at": past,
            }
        )
        .inserted_id
    )
    db["crm.trash"].update_many(
        {"job_id": deleted["_id"], "kind": "file", "_id": {"$ne": bad}}, {"$set": {"purge_at": past}}
    )

    purged = trash.purge_old_files(db, store, accounts=[tenant.account_id])

    assert purged["failed"] >= 1 and purged["purged"] >= 1
    assert not store.exists(trash.trash_key(deleted["_id"], mine["attachment"]))
    marked = db["crm.trash"].find_one({"_id": bad})
    assert marked["error"] and marked["failed_at"]


def test_a_cancelled_undo_run_again_continues_and_completes_exactly(client, db, worker, store, tenant, hold):
    seed(db, tenant, store, people=250)
    before = exact_snapshot(db, tenant.account_id)
    deleted = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"filter": {"type": "person"}}, timeout=120)
    held = hold(tenant.account_id, after_processed=100)  # after the first batch of 100 trash entries
    first = start(client, tenant, f"/v1/crm/jobs/{deleted['_id']}/undo", {})
    held.reached()

    client.post(f"/v1/crm/jobs/{first}/cancel", headers=tenant.headers())
    held.release_for_the_next_checkpoint_to_write()
    cancelled = wait_for_job(db, first)

    restored = db["crm.trash"].count_documents({"job_id": deleted["_id"], "outcome": "restored"})
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["processed"] == restored == 100
    assert persons(db, tenant) < 250
    again = client.post(f"/v1/crm/jobs/{deleted['_id']}/undo", headers=tenant.headers())
    assert again.status_code == 202 and again.get_json()["params"]["continues"] == first
    done = wait_for_job(db, again.get_json()["id"])
    assert done["status"] == "completed" and done["result"]["complete"] is True
    assert done["result"]["restored"]["documents"] == len(entries(db, deleted["_id"], kind="doc"))
    assert exact_snapshot(db, tenant.account_id) == before
    third = client.post(f"/v1/crm/jobs/{deleted['_id']}/undo", headers=tenant.headers())
    assert third.status_code == 409 and third.get_json()["error"]["code"] == "already_undone"


def test_a_note_attachment_key_of_another_account_is_never_touched_and_is_counted(
    client, db, worker, store, tenant, other_tenant, caplog
):
    mine, theirs = seed(db, tenant, store), seed(db, other_tenant, store)
    their_key = theirs["attachment"]
    their_bytes = store.open(their_key).read()
    person = mine["people"][2]
    sneaky = [
        {"key": their_key},
        {"key": f"accounts/{tenant.account_id}/../{other_tenant.account_id}/x.pdf"},
        {"key": 42},
    ]
    db["crm.notes"].insert_one(
        {
            "account_id": tenant.account_id,
            "contact_id": person,
            "content": "x",
            "attachments": sneaky,
            "created_at": now(),
            "updated_at": now(),
        }
    )
    theirs_before = exact_snapshot(db, other_tenant.account_id)
    caplog.set_level(logging.WARNING, logger="crm.trash")

    deleted = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(person)]})

    assert deleted["status"] == "completed" and deleted["result"]["attachments_skipped"] == 3
    assert store.open(their_key).read() == their_bytes
    assert not store.exists(trash.trash_key(deleted["_id"], their_key))
    assert sum("is not under accounts/" in r.getMessage() for r in caplog.records) == 3
    # A trash entry naming another account's key (an old one, or forged) is not written back either.
    planted = f"accounts/{other_tenant.account_id}/attachments/planted.pdf"
    store.put_stream(trash.trash_key(deleted["_id"], planted), io.BytesIO(b"planted"))
    db["crm.trash"].insert_one(
        {
            "account_id": tenant.account_id,
            "job_id": deleted["_id"],
            "collection": "files",
            "record_id": planted,
            "kind": "file",
            "field": None,
        }
    )
    done = undo(client, db, tenant, deleted["_id"])
    assert [e["code"] for e in done["result"]["not_restored"]] == ["key_outside_account"]
    assert not store.exists(planted) and store.open(their_key).read() == their_bytes
    assert exact_snapshot(db, other_tenant.account_id) == theirs_before
    assert db["crm.notes"].find_one({"contact_id": person, "account_id": tenant.account_id})["attachments"] == sneaky


def test_a_deleted_attachment_waits_under_the_trash_prefix_until_the_scheduler_purges_it_with_its_entries(
    client, db, broker, worker, settings, store, tenant
):
    mine = seed(db, tenant, store)
    key = mine["attachment"]
    deleted = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(mine["people"][0])]})
    in_trash = f"trash/{deleted['_id']}/{key}"  # the README's layout, spelled out rather than asked of the code

    assert not store.exists(key) and store.open(in_trash).read() == b"%PDF contract"
    sched, lease = build_scheduler(
        settings.with_(redis_namespace=f"{settings.redis_namespace}-{ObjectId()}"), blocking=False, db=db, broker=broker
    )
    try:
        sched.get_job("trash-expiry").func()  # seals: expiry from the job's end, 30 days away
        assert store.exists(in_trash) and entries(db, deleted["_id"], kind="file")
        db["queues"].update_one(
            {"_id": deleted["_id"]}, {"$set": {"finished_at": now() - DAYS_30 - timedelta(minutes=1)}}
        )
        # As if the job had ended 30 days ago and nothing was sealed yet: one run seals from that end and purges.
        db["crm.trash"].update_many({"job_id": deleted["_id"]}, {"$unset": {"expires_at": "", "purge_at": ""}})
        acted = sched.get_job("trash-expiry").func()
    finally:
        lease.release()

    assert acted["purged"] >= 1
    assert not store.exists(in_trash) and not store.exists(key)
    assert entries(db, deleted["_id"], kind="file") == []
    ttl = [ix for ix in db["crm.trash"].list_indexes() if "expireAfterSeconds" in ix]
    assert [(dict(ix["key"]), ix["expireAfterSeconds"]) for ix in ttl] == [({"expires_at": 1}, 0)]
