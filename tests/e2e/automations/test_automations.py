"""Stage automations through the API and a real worker: every action, delays, loops, exactly-once, retries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from crm_workers import jobs
from crm_workers.adapters import webhooks as webhook_adapter
from crm_workers.domain.webhooks import WebhookRefused, check_url
from crm_workers.jobs import now
from crm_workers.services.automations.run import fire_delayed, run_automations
from tests.conftest import APP_SECRET, wait_for, wait_for_job
from tests.hook_receiver import HookReceiver


@pytest.fixture(scope="module")
def hooks():
    receiver = HookReceiver(signed_with=APP_SECRET)
    yield receiver
    receiver.stop()


@pytest.fixture
def crm(db, tenant):
    """A pipeline (Lead, Qualified, Won), a deal in Lead owned by the owner, tags Cold and VIP."""
    a, ts = tenant.account_id, now()
    pid = db["crm.pipelines"].insert_one({"account_id": a, "name": "Sales", "currency": "USD"}).inserted_id
    stages = (
        db["crm.pipeline.stages"]
        .insert_many(
            [
                {"account_id": a, "pipeline_id": pid, "name": n, "position": i}
                for i, n in enumerate(["Lead", "Qualified", "Won"])
            ]
        )
        .inserted_ids
    )
    cold = db["crm.tags"].insert_one({"account_id": a, "name": "Cold"}).inserted_id
    deal = (
        db["crm.deals"]
        .insert_one(
            {
                "account_id": a,
                "name": "Big",
                "pipeline_id": pid,
                "stage_id": stages[0],
                "owner": tenant.owner_uid,
                "tags": [cold],
                "contacts": [],
                "status": "open",
                "created_at": ts,
                "updated_at": ts,
            }
        )
        .inserted_id
    )
    return {"pipeline": pid, "stages": stages, "deal": deal, "cold": cold}


def direct_job(db, tenant, crm, stage, event_id):
    """An automations.run job claimed as a worker would, to call the service directly."""
    job, _ = jobs.create_job(
        db,
        tenant.account_id,
        "automations.run",
        {"deal_id": str(crm["deal"]), "stage_id": str(stage), "event_id": event_id, "depth": 0},
    )
    return jobs.claim(db, job["_id"], stale_seconds=60)


def automation(db, tenant, crm, stage, actions, **extra):
    return (
        db["crm.automations"]
        .insert_one(
            {
                "account_id": tenant.account_id,
                "pipeline_id": crm["pipeline"],
                "stage_id": stage,
                "trigger": "stage_entered",
                "enabled": True,
                "delay_seconds": 0,
                "actions": actions,
                "created_at": now(),
                **extra,
            }
        )
        .inserted_id
    )


def trigger(client, db, tenant, crm, stage, event_id=None, **headers):
    body = {"deal_id": str(crm["deal"]), "stage_id": str(stage)} | ({"event_id": event_id} if event_id else {})
    response = client.post("/v1/crm/automations/trigger", json=body, headers=tenant.headers(**headers))
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def logs(db, automation_id):
    return list(db["automation.logs"].find({"automation_id": automation_id}).sort("started_at", 1))


def test_every_action_type_runs_in_order_and_is_logged(client, db, worker, tenant, crm, hooks, socket_receiver):
    qualified = crm["stages"][1]
    aid = automation(
        db,
        tenant,
        crm,
        qualified,
        [
            {"type": "add_tags", "params": {"tags": ["Hot", "VIP"]}},
            {"type": "remove_tags", "params": {"tags": ["cold"]}},
            {"type": "assign_owner", "params": {"users": [str(tenant.user_uid)]}},
            {
                "type": "create_reminder",
                "params": {
                    "title": "Call",
                    "due_in": {"amount": 2, "unit": "days"},
                    "assigned_to": "owner",
                    "category": "call",
                },
            },
            {"type": "create_note", "params": {"content": "Qualified by automation"}},
            {"type": "notify", "params": {"users": "owner", "title": "Deal qualified", "message": "Big"}},
            {"type": "webhook", "params": {"url": hooks.url}},
        ],
    )

    job = wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-all"))

    assert job["status"] == "completed" and job["result"] == {"automations": {str(aid): "succeeded"}}
    deal = db["crm.deals"].find_one({"_id": crm["deal"]})
    tags = {t["_id"]: t["name"] for t in db["crm.tags"].find({"account_id": tenant.account_id})}
    assert sorted(tags[t] for t in deal["tags"]) == ["Hot", "VIP"] and deal["owner"] == tenant.user_uid
    [reminder] = list(db["crm.reminders"].find({"deal_id": crm["deal"]}))
    assert reminder["assigned_to"] == [tenant.user_uid] and reminder["category"] == "call"
    assert timedelta(days=1, hours=23) < reminder["due_at"] - job["created_at"] < timedelta(days=2, hours=1)
    assert db["crm.notes"].find_one({"deal_id": crm["deal"]})["content"] == "Qualified by automation"
    [note] = list(db["crm.notifications"].find({"account_id": tenant.account_id, "type": "automation"}))
    assert note["uid"] == tenant.user_uid and socket_receiver.delivered(str(tenant.user_uid))
    [call] = hooks.for_event("evt-all")
    assert call["signed"] and call["body"]["deal"]["id"] == str(crm["deal"])
    [log] = logs(db, aid)
    assert log["status"] == "succeeded" and [a["status"] for a in log["actions"]] == ["succeeded"] * 7
    assert db["crm.activity"].count_documents({"entity_id": crm["deal"], "type": "stage_change"}) == 1


def test_the_same_event_id_twice_does_nothing_the_second_time(client, db, worker, tenant, crm, hooks):
    qualified = crm["stages"][1]
    automation(
        db,
        tenant,
        crm,
        qualified,
        [{"type": "create_note", "params": {"content": "once"}}, {"type": "webhook", "params": {"url": hooks.url}}],
    )

    first = trigger(client, db, tenant, crm, qualified, "evt-once")
    wait_for_job(db, first)
    second = trigger(client, db, tenant, crm, qualified, "evt-once")

    assert first == second
    assert db["crm.notes"].count_documents({"deal_id": crm["deal"]}) == 1 and len(hooks.for_event("evt-once")) == 1


# A server error, "too many requests", or no answer within the timeout: each transient.
@pytest.mark.parametrize("status", [503, 429, "slow"])
def test_a_transient_webhook_failure_is_retried_from_the_failed_action_only(
    client, db, worker, tenant, crm, hooks, status
):
    qualified = crm["stages"][1]
    aid = automation(
        db,
        tenant,
        crm,
        qualified,
        [
            {"type": "create_note", "params": {"content": "before"}},
            {"type": "webhook", "params": {"url": hooks.url}},
            {"type": "create_reminder", "params": {"title": "after", "due_in": {"amount": 1, "unit": "hours"}}},
        ],
    )
    hooks.statuses[:] = [status]

    job = wait_for_job(db, trigger(client, db, tenant, crm, qualified, f"evt-retry-{status}"), timeout=60)

    assert job["status"] == "completed" and job["attempts"] == 2
    assert [c["status"] for c in hooks.for_event(f"evt-retry-{status}")] == [status, 200]
    assert db["crm.notes"].count_documents({"deal_id": crm["deal"]}) == 1
    assert db["crm.reminders"].count_documents({"deal_id": crm["deal"]}) == 1
    [log] = logs(db, aid)
    assert log["status"] == "succeeded" and log["attempt"] == 2


def test_a_webhook_that_succeeded_is_not_sent_again_when_a_later_action_is_retried(
    client, db, worker, tenant, crm, hooks
):
    qualified = crm["stages"][1]
    automation(
        db,
        tenant,
        crm,
        qualified,
        [
            {"type": "webhook", "params": {"url": hooks.url + "?step=1"}},
            {"type": "webhook", "params": {"url": hooks.url + "?step=2"}},
        ],
    )
    hooks.statuses[:] = [200, 503]  # the first succeeds, the second fails (transient) once

    job = wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-skip-done"), timeout=60)

    assert job["status"] == "completed" and job["attempts"] == 2
    # The retry starts at the failed action: the first webhook went out once.
    assert [c["path"] for c in hooks.for_event("evt-skip-done")] == ["/hook?step=1", "/hook?step=2", "/hook?step=2"]


def test_a_permanent_failure_fails_the_run_with_its_reason_and_a_user_retry_resumes_it(
    client, db, worker, tenant, crm, hooks
):
    qualified = crm["stages"][1]
    aid = automation(
        db,
        tenant,
        crm,
        qualified,
        [
            {"type": "create_note", "params": {"content": "before"}},
            {"type": "webhook", "params": {"url": hooks.url}},
            {"type": "create_note", "params": {"content": "after"}},
        ],
    )
    hooks.statuses[:] = [410]

    wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-perm"))
    [log] = logs(db, aid)
    assert log["status"] == "failed" and "410" in log["actions"][1]["error"]
    assert [a["status"] for a in log["actions"]] == ["succeeded", "failed", "pending"]

    listed = client.get(f"/v1/crm/automations/{aid}/logs", headers=tenant.headers()).get_json()
    response = client.post(f"/v1/crm/automations/logs/{log['_id']}/retry", headers=tenant.headers())
    wait_for_job(db, response.get_json()["id"])

    assert listed["total"] == 1 and listed["logs"][0]["status"] == "failed"
    [log] = logs(db, aid)
    assert log["status"] == "succeeded"
    assert sorted(n["content"] for n in db["crm.notes"].find({"deal_id": crm["deal"]})) == ["after", "before"]


def test_the_automations_report_counts_real_runs_actions_and_a_retry_moves_a_failure_to_a_success(
    client, db, worker, tenant, crm, hooks
):
    qualified = crm["stages"][1]
    aid = automation(
        db,
        tenant,
        crm,
        qualified,
        [
            {"type": "create_note", "params": {"content": "before"}},
            {"type": "webhook", "params": {"url": hooks.url}},
        ],
    )
    hooks.statuses[:] = [410]
    wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-report-1"))
    wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-report-2"))  # the receiver answers 200 now
    days = {
        "from": (now() - timedelta(days=1)).date().isoformat(),
        "to": (now() + timedelta(days=1)).date().isoformat(),
    }

    def counted() -> dict:
        response = client.get(
            "/v1/crm/reports/automations", query_string={**days, "refresh": "1"}, headers=tenant.headers()
        )
        job = wait_for_job(db, response.get_json()["id"])
        assert job["status"] == "completed", job.get("error")
        [row] = job["result"]["data"]["automations"]
        assert row["automation_id"] == str(aid)
        return {k: row[k] for k in ("runs", "succeeded", "failed", "actions", "top_errors")}

    before = counted()
    [failed] = [log for log in logs(db, aid) if log["status"] == "failed"]
    wait_for_job(
        db, client.post(f"/v1/crm/automations/logs/{failed['_id']}/retry", headers=tenant.headers()).get_json()["id"]
    )
    after = counted()

    error = failed["actions"][1]["error"]
    assert "410" in error
    assert before == {
        "runs": 2,
        "succeeded": 1,
        "failed": 1,
        "actions": {"create_note": {"succeeded": 2, "failed": 0}, "webhook": {"succeeded": 1, "failed": 1}},
        "top_errors": [{"error": error, "count": 1}],
    }
    assert after == {
        "runs": 2,
        "succeeded": 2,
        "failed": 0,
        "actions": {"create_note": {"succeeded": 2, "failed": 0}, "webhook": {"succeeded": 2, "failed": 0}},
        "top_errors": [],
    }


def test_a_webhook_names_its_event_and_a_redirect_is_not_followed_but_fails_the_action(
    client, db, worker, tenant, crm, hooks
):
    qualified = crm["stages"][1]
    aid = automation(db, tenant, crm, qualified, [{"type": "webhook", "params": {"url": hooks.url}}])
    hooks.statuses[:] = [302]

    job = wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-redirect"))

    calls = hooks.for_event("evt-redirect")
    assert [c["path"] for c in calls] == ["/hook"]  # the Location it was given was not visited
    assert calls[0]["event_header"] == "evt-redirect" and calls[0]["signed"]
    [log] = logs(db, aid)
    assert log["status"] == "failed" and "302" in log["actions"][0]["error"]
    assert job["attempts"] == 1  # a redirect is no transient failure: not retried


def test_move_to_stage_chains_automations_until_the_loop_limit_stops_it(client, db, worker, tenant, crm):
    lead, qualified, _ = crm["stages"]
    to_lead = automation(db, tenant, crm, qualified, [{"type": "move_to_stage", "params": {"stage_id": str(lead)}}])
    to_qualified = automation(
        db, tenant, crm, lead, [{"type": "move_to_stage", "params": {"stage_id": str(qualified)}}]
    )

    trigger(client, db, tenant, crm, qualified, "evt-loop")
    wait_for(
        lambda: (
            db["automation.logs"].count_documents({"actions.status": "skipped", "account_id": tenant.account_id}) == 1
        ),
        timeout=30,
        what="the loop limit to stop the chain",
    )
    wait_for(
        lambda: db["queues"].count_documents({"account_id": tenant.account_id, "status": {"$ne": "completed"}}) == 0,
        what="every chained run to finish",
    )

    runs = logs(db, to_lead) + logs(db, to_qualified)
    assert len(runs) == 6 and max(r["depth"] for r in runs) == 5
    [stopped] = [r for r in runs if r["actions"][0]["status"] == "skipped"]
    assert "loop limit" in stopped["actions"][0]["error"]


def test_assign_owner_round_robin_is_fair_across_runs(client, db, worker, tenant, crm):
    users = [ObjectId() for _ in range(3)]
    qualified = crm["stages"][1]
    automation(db, tenant, crm, qualified, [{"type": "assign_owner", "params": {"users": [str(u) for u in users]}}])
    owners = []
    for i in range(6):
        wait_for_job(db, trigger(client, db, tenant, crm, qualified, f"evt-rr-{i}"))
        owners.append(db["crm.deals"].find_one({"_id": crm["deal"]})["owner"])

    assert owners == users + users


def test_a_delayed_automation_runs_only_if_the_deal_is_still_in_the_stage(client, db, broker, worker, tenant, crm):
    lead, qualified, won = crm["stages"]
    aid = automation(
        db, tenant, crm, qualified, [{"type": "create_note", "params": {"content": "later"}}], delay_seconds=3600
    )

    wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-stay"))
    [waiting] = logs(db, aid)
    assert waiting["status"] == "waiting" and db["crm.notes"].count_documents({"deal_id": crm["deal"]}) == 0
    db["crm.deals"].update_one({"_id": crm["deal"]}, {"$set": {"stage_id": qualified}})
    assert fire_delayed(db, broker, at=now(), accounts=[tenant.account_id]) == 0  # not yet due
    fire_delayed(db, broker, at=now() + timedelta(hours=2), accounts=[tenant.account_id])
    wait_for(lambda: logs(db, aid)[0]["status"] == "succeeded", what="the delayed run")
    assert db["crm.notes"].count_documents({"deal_id": crm["deal"]}) == 1

    wait_for_job(db, trigger(client, db, tenant, crm, qualified, "evt-moved"))
    db["crm.deals"].update_one({"_id": crm["deal"]}, {"$set": {"stage_id": won}})
    fire_delayed(db, broker, at=now() + timedelta(hours=2), accounts=[tenant.account_id])
    wait_for(lambda: logs(db, aid)[1]["status"] == "skipped", what="the delayed run to be skipped")
    assert "left the stage" in logs(db, aid)[1]["error"]
    assert db["crm.notes"].count_documents({"deal_id": crm["deal"]}) == 1


def test_moving_deals_by_mass_update_starts_the_stage_automations(client, db, worker, tenant, crm):
    qualified = crm["stages"][1]
    aid = automation(db, tenant, crm, qualified, [{"type": "create_note", "params": {"content": "moved in bulk"}}])

    response = client.post(
        "/v1/crm/deals/bulk-update", json={"filter": {}, "set": {"stage_id": str(qualified)}}, headers=tenant.headers()
    )
    wait_for_job(db, response.get_json()["id"])

    wait_for(lambda: logs(db, aid) and logs(db, aid)[0]["status"] == "succeeded", what="the automation run")
    assert db["crm.notes"].find_one({"deal_id": crm["deal"]})["content"] == "moved in bulk"


def test_webhooks_to_private_addresses_are_refused_by_default(settings, db, tenant, crm, hooks):
    qualified = crm["stages"][1]
    aid = automation(db, tenant, crm, qualified, [{"type": "webhook", "params": {"url": hooks.url}}])
    job = direct_job(db, tenant, crm, qualified, "evt-private")

    run_automations(db, settings.with_(webhook_allow_private=False), None, job, jobs.Progress(db, job))

    [log] = logs(db, aid)
    assert log["status"] == "failed" and "non-public address" in log["actions"][0]["error"]
    assert hooks.for_event("evt-private") == []


def _resolving_to(address):
    return lambda host, port: [(None, None, None, None, (address, port))]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.9",
        "172.16.5.5",
        "169.254.169.254",
        "::1",
        "0.0.0.0",
        "100.64.0.1",
        "100.100.100.200",  # carrier-grade NAT, incl. a cloud metadata address
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "198.18.0.1",
        "fc00::1",
        "fe80::1",
        "224.0.0.1",
    ],
)
def test_the_address_check_refuses_every_non_global_address(address):
    with pytest.raises(WebhookRefused):
        check_url("http://hooks.example.com/x", allow_private=False, resolve=_resolving_to(address))
    # the operator's switch lets it through, still pinned to the checked address
    assert (
        check_url("http://hooks.example.com/x", allow_private=True, resolve=_resolving_to(address)).address == address
    )


def test_a_public_address_passes_the_check():
    target = check_url("https://hooks.example.com/x?a=1", allow_private=False, resolve=_resolving_to("93.184.216.34"))
    assert (target.host, target.port, target.path, target.address) == (
        "hooks.example.com",
        443,
        "/x?a=1",
        "93.184.216.34",
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254\\@example.com/",  # one parser reads example.com, the client connects to .254
        "http://user:secret@example.com/",
        "http://example.com@169.254.169.254/",
        "http://example.com:99999/",
        "http://example.com:abc/",
        "http://example.com:0/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http:///x",
        "http://exa mple.com/",
        "http://example.com/\r\nX: y",
        "",
        "//example.com/x",
        "http://bücher.example/",  # the client connects to xn--bcher-kva.example, the other parser reads bücher
    ],
)
def test_urls_that_parsers_could_read_differently_are_refused(url):
    with pytest.raises(WebhookRefused):
        check_url(url, allow_private=True, resolve=_resolving_to("93.184.216.34"))


def test_the_host_is_resolved_once_and_the_request_goes_to_the_checked_address(hooks):
    port = int(hooks.url.rsplit(":", 1)[1].split("/")[0])
    lookups = []

    def resolve(host, port):
        lookups.append(host)
        return [(None, None, None, None, ("127.0.0.1", port))]

    # `hooks.invalid` has no DNS record: had the client looked it up again, the request could not be sent.
    target = check_url(f"http://hooks.invalid:{port}/pinned", allow_private=True, resolve=resolve)
    status = webhook_adapter.post(
        target, b'{"event_id": "evt-pinned"}', {"Content-Type": "application/json"}, timeout=5
    )

    assert status == 200 and lookups == ["hooks.invalid"]
    [call] = hooks.for_event("evt-pinned")
    assert call["host"] == f"hooks.invalid:{port}" and call["path"] == "/pinned"


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://169.254.169.254\\@example.com/", "backslashes"),
        ("http://hooks.example.com:99999/", "port"),
        ("http://user@hooks.example.com/", "user name"),
    ],
)
def test_a_bad_webhook_url_fails_the_run_permanently_with_its_reason(settings, db, tenant, crm, url, reason):
    qualified = crm["stages"][1]
    aid = automation(db, tenant, crm, qualified, [{"type": "webhook", "params": {"url": url}}])
    job = direct_job(db, tenant, crm, qualified, f"evt-bad-{reason}")

    run_automations(db, settings, None, job, jobs.Progress(db, job))

    [log] = logs(db, aid)
    assert log["status"] == "failed" and log["finished_at"] is not None
    assert log["actions"][0]["status"] == "failed" and reason in log["actions"][0]["error"]


def test_an_automations_logs_are_listed_newest_first_a_page_at_a_time(client, db, worker, tenant, crm):
    qualified = crm["stages"][1]
    aid = automation(db, tenant, crm, qualified, [{"type": "create_note", "params": {"content": "run"}}])
    for event in ("evt-page-1", "evt-page-2", "evt-page-3"):  # one after the other: their start times are ordered
        wait_for_job(db, trigger(client, db, tenant, crm, qualified, event))

    pages = [
        client.get(f"/v1/crm/automations/{aid}/logs?page={p}&per_page=2", headers=tenant.headers()).get_json()
        for p in (1, 2)
    ]

    assert [p["total"] for p in pages] == [3, 3]
    assert [log["event_id"] for p in pages for log in p["logs"]] == ["evt-page-3", "evt-page-2", "evt-page-1"]
    assert [len(p["logs"]) for p in pages] == [2, 1]


def test_nothing_of_another_account_can_be_triggered_listed_or_retried(client, db, tenant, other_tenant, crm):
    aid = automation(db, tenant, crm, crm["stages"][1], [])
    body = {"deal_id": str(crm["deal"]), "stage_id": str(crm["stages"][1])}

    foreign = client.post("/v1/crm/automations/trigger", json=body, headers=other_tenant.headers())
    assert foreign.status_code == 404 and foreign.get_json()["error"]["details"] == {"field": "deal_id"}
    # Their own stage beside my deal: the deal alone is what is not found.
    their_stage = (
        db["crm.pipeline.stages"]
        .insert_one({"account_id": other_tenant.account_id, "name": "Theirs", "pipeline_id": ObjectId(), "position": 0})
        .inserted_id
    )
    mixed = client.post(
        "/v1/crm/automations/trigger", json={**body, "stage_id": str(their_stage)}, headers=other_tenant.headers()
    )
    assert mixed.status_code == 404 and mixed.get_json()["error"]["details"] == {"field": "deal_id"}
    assert client.get(f"/v1/crm/automations/{aid}/logs", headers=other_tenant.headers()).status_code == 404
    log = (
        db["automation.logs"]
        .insert_one(
            {"account_id": tenant.account_id, "automation_id": aid, "status": "failed", "event_id": "x", "actions": []}
        )
        .inserted_id
    )
    assert client.post(f"/v1/crm/automations/logs/{log}/retry", headers=other_tenant.headers()).status_code == 404
    assert db["queues"].count_documents({"account_id": other_tenant.account_id}) == 0


def test_a_trigger_without_deal_id_is_400_naming_it(client, tenant):
    response = client.post("/v1/crm/automations/trigger", json={"stage_id": "x"}, headers=tenant.headers())

    assert response.status_code == 400 and response.get_json()["error"]["details"][0]["field"] == "deal_id"


def test_a_client_event_id_starting_with_sys_is_400(client, db, tenant, crm):
    # "sys:" names the system's own events (a move by a job, a follow-up): a client taking one could pre-empt it.
    body = {"deal_id": str(crm["deal"]), "stage_id": str(crm["stages"][1]), "event_id": "sys:move:1"}

    response = client.post("/v1/crm/automations/trigger", json=body, headers=tenant.headers())

    assert response.status_code == 400 and response.get_json()["error"]["details"] == {"field": "event_id"}
    assert db["queues"].count_documents({"account_id": tenant.account_id}) == 0


def test_a_deal_import_starts_stage_automations_only_when_asked(client, db, worker, tenant, crm):
    from tests.e2e.imports.helpers import run_import

    aid = automation(db, tenant, crm, crm["stages"][1], [{"type": "create_note", "params": {"content": "imported"}}])
    content = b"Deal Name,Pipeline,Stage\nQuiet,Sales,Qualified\n"

    run_import(client, db, tenant, content, "deals.csv", entity="deals")
    run_import(
        client, db, tenant, content.replace(b"Quiet", b"Loud"), "deals.csv", {"run_automations": True}, entity="deals"
    )

    wait_for(lambda: logs(db, aid) and logs(db, aid)[0]["status"] == "succeeded", what="the automation run")
    loud = db["crm.deals"].find_one({"account_id": tenant.account_id, "name": "Loud"})
    assert [(log["deal_id"], log["status"]) for log in logs(db, aid)] == [(loud["_id"], "succeeded")]
    assert db["crm.notes"].find_one({"deal_id": loud["_id"]})["content"] == "imported"


def test_when_the_last_retry_also_fails_the_run_is_logged_failed_with_the_reason(settings, db, tenant, crm, hooks):
    from crm_workers.services.automations.actions import TransientActionError

    qualified = crm["stages"][1]
    aid = automation(db, tenant, crm, qualified, [{"type": "webhook", "params": {"url": hooks.url}}])
    job = direct_job(db, tenant, crm, qualified, "evt-last")
    hooks.statuses[:] = [502]

    with pytest.raises(TransientActionError):
        run_automations(db, settings, None, {**job, "attempts": 6}, jobs.Progress(db, job))

    [log] = logs(db, aid)
    assert log["status"] == "failed" and "gave up after the last retry: webhook answered 502" in log["error"]
