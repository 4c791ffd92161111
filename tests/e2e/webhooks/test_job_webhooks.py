"""Job-event webhooks through the API and a real in-process worker: signed deliveries, filters, retries with one
event id, the delivery log and its retry button, callback_url."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bson import ObjectId

from crm_workers.domain.job_events import sign
from crm_workers.domain.job_events import verify as domain_verify
from tests.conftest import wait_for, wait_for_job
from tests.e2e.webhooks.helpers import delete_tag, deliveries, subscribe, verify, wait_for_calls


def test_a_job_end_is_delivered_signed_with_the_subscription_secret_and_the_job_json(
    client, db, worker, tenant, hook_receiver
):
    sub = subscribe(client, tenant, hook_receiver.url)
    job_id = delete_tag(client, db, tenant)

    call = wait_for_calls(hook_receiver, job_id)[0]

    job = wait_for_job(db, job_id)
    assert call["headers"]["X-CRM-Event"] == "job.completed"
    assert call["headers"]["X-CRM-Event-Id"] == job["end_event"]["id"]
    assert call["body"]["id"] == job_id and call["body"]["status"] == "completed"
    assert call["headers"]["Content-Type"] == "application/json"
    signature = call["headers"]["X-CRM-Signature"]
    assert verify(sub["secret"], signature, call["raw"])
    assert domain_verify(sub["secret"], signature, call["raw"], now=int(time.time()))
    assert not verify(sub["secret"], signature, call["raw"] + b" ")  # a changed body does not verify
    assert not verify("whsec_other", signature, call["raw"])
    [delivery] = wait_for(lambda: [d for d in deliveries(db, job_id) if d["status"] == "delivered"], what="delivered")
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert "events_pending" not in db["queues"].find_one({"_id": ObjectId(job_id)})


def test_a_subscription_gets_only_the_events_and_job_types_it_asked_for(
    client, db, worker, tenant, hook_receiver, hold
):
    subscribe(client, tenant, hook_receiver.url + "?tags", types=["tags.delete"], events=["job.completed"])
    subscribe(client, tenant, hook_receiver.url + "?cancelled", events=["job.cancelled"])
    subscribe(client, tenant, hook_receiver.url + "?exports", types=["contacts.export"])
    completed = delete_tag(client, db, tenant)
    wait_for_calls(hook_receiver, completed)
    # a job that ends cancelled: held at its first checkpoint, then cancelled
    held = hold(tenant.account_id, job_type="tags.delete", after_processed=0)
    from tests.e2e.mass.test_tags_delete import seed_tagged
    from tests.e2e.webhooks.helpers import make_tag

    tag = make_tag(db, tenant.account_id, "Held")
    seed_tagged(db, tenant.account_id, tag, contacts=30, deals=0)
    cancelled = client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers()).get_json()["id"]
    held.reached()
    assert client.post(f"/v1/crm/jobs/{cancelled}/cancel", headers=tenant.headers()).status_code == 200
    held.release_for_the_next_checkpoint_to_write()
    assert wait_for_job(db, cancelled)["status"] == "cancelled"
    wait_for_calls(hook_receiver, cancelled)

    paths = {(c["body"]["id"], c["path"].split("?")[1]) for c in hook_receiver.calls}
    assert paths == {(completed, "tags"), (cancelled, "cancelled")}
    assert {d["target"] for d in deliveries(db, completed)} != set()
    assert len(deliveries(db, completed)) == 1 and len(deliveries(db, cancelled)) == 1


def test_a_receiver_failing_twice_gets_the_third_attempt_with_the_same_event_id(
    client, db, worker, tenant, hook_receiver
):
    sub = subscribe(client, tenant, hook_receiver.url)
    hook_receiver.statuses += [503, 429]
    job_id = delete_tag(client, db, tenant)

    calls = wait_for_calls(hook_receiver, job_id, 3)

    assert [c["status"] for c in calls] == [503, 429, 200]
    assert len({c["headers"]["X-CRM-Event-Id"] for c in calls}) == 1
    assert len({c["raw"] for c in calls}) == 1  # the same body every time; each attempt signed anew
    assert all(verify(sub["secret"], c["headers"]["X-CRM-Signature"], c["raw"]) for c in calls)
    delivery = wait_for(lambda: (d := deliveries(db, job_id)[0])["status"] == "delivered" and d, what="delivered")
    assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
    log = client.get(f"/v1/crm/webhooks/{sub['id']}/deliveries", headers=tenant.headers()).get_json()
    assert [(d["job_id"], d["status"], d["attempts"]) for d in log["deliveries"]] == [(job_id, "delivered", 3)]


def test_an_answer_other_than_5xx_or_429_fails_it_and_the_retry_button_sends_it_again_once(
    client, db, worker, tenant, hook_receiver
):
    sub = subscribe(client, tenant, hook_receiver.url)
    hook_receiver.statuses += [410]
    job_id = delete_tag(client, db, tenant)
    wait_for_calls(hook_receiver, job_id)
    failed = wait_for(lambda: (d := deliveries(db, job_id)[0])["status"] == "failed" and d, what="failed")
    assert failed["attempts"] == 1 and failed["last_status_code"] == 410
    url = f"/v1/crm/webhooks/{sub['id']}/deliveries"
    [listed] = client.get(url, headers=tenant.headers()).get_json()["deliveries"]
    assert listed["status"] == "failed" and listed["next_attempt_at"] is None

    retried = client.post(f"{url}/{listed['id']}/retry", headers=tenant.headers())

    assert retried.status_code == 200 and retried.get_json()["status"] == "pending"
    calls = wait_for_calls(hook_receiver, job_id, 2)
    assert calls[0]["headers"]["X-CRM-Event-Id"] == calls[1]["headers"]["X-CRM-Event-Id"]
    wait_for(lambda: deliveries(db, job_id)[0]["status"] == "delivered", what="delivered")
    again = client.post(f"{url}/{listed['id']}/retry", headers=tenant.headers())
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_delivered"
    assert len(hook_receiver.for_job(job_id)) == 2


def test_a_callback_url_gets_the_job_end_signed_with_the_account_secret(client, db, worker, tenant, hook_receiver):
    job_id = delete_tag(client, db, tenant, query=f"?callback_url={hook_receiver.url}")

    call = wait_for_calls(hook_receiver, job_id)[0]

    secret = client.get("/v1/crm/webhooks/secret", headers=tenant.headers()).get_json()["secret"]
    assert verify(secret, call["headers"]["X-CRM-Signature"], call["raw"])
    assert call["body"]["callback_url"] == hook_receiver.url
    assert client.get("/v1/crm/webhooks/secret", headers=tenant.headers()).get_json()["secret"] == secret


def test_a_callback_url_in_a_json_body_goes_with_the_job(client, db, worker, tenant, hook_receiver):
    from tests.e2e.webhooks.helpers import make_tag

    tag = make_tag(db, tenant.account_id)
    response = client.post(
        "/v1/crm/contacts/bulk-update",
        headers=tenant.headers(),
        json={"filter": {"ids": []}, "tags_add": [str(tag)], "callback_url": hook_receiver.url},
    )
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]

    call = wait_for_calls(hook_receiver, job_id)[0]

    assert call["body"]["type"] == "contacts.bulk_update" and "callback_url" not in call["body"]["params"]


def test_a_slow_receiver_gets_one_post_per_delivery_while_it_takes_its_time(client, db, worker, tenant, hook_receiver):
    """Two workers' senders look for due deliveries every 0.2 s while the receiver takes 1.5 s: one POST."""
    from crm_workers.services.webhooks.dispatcher import WebhookDispatcher

    subscribe(client, tenant, hook_receiver.url)
    hook_receiver.delay = 1.5
    other = WebhookDispatcher(
        db=db, senders=4, account_senders=4, poll_seconds=0.1, allow_private=True, retry_base_seconds=0.2
    )  # a second worker process's senders
    other.after_worker_boot(None, None)
    try:
        job_id = delete_tag(client, db, tenant)
        wait_for(lambda: (d := deliveries(db, job_id)) and d[0]["status"] == "delivered", what="delivered")
        wait_for(lambda: time.time() > hook_receiver.for_job(job_id)[0]["at"] + 1, what="a second more of looking")
    finally:
        other.before_worker_shutdown(None, None)

    assert len(hook_receiver.for_job(job_id)) == 1
    assert deliveries(db, job_id)[0]["attempts"] == 1


