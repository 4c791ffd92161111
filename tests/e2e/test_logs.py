"""Structured logs: one JSON object per line, carrying the job's ids while it runs."""

from __future__ import annotations

import json
import logging

from crm_workers.logs import JsonFormatter, TextFormatter, job_context
from tests.conftest import wait_for_job


def test_log_records_made_while_a_job_runs_carry_its_ids(client, db, worker, tenant, caplog):
    tag = db["crm.tags"].insert_one({"account_id": tenant.account_id, "name": "L"}).inserted_id
    with caplog.at_level(logging.INFO, logger="crm.jobs"):
        job_id = client.delete(f"/v1/crm/tags/{tag}", headers=tenant.headers()).get_json()["id"]
        wait_for_job(db, job_id)

    started = [
        r
        for r in caplog.records
        if r.name == "crm.jobs" and "started" in r.getMessage() and getattr(r, "job_id", None) == job_id
    ]
    assert len(started) == 1
    assert started[0].account_id == str(tenant.account_id) and started[0].type == "tags.delete"
    line = json.loads(JsonFormatter().format(started[0]))
    assert line["job_id"] == job_id and line["type"] == "tags.delete" and line["level"] == "INFO"


def test_outside_a_job_records_have_no_job_ids_and_text_format_is_readable():
    job_context(None)
    record = logging.getLogger("crm.test").makeRecord(
        "crm.test", logging.WARNING, __file__, 1, "hello %s", ("world",), None
    )

    assert "job_id" not in json.loads(JsonFormatter().format(record))
    assert TextFormatter().format(record).endswith("hello world")
