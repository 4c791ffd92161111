"""Mass operations through the API and a real worker, on seeded data of two accounts and two users each."""

from __future__ import annotations

import pytest
from bson import ObjectId

from crm_workers.adapters.storage import storage_from_settings
from crm_workers.services import stage_events
from tests.conftest import Tenant, wait_for, wait_for_job
from tests.e2e.mass.seed import exact_snapshot, orphans, seed, snapshot


@pytest.fixture
def store(settings):
    return storage_from_settings(settings)


@pytest.fixture
def world(db, store, tenant, other_tenant):
    mine, theirs = seed(db, tenant, store), seed(db, other_tenant, store)
    return {"mine": mine, "theirs": theirs, "theirs_before": snapshot(db, other_tenant.account_id)}


def run(client, db, tenant, path, body, *, method="post", **headers) -> dict:
    response = getattr(client, method)(path, json=body, headers=tenant.headers(**headers))
    assert response.status_code == 202, response.get_json()
    return wait_for_job(db, response.get_json()["id"])


def assert_other_account_untouched(db, other_tenant, world):
    assert snapshot(db, other_tenant.account_id) == world["theirs_before"]


def test_bulk_delete_of_contacts_cascades_leaves_no_orphan_and_undo_restores_exactly(
    client, db, worker, store, tenant, other_tenant, world
):
    before = snapshot(db, tenant.account_id)
    doomed = [str(world["mine"]["people"][0]), str(world["mine"]["people"][1]), str(world["mine"]["business"])]

    job = run(client, db, tenant, "/v1/crm/contacts/bulk-delete", {"ids": doomed})

    assert job["status"] == "completed" and job["result"] == {"deleted": 3, "attachments_skipped": 0}
    assert job["progress"]["total"] == 3 and job["progress"]["processed"] == 3
    gone = [ObjectId(i) for i in doomed]
    assert db["crm.contacts"].count_documents({"_id": {"$in": gone}}) == 0
    assert db["crm.notes"].count_documents({"contact_id": {"$in": gone}}) == 0
    assert db["crm.reminders"].count_documents({"contact_id": {"$in": gone}}) == 0
    assert db["crm.activity"].count_documents({"entity_id": {"$in": gone}}) == 0
    assert orphans(db, tenant.account_id) == []
    assert not store.exists(world["mine"]["attachment"])  # the attachment went with its note
    assert_other_account_untouched(db, other_tenant, world)

    undo = run(client, db, tenant, f"/v1/crm/jobs/{job['_id']}/undo", {})

    assert undo["status"] == "completed" and undo["type"] == "trash.restore"
    assert snapshot(db, tenant.account_id) == before
    assert store.exists(world["mine"]["attachment"])
    assert_other_account_untouched(db, other_tenant, world)


def test_bulk_delete_by_filter_under_owner_only_deletes_only_the_users_own(client, db, worker, store):
    acct = Tenant(db, visibility="owner_only")
    ids = seed(db, acct, store)

    job = run(client, db, acct, "/v1/crm/contacts/bulk-delete", {"filter": {"type": "person"}}, owner=False)

    left = list(db["crm.contacts"].find({"account_id": acct.account_id, "type": "person"}))
    assert job["result"]["deleted"] == 3 and len(left) == 3
    assert all(c["owner"] == acct.owner_uid for c in left)
    assert orphans(db, acct.account_id) == [] and len(ids["people"]) == 6


def test_bulk_delete_of_deals_takes_their_notes_reminders_and_activity_and_undo_brings_them_back(
    client, db, worker, tenant, other_tenant, world
):
    before = snapshot(db, tenant.account_id)
    stage = str(world["mine"]["stages"][0])

    dry = client.post(
        "/v1/crm/deals/bulk-delete?dry_run=1", json={"filter": {"stage_id": stage}}, headers=tenant.headers()
    )
    job = run(client, db, tenant, "/v1/crm/deals/bulk-delete", {"filter": {"stage_id": stage}})

    assert dry.get_json() == {"matched": 2} and job["result"]["deleted"] == 2
    assert db["crm.deals"].count_documents({"account_id": tenant.account_id}) == 2
    assert db["crm.notes"].count_documents({"account_id": tenant.account_id, "deal_id": world["mine"]["deals"][0]}) == 0
    assert orphans(db, tenant.account_id) == []
    assert_other_account_untouched(db, other_tenant, world)
    run(client, db, tenant, f"/v1/crm/jobs/{job['_id']}/undo", {})
    assert snapshot(db, tenant.account_id) == before


