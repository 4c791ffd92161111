"""Settings: every variable parsed from the environment, every problem named at once, dev defaults refused."""

from __future__ import annotations

import pytest

from crm_workers.errors import ConfigError
from crm_workers.settings import API_REQUIRES, WORKER_REQUIRES, Settings

EVERY_VARIABLE = {
    "MONGODB_URI": ("mongodb://db1,db2,db3/?replicaSet=rs0", "mongodb_uri", "mongodb://db1,db2,db3/?replicaSet=rs0"),
    "MONGODB_DB": ("crm_prod", "mongodb_db", "crm_prod"),
    "REDIS_URL": ("redis://redis:6379/0", "redis_url", "redis://redis:6379/0"),
    "BASE_CURRENCY": ("eur", "base_currency", "EUR"),
    "JWT_SECRET": ("s" * 32, "jwt_secret", "s" * 32),
    "APP_SECRET": ("a" * 32, "app_secret", "a" * 32),
    "CONVERSATION_SOCKET": ("https://socket.example.com", "conversation_socket", "https://socket.example.com"),
    "STORAGE_URL": ("s3://crm-files/prod", "storage_url", "s3://crm-files/prod"),
    "S3_ENDPOINT_URL": (
        "https://s3.eu-central-1.wasabisys.com",
        "s3_endpoint_url",
        "https://s3.eu-central-1.wasabisys.com",
    ),
    "S3_REGION": ("eu-central-1", "s3_region", "eu-central-1"),
    "S3_ACCESS_KEY_ID": ("AKIA", "s3_access_key_id", "AKIA"),
    "S3_SECRET_ACCESS_KEY": ("shh", "s3_secret_access_key", "shh"),
    "GOOGLE_CLOUD_PROJECT_ID": ("crm-prod", "google_cloud_project_id", "crm-prod"),
    "PUBSUB_IMPORT_SUBSCRIPTION": ("crm-imports", "pubsub_import_subscription", "crm-imports"),
    "SCHEDULER_TICK_SECONDS": ("30", "scheduler_tick_seconds", 30),
    "WEBHOOK_ALLOW_PRIVATE": ("true", "webhook_allow_private", True),
    "JOB_LOST_SECONDS": ("600", "job_lost_seconds", 600),
    "IMPORT_MAX_JSON_BYTES": ("1048576", "import_max_json_bytes", 1048576),
    "METRICS_TOKEN": ("scrape-me", "metrics_token", "scrape-me"),
    "RATES_URL": (
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml",
        "rates_url",
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml",
    ),
    "REPORT_MAX_AGE_SECONDS": ("60", "report_max_age_seconds", 60),
    "REPORT_NIGHT_HOUR": ("4", "report_night_hour", 4),
    "REPORT_SPREAD_MINUTES": ("90", "report_spread_minutes", 90),
    "WAREHOUSE_INTERVAL_SECONDS": ("0", "warehouse_interval_seconds", 0),
    "WAREHOUSE_LAG_SECONDS": ("30", "warehouse_lag_seconds", 30),
    "WAREHOUSE_BATCH_SIZE": ("500", "warehouse_batch_size", 500),
    "ACCOUNT_HEAVY_JOB_LIMIT": ("3", "account_heavy_job_limit", 3),
    "JOB_HEARTBEAT_SECONDS": ("7", "job_heartbeat_seconds", 7),
    "JOB_STALE_SECONDS": ("240", "job_stale_seconds", 240),
    "JOB_RETENTION_DAYS": ("30", "job_retention_days", 30),
    "IDEMPOTENCY_KEY_SECONDS": ("3600", "idempotency_key_seconds", 3600),
    "BULK_BATCH_SIZE": ("250", "bulk_batch_size", 250),
    "IMPORT_MAX_BYTES": ("1000", "import_max_bytes", 1000),
    "IMPORT_MAX_ROWS": ("10", "import_max_rows", 10),
    "IMPORT_CHUNK_ROWS": ("50", "import_chunk_rows", 50),
    "RATES_FILE": ("/etc/crm/rates.json", "rates_file", "/etc/crm/rates.json"),
    "PUBLIC_URL": ("https://crm.example.com/", "public_url", "https://crm.example.com"),
    "EXPORT_LINK_SECONDS": ("3600", "export_link_seconds", 3600),
    "EXPORT_RETENTION_DAYS": ("3", "export_retention_days", 3),
    "REDIS_NAMESPACE": ("crm-eu", "redis_namespace", "crm-eu"),
    "LOG_LEVEL": ("debug", "log_level", "DEBUG"),
    "LOG_FORMAT": ("TEXT", "log_format", "text"),
    "PORT": ("9000", "port", 9000),
    "WEBHOOK_SENDERS": ("8", "webhook_senders", 8),
    "WEBHOOK_ACCOUNT_SENDERS": ("4", "webhook_account_senders", 4),
    "WEBHOOK_POLL_SECONDS": ("0.5", "webhook_poll_seconds", 0.5),
    "WEBHOOK_RETRY_SECONDS": ("10", "webhook_retry_seconds", 10.0),
    "JOB_TEST_HOLDS": ("1", "job_test_holds", True),
}