def _readme_recipe(kind: str) -> str:
    readme = (Path(__file__).resolve().parents[3] / "docs" / "webhooks.md").read_text()
    block = readme.split(f"<!-- recipe:{kind} -->\n", 1)[1]
    return block.split("```", 2)[1].split("\n", 1)[1]


def test_a_delivery_verifies_with_the_docs_python_and_openssl_recipes(
    client, db, worker, tenant, hook_receiver, tmp_path
):
    sub = subscribe(client, tenant, hook_receiver.url)
    job_id = delete_tag(client, db, tenant)
    call = wait_for_calls(hook_receiver, job_id)[0]
    recipe: dict = {}
    exec(_readme_recipe("python"), recipe)  # noqa: S102 — the README's own code, as a receiver would paste it
    (tmp_path / "body.json").write_bytes(call["raw"])

    def shell(secret, sig):
        env = {**os.environ, "SECRET": secret, "SIG": sig}
        return subprocess.run(
            ["sh", "-c", _readme_recipe("shell")], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    sig = call["headers"]["X-CRM-Signature"]
    assert recipe["verify"](sub["secret"], sig, call["raw"]) is True
    assert shell(sub["secret"], sig) == "valid"
    # What either recipe must refuse: another secret, a changed body, an old timestamp replayed.
    assert recipe["verify"]("whsec_" + "0" * 64, sig, call["raw"]) is False
    assert shell("whsec_" + "0" * 64, sig) == "INVALID"
    assert recipe["verify"](sub["secret"], sig, call["raw"].replace(b"completed", b"failed")) is False
    (tmp_path / "body.json").write_bytes(call["raw"] + b"\n")
    assert shell(sub["secret"], sig) == "INVALID"
    old = sign(sub["secret"], int(time.time()) - 3600, call["raw"])
    assert recipe["verify"](sub["secret"], old, call["raw"]) is False


def test_a_job_of_an_account_without_webhooks_ends_without_the_outbox_mark(client, db, worker, tenant):
    job_id = delete_tag(client, db, tenant)

    done = wait_for_job(db, job_id)

    assert done["status"] == "completed" and done["end_event"]["id"].startswith("evt_")
    assert "events_pending" not in done
    assert deliveries(db, job_id) == []