def test_a_cancelled_bulk_delete_stops_between_batches_with_consistent_data(client, db, worker, tenant, hold):
    seed(db, tenant, None, people=50)
    held = hold(tenant.account_id, after_processed=20)  # between the second and the third batch of 10
    response = client.post(
        "/v1/crm/contacts/bulk-delete", json={"filter": {"type": "person"}}, headers=tenant.headers()
    )
    job_id = response.get_json()["id"]
    assert held.reached()["processed"] == 20

    client.post(f"/v1/crm/jobs/{job_id}/cancel", headers=tenant.headers())
    held.release_for_the_next_checkpoint_to_write()
    job = wait_for_job(db, job_id)

    assert job["status"] == "cancelled"
    left = db["crm.contacts"].count_documents({"account_id": tenant.account_id, "type": "person"})
    assert left == 30 and job["progress"]["processed"] == 20 and job["progress"]["total"] == 50
    assert orphans(db, tenant.account_id) == []


def test_a_small_job_runs_while_a_big_delete_is_running(client, db, worker, tenant, other_tenant, hold):
    seed(db, tenant, None, people=50)
    held = hold(tenant.account_id, after_processed=10)  # the big delete stays running until released
    big = client.post("/v1/crm/contacts/bulk-delete", json={"filter": {}}, headers=tenant.headers()).get_json()
    held.reached()
    tag = db["crm.tags"].insert_one({"account_id": other_tenant.account_id, "name": "Tiny"}).inserted_id

    small = client.delete(f"/v1/crm/tags/{tag}", headers=other_tenant.headers()).get_json()

    done = wait_for_job(db, small["id"], timeout=10)
    assert done["status"] == "completed" and db["crm.tags"].find_one({"_id": tag}) is None
    assert db["queues"].find_one({"_id": ObjectId(big["id"])})["status"] == "running"
    held.release()
    assert wait_for_job(db, big["id"])["status"] == "completed"
    assert db["crm.contacts"].count_documents({"account_id": tenant.account_id}) == 0


def test_bulk_update_sets_owner_and_custom_fields_and_adds_and_removes_tags(
    client, db, worker, tenant, other_tenant, world
):
    people = [str(p) for p in world["mine"]["people"][:3]]
    body = {
        "ids": people,
        "set": {"owner": str(tenant.user_uid), "custom.tier": "silver"},
        "tags_add": ["Brand New", "VIP"],
        "tags_remove": ["Old", str(world["mine"]["tags"]["VIP"])],
    }

    job = run(client, db, tenant, "/v1/crm/contacts/bulk-update", body)

    assert job["result"] == {"updated": 3}
    new_tag = db["crm.tags"].find_one({"account_id": tenant.account_id, "name": "Brand New"})
    for c in db["crm.contacts"].find({"_id": {"$in": [ObjectId(p) for p in people]}}):
        assert c["owner"] == tenant.user_uid and c["custom_fields"]["tier"] == "Silver"
        assert new_tag["_id"] in c["tags"] and world["mine"]["tags"]["VIP"] not in c["tags"]
    untouched = db["crm.contacts"].find_one({"_id": world["mine"]["people"][4]})
    assert untouched["owner"] == tenant.owner_uid and untouched["custom_fields"]["tier"] == "Gold"
    assert_other_account_untouched(db, other_tenant, world)


def test_removing_a_locked_tag_by_mass_update_is_409_naming_it(client, db, tenant, world):
    response = client.post(
        "/v1/crm/contacts/bulk-update", json={"filter": {}, "tags_remove": ["locked"]}, headers=tenant.headers()
    )

    assert response.status_code == 409 and response.get_json()["error"]["details"] == {"tags": ["Locked"]}
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_moving_deals_to_a_stage_records_entry_activity_and_calls_the_automation_hook(
    client, db, worker, tenant, other_tenant, world
):
    won = world["mine"]["stages"][1]
    seen = []
    stage_events.STAGE_ENTERED_HOOKS.append(lambda db_, account, moves, job_id: seen.extend(moves))
    try:
        job = run(client, db, tenant, "/v1/crm/deals/bulk-update", {"filter": {}, "set": {"stage_id": str(won)}})
    finally:
        stage_events.STAGE_ENTERED_HOOKS.pop()

    assert job["result"] == {"updated": 4}
    deals = list(db["crm.deals"].find({"account_id": tenant.account_id}))
    assert all(d["stage_id"] == won for d in deals)
    moved = {d["_id"] for d in deals if d.get("stage_entered_at")}
    assert moved == {world["mine"]["deals"][0], world["mine"]["deals"][2]}  # the two already in Won did not move
    assert sorted(m[0] for m in seen) == sorted(moved)
    assert db["crm.activity"].count_documents({"account_id": tenant.account_id, "type": "stage_change"}) == 2
    assert_other_account_untouched(db, other_tenant, world)


