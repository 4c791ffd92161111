"""Building a worker: the broker with every actor declared. Used by the worker process, tests, benchmarks."""

from __future__ import annotations

from crm_workers.actors import declare_actors
from crm_workers.adapters.broker import make_broker
from crm_workers.adapters.mongo import connect, ensure_indexes
from crm_workers.jobs import holds
from crm_workers.runtime import Runtime
from crm_workers.services import webhooks
from crm_workers.settings import Settings


def build_worker_broker(settings: Settings):
    if settings.job_test_holds:
        holds.enable()
    db = connect(settings.mongodb_uri, settings.mongodb_db)
    ensure_indexes(db)
    broker = make_broker(settings, db=db)
    declare_actors(broker, Runtime(settings=settings, db=db))
    webhooks.attach(broker, db=db, settings=settings)
    return broker