def test_every_variable_is_read_into_its_typed_setting():
    settings = Settings.from_env({name: raw for name, (raw, _, _) in EVERY_VARIABLE.items()})

    assert {field: getattr(settings, field) for _, field, _ in EVERY_VARIABLE.values()} == {
        field: value for _, field, value in EVERY_VARIABLE.values()
    }
    assert set(EVERY_VARIABLE) == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("", False),
    ],
)
def test_a_boolean_setting_reads_the_usual_spellings(raw, expected):
    assert Settings.from_env({"WEBHOOK_ALLOW_PRIVATE": raw}).webhook_allow_private is expected


def test_every_malformed_value_is_reported_at_once_in_one_line():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "SCHEDULER_TICK_SECONDS": "soon",
                "WEBHOOK_ALLOW_PRIVATE": "maybe",
                "STORAGE_URL": "ftp://files",
                "LOG_FORMAT": "xml",
                "JOB_LOST_SECONDS": "-5",
            }
        )

    message = str(caught.value)
    assert "\n" not in message
    for name in ("SCHEDULER_TICK_SECONDS", "WEBHOOK_ALLOW_PRIVATE", "STORAGE_URL", "LOG_FORMAT", "JOB_LOST_SECONDS"):
        assert name in message
    assert "'soon'" in message and "'maybe'" in message


def test_every_missing_required_variable_is_named_in_one_line_with_what_to_set():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"MONGODB_URI": "mongodb://x"}).require(*API_REQUIRES)

    message = str(caught.value)
    assert message.startswith("missing required environment variables JWT_SECRET, REDIS_URL, STORAGE_URL, PUBLIC_URL")
    assert "s3://bucket/prefix" in message and "https://crm.example.com" in message and "\n" not in message


@pytest.mark.parametrize("required", [API_REQUIRES, WORKER_REQUIRES])
def test_the_dev_defaults_of_storage_and_public_url_do_not_count_as_set(required):
    env = {"JWT_SECRET": "x", "MONGODB_URI": "mongodb://x", "REDIS_URL": "redis://x"}

    with pytest.raises(ConfigError, match="STORAGE_URL, PUBLIC_URL"):
        Settings.from_env(env).require(*required)
    assert (
        Settings.from_env({**env, "STORAGE_URL": "s3://b/p", "PUBLIC_URL": "https://crm.example.com"})
        .require(*required)
        .storage_url
        == "s3://b/p"
    )


def test_keyword_settings_ignore_the_environment(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://from-the-shell:6379/0")

    assert Settings(mongodb_uri="mongodb://x").redis_url == ""
    assert Settings.from_env().redis_url == "redis://from-the-shell:6379/0"


def test_with_changes_a_copy_and_keeps_what_was_set():
    base = Settings(storage_url="file:///srv/files", public_url="https://crm.example.com")

    changed = base.with_(import_max_rows=2)

    assert (changed.import_max_rows, base.import_max_rows) == (2, 1_048_576)
    assert changed.is_set("STORAGE_URL") and changed.is_set("PUBLIC_URL")