def queued_behind_held_exports(client, db, tenant, hold, path, body) -> tuple[ObjectId, list]:
    """The account's two heavy slots taken by held exports: the job asked for waits queued, not yet run."""
    holds = [hold(tenant.account_id, job_type="contacts.export") for _ in range(2)]
    for h in holds:
        assert client.post("/v1/crm/contacts/export", json={}, headers=tenant.headers()).status_code == 202
        h.reached()
    response = client.post(path, json=body, headers=tenant.headers())
    assert response.status_code == 202, response.get_json()
    job_id = ObjectId(response.get_json()["id"])
    assert db["queues"].find_one({"_id": job_id})["status"] == "queued"
    return job_id, holds


def first_run_ended(db, job_id, holds) -> dict:
    """Release the slots and wait for the end of the job's first run: failed, completed, or queued for a retry."""
    for h in holds:
        h.release()
    return wait_for(
        lambda: (doc := db["queues"].find_one({"_id": job_id}))["attempts"] >= 1 and doc["status"] != "running" and doc,
        timeout=60,
        what=f"the first run of job {job_id} to end",
    )


def assert_failed_once_naming_the_stage(job, stage) -> None:
    assert job["status"] == "failed" and job["attempts"] == 1  # at once: never sent back for a retry
    assert job["error"]["code"] == "stage_not_found" and "reference" not in job["error"]  # ours, not internal
    assert str(stage) in job["error"]["message"]


def test_a_bulk_update_to_a_stage_deleted_before_it_runs_fails_once_naming_it_and_changes_nothing(
    client, db, worker, tenant, other_tenant, world, hold
):
    lost = world["mine"]["stages"][2]  # no deal is in it yet
    body = {"filter": {}, "set": {"stage_id": str(lost), "status": "won"}, "tags_add": ["Brand New"]}
    job_id, holds = queued_behind_held_exports(client, db, tenant, hold, "/v1/crm/deals/bulk-update", body)
    db["crm.pipeline.stages"].delete_one({"_id": lost, "account_id": tenant.account_id})
    before = exact_snapshot(db, tenant.account_id)

    job = first_run_ended(db, job_id, holds)

    assert_failed_once_naming_the_stage(job, lost)
    seen = client.get(f"/v1/crm/jobs/{job_id}", headers=tenant.headers()).get_json()
    assert seen["status"] == "failed" and seen["error"] == job["error"]  # what the user is shown
    assert exact_snapshot(db, tenant.account_id) == before  # no deal moved or won, no tag created
    assert_other_account_untouched(db, other_tenant, world)


def test_a_bulk_update_job_naming_another_accounts_stage_fails_once_and_touches_neither_account(
    client, db, worker, tenant, other_tenant, world, hold
):
    theirs = world["theirs"]["stages"][2]
    refused = client.post(
        "/v1/crm/deals/bulk-update", json={"filter": {}, "set": {"stage_id": str(theirs)}}, headers=tenant.headers()
    )
    assert refused.status_code == 404 and refused.get_json()["error"]["details"] == {"field": "set.stage_id"}
    # The API refuses it, so only a record written some other way names it: the worker must refuse it too.
    body = {"filter": {}, "set": {"stage_id": str(world["mine"]["stages"][2])}}
    job_id, holds = queued_behind_held_exports(client, db, tenant, hold, "/v1/crm/deals/bulk-update", body)
    db["queues"].update_one({"_id": job_id}, {"$set": {"params.set.stage_id": str(theirs)}})
    before = exact_snapshot(db, tenant.account_id)

    job = first_run_ended(db, job_id, holds)

    assert_failed_once_naming_the_stage(job, theirs)
    assert exact_snapshot(db, tenant.account_id) == before
    assert_other_account_untouched(db, other_tenant, world)


