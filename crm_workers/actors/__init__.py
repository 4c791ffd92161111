"""Actors: each decodes its message and calls one service. Declared on a broker passed in."""

from __future__ import annotations

from collections.abc import Callable

import dramatiq

from crm_workers.actors import automations, exports, imports, mass, reminders, reports, tags, warehouse
from crm_workers.adapters.middleware.job_lifecycle import NOT_RETRIED, current_job
from crm_workers.adapters.outages import retry_policy
from crm_workers.domain.job_types import JobKind, job_kind
from crm_workers.runtime import Runtime
from crm_workers.services import stage_events
from crm_workers.services.automations import run as automation_service

#: job type -> function(runtime, job, progress) returning the job's result.
JOB_HANDLERS: dict[str, Callable] = {
    **tags.HANDLERS,
    **imports.HANDLERS,
    **exports.HANDLERS,
    **reminders.HANDLERS,
    **mass.HANDLERS,
    **reports.HANDLERS,
    **warehouse.HANDLERS,
}


def _job_actor(runtime: Runtime, handler: Callable):
    def run(job_id: str) -> None:
        current = current_job()
        current.result = handler(runtime, current.job, current.progress)

    return run


def actor_options(kind: JobKind) -> dict:
    """Dramatiq's options for the actor of a job kind: its queue, time limit and retries (outages get more);
    over the time limit, cancelled or failed for good, a job is not retried."""
    return {
        "actor_name": kind.actor_name,
        "queue_name": str(kind.queue),
        "time_limit": kind.time_limit_ms,
        "max_retries": kind.max_retries,
        "retry_when": retry_policy(kind.max_retries),
        "throws": NOT_RETRIED,
    }


def declare_actors(broker, runtime: Runtime) -> dict[str, dramatiq.Actor]:
    """Declare one actor per implemented job type on `broker`, on its own queue and limits."""
    # Deals entering a stage (mass update, stage delete, imports) start that stage's automations.
    stage_events.STAGE_ENTERED_HOOKS[:] = [automation_service.stage_hook(broker)]
    actors = {}
    for job_type, handler in {**JOB_HANDLERS, **automations.handlers(broker)}.items():
        # The decorator form: dramatiq's overloads take a function or options, not both at once.
        actors[job_type] = dramatiq.actor(broker=broker, **actor_options(job_kind(job_type)))(
            _job_actor(runtime, handler)
        )
    return actors
