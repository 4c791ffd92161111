"""GET /metrics after a few jobs: the counts a monitoring system would see.

Metrics count every job of the database, so these tests have a database, a broker namespace and a worker of
their own: the jobs other tests leave running cannot move the numbers between two scrapes.
"""

from __future__ import annotations

import dramatiq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Tenant, wait_for_job
from tests.e2e.imports.helpers import run_import


@pytest.fixture(scope="module")
def own(settings):
    """(client, db): an API and a worker on a database and a broker namespace of their own."""
    from crm_api import create_app
    from crm_workers.adapters.mongo import connect, ensure_indexes
    from crm_workers.bootstrap import build_worker_broker
    from crm_workers.services import stage_events

    hooks = list(stage_events.STAGE_ENTERED_HOOKS)  # declaring actors points them at the newest broker
    mine = settings.with_(
        mongodb_db=f"{settings.mongodb_db}_metrics", redis_namespace=f"{settings.redis_namespace}-metrics"
    )
    db = connect(mine.mongodb_uri, mine.mongodb_db)
    ensure_indexes(db)
    broker = build_worker_broker(mine)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield create_app(mine, db=db, broker=broker).test_client(), db
    worker.stop()
    broker.close()
    stage_events.STAGE_ENTERED_HOOKS[:] = hooks
    db.client.drop_database(mine.mongodb_db)


@pytest.fixture
def client(own):
    return own[0]


@pytest.fixture
def db(own):
    return own[1]


@pytest.fixture
def tenant(db):
    return Tenant(db)


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.data.decode())
        for s in family.samples
    }


def test_metrics_count_jobs_by_type_and_status_rows_and_queues(client, db, tenant):
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


def test_job_durations_are_the_sum_of_the_runs(client, db, tenant):
    tag = db["crm.tags"].insert_one({"account_id": tenant.account_id, "name": "D"}).inserted_id
    before = scrape(client).get(("crm_job_duration_seconds_total", (("type", "tags.delete"),)), 0)

    job = wait_for_job(db, client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers()).get_json()["id"])
    after = scrape(client)[("crm_job_duration_seconds_total", (("type", "tags.delete"),))]

    ran = (job["finished_at"] - job["started_at"]).total_seconds()
    assert abs((after - before) - ran) < 0.01