def test_linking_adds_without_duplicates(client, db, worker, tenant, world):
    people = [str(p) for p in world["mine"]["people"]]
    new_biz = (
        db["crm.contacts"]
        .insert_one({"account_id": tenant.account_id, "type": "business", "name": "Initech", "tags": []})
        .inserted_id
    )
    deal = world["mine"]["deals"][0]

    for _ in range(2):
        run(client, db, tenant, "/v1/crm/contacts/link", {"ids": people, "business_id": str(new_biz)})
        run(client, db, tenant, "/v1/crm/contacts/link", {"ids": people[:3], "deal_id": str(deal)})

    for c in db["crm.contacts"].find({"_id": {"$in": [ObjectId(p) for p in people]}}):
        assert c["businesses"].count(new_biz) == 1
    contacts = db["crm.deals"].find_one({"_id": deal})["contacts"]
    assert sorted(map(str, contacts)) == sorted(people[:3])


def test_linking_to_another_accounts_business_is_404(client, db, tenant, other_tenant, world):
    body = {"filter": {}, "business_id": str(world["theirs"]["business"])}
    before = snapshot(db, tenant.account_id)
    response = client.post("/v1/crm/contacts/link", json=body, headers=tenant.headers())

    assert response.status_code == 404
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0  # no job was started
    assert snapshot(db, tenant.account_id) == before
    assert snapshot(db, other_tenant.account_id) == world["theirs_before"]


def test_deleting_a_field_unsets_it_in_every_record_of_the_account_only(
    client, db, worker, tenant, other_tenant, world
):
    field = db["crm.fields"].find_one({"account_id": tenant.account_id, "key": "tier"})

    job = run(client, db, tenant, f"/v1/crm/fields/{field['_id']}", None, method="delete")

    assert job["result"]["records_updated"] == 6
    still = {"account_id": tenant.account_id, "custom_fields.tier": {"$exists": 1}}
    assert db["crm.contacts"].count_documents(still) == 0
    assert db["crm.fields"].find_one({"_id": field["_id"]}) is None
    assert_other_account_untouched(db, other_tenant, world)


def test_a_stage_with_deals_needs_move_to_and_its_deals_move_there(client, db, worker, tenant, other_tenant, world):
    lead, won, lost = world["mine"]["stages"]

    refused = client.delete(f"/v1/crm/stages/{lead}", headers=tenant.headers())
    wrong = client.delete(f"/v1/crm/stages/{lead}?move_to={world['theirs']['stages'][1]}", headers=tenant.headers())
    job = run(client, db, tenant, f"/v1/crm/stages/{lead}?move_to={lost}", None, method="delete")

    assert refused.status_code == 409 and refused.get_json()["error"]["details"] == {"field": "move_to"}
    assert wrong.status_code == 400
    assert job["result"]["deals_moved"] == 2
    assert db["crm.pipeline.stages"].find_one({"_id": lead}) is None
    assert db["crm.deals"].count_documents({"account_id": tenant.account_id, "stage_id": lost}) == 2
    assert orphans(db, tenant.account_id) == []
    assert_other_account_untouched(db, other_tenant, world)


def test_deleting_a_pipeline_takes_its_stages_and_deals_with_cascades_and_undo_restores_it(
    client, db, worker, tenant, other_tenant, world
):
    before = snapshot(db, tenant.account_id)

    job = run(client, db, tenant, f"/v1/crm/pipelines/{world['mine']['pipeline']}", None, method="delete")

    assert job["result"]["deals_deleted"] == 4 and job["result"]["stages_deleted"] == 3
    for coll in ("crm.deals", "crm.pipelines", "crm.pipeline.stages", "crm.automations"):
        assert db[coll].count_documents({"account_id": tenant.account_id}) == 0
    assert db["crm.notes"].count_documents({"account_id": tenant.account_id, "deal_id": {"$exists": True}}) == 0
    assert orphans(db, tenant.account_id) == []
    assert_other_account_untouched(db, other_tenant, world)

    run(client, db, tenant, f"/v1/crm/jobs/{job['_id']}/undo", {})
    assert snapshot(db, tenant.account_id) == before


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/v1/crm/contacts/bulk-delete", {}, None),
        ("/v1/crm/contacts/bulk-delete", {"ids": ["nope"]}, "ids"),
        ("/v1/crm/contacts/bulk-update", {"filter": {}, "set": {"shoe_size": 9}}, "set.shoe_size"),
        ("/v1/crm/contacts/bulk-update", {"filter": {}, "set": {"custom.tier": "Bronze"}}, "set.custom.tier"),
        ("/v1/crm/contacts/bulk-update", {"filter": {}}, None),
        ("/v1/crm/deals/bulk-update", {"filter": {}, "set": {"status": "maybe"}}, "set.status"),
        ("/v1/crm/contacts/link", {"filter": {}}, None),
    ],
)
def test_bad_mass_requests_are_400(client, tenant, world, path, body, field):
    response = client.post(path, json=body, headers=tenant.headers())

    assert response.status_code == 400
    if field:
        details = response.get_json()["error"]["details"]
        fields = [d["field"] for d in details] if isinstance(details, list) else [details["field"]]
        assert field in fields


