"""GET /metrics after a few jobs: the counts a monitoring system would see."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for_job
from tests.e2e.imports.helpers import run_import


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.data.decode()) for s in family.samples}


def test_metrics_count_jobs_by_type_and_status_rows_and_queues(client, db, worker, tenant):
    before = scrape(client)
    tag = db["crm.tags"].insert_one({"account_id": tenant.account_id, "name": "M"}).inserted_id
    wait_for_job(db, client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers()).get_json()["id"])
    run_import(client, db, tenant, b"email\nm1@example.com\nm2@example.com\nnot-an-email\n")

    after = scrape(client)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("crm_jobs", type="tags.delete", status="completed") == 1
    assert delta("crm_jobs", type="contacts.import", status="completed") == 1
    assert delta("crm_rows_imported_total", type="contacts.import") == 2
    assert delta("crm_jobs_finished_total", type="tags.delete") == 1
    assert delta("crm_job_attempts_total", type="contacts.import") == 1
    assert ("crm_queue_depth", (("queue", "imports"),)) in after
    assert after[("crm_scheduler_lag_seconds", ())] >= 0


def test_job_durations_are_the_sum_of_the_runs(client, db, worker, tenant):
    tag = db["crm.tags"].insert_one({"account_id": tenant.account_id, "name": "D"}).inserted_id
    before = scrape(client).get(("crm_job_duration_seconds_total", (("type", "tags.delete"),)), 0)

    job = wait_for_job(db, client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers()).get_json()["id"])
    after = scrape(client)[("crm_job_duration_seconds_total", (("type", "tags.delete"),))]

    ran = (job["finished_at"] - job["started_at"]).total_seconds()
    assert abs((after - before) - ran) < 0.01
