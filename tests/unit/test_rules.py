"""Pure rules: the lifecycle table, progress arithmetic, settings, tokens."""

from __future__ import annotations

import time

import jwt
import pytest
from bson import ObjectId

from crm_workers.domain.job_types import JOB_KINDS, Queue
from crm_workers.domain.principal import TokenError, issue_token, read_token
from crm_workers.domain.progress import progress_doc
from crm_workers.errors import ConfigError, InvalidTransition
from crm_workers.jobs import ALLOWED_TRANSITIONS, JobStatus, check_transition
from crm_workers.settings import Settings

S = JobStatus
ALLOWED = {
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.FAILED),  # failed: a job that can never run
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.QUEUED),
    (S.FAILED, S.QUEUED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_every_transition_is_allowed_or_refused_as_the_lifecycle_says(current, target):
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_finished_jobs_never_change_status_again():
    assert ALLOWED_TRANSITIONS[S.COMPLETED] == frozenset()
    assert ALLOWED_TRANSITIONS[S.CANCELLED] == frozenset()


def test_percent_is_rounded_and_capped_and_zero_without_a_total():
    assert progress_doc(1200, 600, 590, 10)["percent"] == 50.0
    assert progress_doc(3, 1, 1, 0)["percent"] == 33.3
    assert progress_doc(10, 12, 12, 0)["percent"] == 100.0
    assert progress_doc(None, 5, 5, 0)["percent"] == 0.0


def test_every_contract_job_type_has_a_queue_and_heavy_work_is_apart_from_reminders():
    for required in [
        "contacts.import",
        "deals.import",
        "contacts.bulk_delete",
        "deals.bulk_delete",
        "contacts.bulk_update",
        "deals.bulk_update",
        "contacts.link",
        "contacts.export",
        "deals.export",
        "tags.delete",
        "fields.delete",
        "stages.delete",
        "pipelines.delete",
        "automations.run",
        "reminders.notify",
    ]:
        assert required in JOB_KINDS
    assert JOB_KINDS["reminders.notify"].queue == Queue.NOTIFICATIONS
    assert JOB_KINDS["contacts.import"].queue == Queue.IMPORTS
    assert not JOB_KINDS["reminders.notify"].heavy and JOB_KINDS["contacts.import"].heavy


def test_a_missing_required_variable_is_named_in_one_line():
    with pytest.raises(ConfigError, match="missing required environment variable JWT_SECRET"):
        Settings.from_env({"MONGODB_URI": "mongodb://x", "REDIS_URL": "redis://x"}).require(
            "MONGODB_URI", "REDIS_URL", "JWT_SECRET"
        )


def test_app_secret_is_required_when_the_socket_service_is_set():
    with pytest.raises(ConfigError, match="APP_SECRET"):
        Settings.from_env({"CONVERSATION_SOCKET": "http://127.0.0.1:9"}).require()


def test_a_malformed_number_setting_is_refused_with_its_name():
    with pytest.raises(ConfigError, match="SCHEDULER_TICK_SECONDS"):
        Settings.from_env({"SCHEDULER_TICK_SECONDS": "soon"})


def test_settings_defaults_follow_the_contract():
    s = Settings.from_env({})
    assert (s.mongodb_db, s.base_currency, s.scheduler_tick_seconds) == ("crm", "USD", 15)
    assert s.storage_url == "file://./.crm-data/files" and s.webhook_allow_private is False
    assert (s.job_lost_seconds, s.import_max_json_bytes, s.metrics_token) == (300, 33554432, "")


SECRET = "unit-secret-unit-secret-unit-secret!"


def test_a_token_round_trips_its_claims():
    a, u = ObjectId(), ObjectId()
    p = read_token(SECRET, issue_token(SECRET, account_id=str(a), uid=str(u), is_owner=True))
    assert (p.account_id, p.uid, p.is_owner) == (a, u, True)


@pytest.mark.parametrize(
    "claims,reason",
    [
        ({"account_id": str(ObjectId()), "uid": str(ObjectId())}, "exp"),
        ({"account_id": "nope", "uid": str(ObjectId()), "exp": int(time.time()) + 86400}, "account_id"),
        ({"account_id": str(ObjectId()), "exp": int(time.time()) + 86400}, "uid"),
        ({"account_id": str(ObjectId()), "uid": str(ObjectId()), "exp": int(time.time()) - 5}, "expired"),
    ],
)
def test_tokens_without_exp_with_bad_claims_or_expired_are_refused(claims, reason):
    with pytest.raises(TokenError, match=reason):
        read_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"))


def test_a_token_signed_with_another_secret_is_refused():
    token = issue_token("another-secret-another-secret-another", account_id=str(ObjectId()), uid=str(ObjectId()))
    with pytest.raises(TokenError, match="Signature"):
        read_token(SECRET, token)


def test_a_monthly_reminder_on_the_31st_lands_on_the_last_day_of_shorter_months():
    from datetime import UTC, datetime

    from crm_workers.domain.recurrence import next_occurrence

    due = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    assert next_occurrence(due, {"every": 1, "unit": "month"}, "UTC") == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        next_occurrence(due, {"every": 1, "unit": "fortnight"}, "UTC")


def test_search_text_is_escaped_never_a_pattern():
    from crm_workers.domain.selection import text_query

    query = text_query("a.b*(c", ["name"])
    assert query == {"$or": [{"name": {"$regex": r"a\.b\*\(c", "$options": "i"}}]}


def test_formula_cells_are_neutralised_and_plain_negative_numbers_are_not():
    from crm_workers.domain.cells import safe_cell
    from crm_workers.domain.import_rows import unneutralise

    for value in ("=1+1", "+1415", "-x", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(value) == "'" + value and unneutralise(safe_cell(value)) == value
    assert safe_cell("-12.5") == "-12.5" and safe_cell("plain") == "plain"
