"""Deals get `closed_at` when won or lost: bulk updates, imports (the file's close date), and a one-off
migration for deals closed before the field existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from crm_workers.jobs import now
from crm_workers.services.migrations import backfill_closed_at, run_migrations
from tests.conftest import wait_for_job
from tests.e2e.imports.helpers import add_pipeline, run_import

LONG_AGO = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def deal(db, tenant, pipeline, stage, name, **fields) -> ObjectId:
    ts = fields.pop("created_at", now())
    return (
        db["crm.deals"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "name": name,
                "pipeline_id": pipeline,
                "stage_id": stage,
                "status": "open",
                "created_at": ts,
                "updated_at": ts,
                **fields,
            }
        )
        .inserted_id
    )


def bulk_status(client, db, tenant, ids, status) -> dict:
    response = client.post(
        "/v1/crm/deals/bulk-update",
        headers=tenant.headers(),
        json={"filter": {"ids": [str(i) for i in ids]}, "set": {"status": status}},
    )
    assert response.status_code == 202, response.get_json()
    return wait_for_job(db, response.get_json()["id"])


def test_a_bulk_update_closing_deals_dates_them_once_and_reopening_clears_it(client, db, worker, tenant):
    pipeline, (lead, _) = add_pipeline(db, tenant.account_id)
    fresh = deal(db, tenant, pipeline, lead, "fresh")
    old_win = deal(db, tenant, pipeline, lead, "old win", status="won", closed_at=LONG_AGO)
    before = now()

    assert bulk_status(client, db, tenant, [fresh, old_win], "won")["status"] == "completed"

    got = {d["name"]: d for d in db["crm.deals"].find({"account_id": tenant.account_id})}
    assert got["fresh"]["status"] == "won" and got["fresh"]["closed_at"] >= before - timedelta(seconds=1)
    assert got["old win"]["closed_at"] == LONG_AGO  # already won: its date stays

    bulk_status(client, db, tenant, [fresh], "open")
    assert db["crm.deals"].find_one({"_id": fresh})["closed_at"] is None


def test_an_import_takes_a_closed_deals_close_date_and_an_open_deal_has_none(client, db, worker, tenant):
    add_pipeline(db, tenant.account_id, "Sales", "USD", stages=("Lead", "Won", "Lost"))
    before = now()
    content = (
        b"Deal Name,Pipeline,Stage,Amount,Status,Close Date,Deal ID\n"
        b"Dated win,Sales,Won,100,won,2025-01-31,d1\n"
        b"Undated loss,Sales,Lost,50,lost,,d2\n"
        b"Open one,Sales,Lead,10,open,2027-05-01,d3\n"
    )

    job = run_import(client, db, tenant, content, "deals.csv", entity="deals")

    assert job["result"]["counts"]["created"] == 3, job["result"]
    got = {d["name"]: d for d in db["crm.deals"].find({"account_id": tenant.account_id})}
    assert got["Dated win"]["closed_at"] == datetime(2025, 1, 31, tzinfo=UTC)
    assert got["Undated loss"]["closed_at"] >= before - timedelta(seconds=1)
    assert got["Open one"].get("closed_at") is None

    # The same file again changes nothing; then the open deal, won in the file, is dated by the import.
    again = run_import(client, db, tenant, content, "deals.csv", entity="deals")
    assert again["result"]["unchanged"] == 3, again["result"]
    later = run_import(
        client, db, tenant, content.replace(b"Lead,10,open,2027-05-01", b"Won,10,won,"), "deals.csv", entity="deals"
    )
    assert later["result"]["unchanged"] == 2, later["result"]
    assert db["crm.deals"].find_one({"_id": got["Open one"]["_id"]})["closed_at"] >= before - timedelta(seconds=1)


def test_the_migration_dates_deals_closed_before_from_their_last_stage_change_else_updated_at(db, tenant):
    pipeline, (lead, won) = add_pipeline(db, tenant.account_id)
    moved = deal(db, tenant, pipeline, won, "moved", status="won", created_at=LONG_AGO - timedelta(days=9))
    quiet = deal(db, tenant, pipeline, won, "quiet", status="lost", created_at=LONG_AGO - timedelta(days=9))
    db["crm.deals"].update_one({"_id": quiet}, {"$set": {"updated_at": LONG_AGO}})
    still_open = deal(db, tenant, pipeline, lead, "open")
    for days in (5, 3):  # its last stage change counts
        db["crm.activity"].insert_one(
            {
                "account_id": tenant.account_id,
                "entity_type": "deal",
                "entity_id": moved,
                "type": "stage_change",
                "created_at": LONG_AGO - timedelta(days=days),
            }
        )

    changed = backfill_closed_at(db)

    assert changed >= 2
    assert db["crm.deals"].find_one({"_id": moved})["closed_at"] == LONG_AGO - timedelta(days=3)
    assert db["crm.deals"].find_one({"_id": quiet})["closed_at"] == LONG_AGO
    assert "closed_at" not in db["crm.deals"].find_one({"_id": still_open})
    assert backfill_closed_at(db) == 0  # once: nothing left to date
    run_migrations(db)
    assert db["crm.migrations"].find_one({"_id": "deals.closed_at"})
    assert run_migrations(db) == {}  # recorded as done: not run at the next start
