"""Logging for every process: JSON lines (one event per line, with job_id, account_id and type while a job
runs) by default, human-readable text under `crm-jobs dev` (LOG_FORMAT=text)."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

from crm_workers.settings import Settings

_job_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("crm_job_context", default=None)
JOB_FIELDS = ("job_id", "account_id", "type")
_default_factory = logging.getLogRecordFactory()


def _record_with_job(*args, **kwargs) -> logging.LogRecord:
    record = _default_factory(*args, **kwargs)
    for key, value in (_job_context.get() or {}).items():
        setattr(record, key, value)
    return record


# Every record made while a job runs in this thread carries the job's ids (see `job_context`).
logging.setLogRecordFactory(_record_with_job)


def job_context(job: dict | None) -> None:
    """Set (or with None, clear) the job whose ids this thread's log records carry."""
    _job_context.set(
        None if job is None else {"job_id": str(job["_id"]), "account_id": str(job["account_id"]), "type": job["type"]}
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        event.update({k: getattr(record, k) for k in JOB_FIELDS if getattr(record, k, None)})
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in JOB_FIELDS if getattr(record, k, None))
        return f"{text} [{ids}]" if ids else text


def configure_logging(settings: Settings | None = None) -> None:
    """Log to stderr as LOG_FORMAT (json or text) says, at LOG_LEVEL."""
    settings = settings or Settings.from_env()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