def test_dry_run_counts_the_selection_for_every_mass_operation_and_starts_nothing(client, db, tenant, world):
    counts = [
        client.post(f"/v1/crm/{p}?dry_run=1", json=b, headers=tenant.headers()).get_json()
        for p, b in [
            ("contacts/bulk-delete", {"filter": {"tags_any": ["VIP"]}}),
            ("contacts/bulk-update", {"filter": {"q": "p1"}, "set": {"owner": str(tenant.owner_uid)}}),
            ("contacts/link", {"ids": [str(world["mine"]["people"][0])], "deal_id": str(world["mine"]["deals"][0])}),
            ("deals/bulk-delete", {"filter": {"owner": str(tenant.user_uid)}}),
        ]
    ]

    assert counts == [{"matched": 3}, {"matched": 1}, {"matched": 1}, {"matched": 2}]
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_under_owner_only_a_users_update_link_and_deal_delete_touch_only_their_own_records(client, db, worker, store):
    acct = Tenant(db, visibility="owner_only")
    ids = seed(db, acct, store)
    business = ids["business"]  # owned by the owner: not visible to the user

    updated = run(
        client, db, acct, "/v1/crm/contacts/bulk-update", {"filter": {}, "set": {"custom.tier": "Silver"}}, owner=False
    )
    linked = run(
        client, db, acct, "/v1/crm/contacts/link", {"filter": {}, "deal_id": str(ids["deals"][1])}, owner=False
    )
    deleted = run(client, db, acct, "/v1/crm/deals/bulk-delete", {"filter": {}}, owner=False)

    assert updated["result"] == {"updated": 3} and linked["result"] == {"linked": 3}
    for c in db["crm.contacts"].find({"account_id": acct.account_id, "type": "person"}):
        assert c["custom_fields"]["tier"] == ("Silver" if c["owner"] == acct.user_uid else "Gold")
    assert deleted["result"] == {"deleted": 2, "attachments_skipped": 0}
    assert {d["owner"] for d in db["crm.deals"].find({"account_id": acct.account_id})} == {acct.owner_uid}
    assert db["crm.contacts"].find_one({"_id": business})["name"] == "Acme"
    assert orphans(db, acct.account_id) == []
    hidden = client.post(
        "/v1/crm/contacts/link", json={"filter": {}, "business_id": str(business)}, headers=acct.headers(owner=False)
    )
    assert hidden.status_code == 404  # the owner's business is not visible to the user


def test_a_job_keeps_the_rights_its_caller_had_when_asking_though_the_account_opens_up_before_it_runs(
    client, db, worker, store, hold
):
    acct = Tenant(db, visibility="owner_only")
    seed(db, acct, store)
    # The account's two heavy slots are taken by held exports: the user's update waits for a slot, queued.
    holds = [hold(acct.account_id, job_type="contacts.export") for _ in range(2)]
    for h in holds:
        assert client.post("/v1/crm/contacts/export", json={}, headers=acct.headers()).status_code == 202
        h.reached()
    response = client.post(
        "/v1/crm/contacts/bulk-update",
        json={"filter": {}, "set": {"custom.tier": "Silver"}},
        headers=acct.headers(owner=False),
    )
    assert response.status_code == 202
    assert db["queues"].find_one({"_id": ObjectId(response.get_json()["id"])})["status"] == "queued"

    db["_accounts"].update_one({"_id": acct.account_id}, {"$set": {"preferences.crm_visibility": "everyone"}})
    for h in holds:
        h.release()
    updated = wait_for_job(db, response.get_json()["id"], timeout=60)

    assert updated["status"] == "completed" and updated["result"] == {"updated": 3}
    for c in db["crm.contacts"].find({"account_id": acct.account_id, "type": "person"}):
        assert c["custom_fields"]["tier"] == ("Silver" if c["owner"] == acct.user_uid else "Gold")
