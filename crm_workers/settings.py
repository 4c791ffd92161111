"""Settings: one typed object built once from the environment (docs/contract.md §2 and our own knobs).

`Settings.from_env()` reads the environment (one variable per field, the field's name in capitals) and
reports every malformed value at once; `Settings(**kwargs)` is exactly what it is given (tests, benchmarks).
`require(*NAMES)` then stops a process that lacks what it needs, naming every missing variable in one line.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from crm_workers.errors import ConfigError

DEFAULT_STORAGE_URL = "file://./.crm-data/files"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"

#: What each long-running process needs set. STORAGE_URL and PUBLIC_URL have defaults that only make sense
#: on one machine (`crm-jobs dev`, which passes both to its children explicitly): elsewhere they must be set.
API_REQUIRES = ("JWT_SECRET", "MONGODB_URI", "REDIS_URL", "STORAGE_URL", "PUBLIC_URL")
WORKER_REQUIRES = ("MONGODB_URI", "REDIS_URL", "STORAGE_URL", "PUBLIC_URL")

#: What to set, for the variables whose absence is not obvious to fix.
HINTS = {
    "STORAGE_URL": "s3://bucket/prefix (Wasabi/S3), or a file:///path every API and worker machine shares",
    "PUBLIC_URL": "the API's address as clients reach it, e.g. https://crm.example.com (download links use it)",
}

_environment: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("crm_env", default=None)


class _Environment(EnvSettingsSource):
    """Environment variables from the mapping `from_env` was given; empty ones count as unset."""

    def __init__(self, settings_cls, env: Mapping[str, str]):
        self._env = env
        super().__init__(settings_cls, case_sensitive=False, env_ignore_empty=True)

    def _load_env_vars(self):
        return {name.lower(): value for name, value in self._env.items() if value != ""}


class Settings(BaseSettings):
    """Everything a process needs to know about its surroundings."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=False)

    # docs/contract.md §2
    mongodb_uri: str = ""
    mongodb_db: str = "crm"
    redis_url: str = ""
    base_currency: str = Field(default="USD", pattern=r"^[A-Za-z]{3}$")
    jwt_secret: str = ""
    app_secret: str = ""
    conversation_socket: str = ""
    storage_url: str = DEFAULT_STORAGE_URL
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    google_cloud_project_id: str = ""
    pubsub_import_subscription: str = ""
    scheduler_tick_seconds: int = Field(default=15, gt=0)
    webhook_allow_private: bool = False
    job_lost_seconds: int = Field(default=300, gt=0)
    import_max_json_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    metrics_token: str = ""
    rates_url: str = ""
    report_max_age_seconds: int = Field(default=300, gt=0)
    warehouse_interval_seconds: int = Field(default=3600, ge=0)
    # Our own knobs (all optional).
    account_heavy_job_limit: int = Field(default=2, gt=0)
    job_heartbeat_seconds: int = Field(default=5, gt=0)
    job_stale_seconds: int = Field(default=120, gt=0)
    job_retention_days: int = Field(default=90, gt=0)
    idempotency_key_seconds: int = Field(default=24 * 3600, gt=0, le=24 * 3600)
    bulk_batch_size: int = Field(default=500, gt=0)
    import_max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    import_max_rows: int = Field(default=1_048_576, gt=0)
    import_chunk_rows: int = Field(default=2000, gt=0)
    rates_file: str = ""
    # Reports: the nightly recompute starts at this hour of each account's night, spread over the window.
    report_night_hour: int = Field(default=2, ge=0, lt=24)
    report_spread_minutes: int = Field(default=120, gt=0, le=240)
    public_url: str = DEFAULT_PUBLIC_URL
    export_link_seconds: int = Field(default=24 * 3600, gt=0)
    export_retention_days: int = Field(default=7, gt=0)
    # A warehouse run's window ends this long before the run starts: a write that lands late is in the next run.
    warehouse_lag_seconds: int = Field(default=10, ge=0)
    warehouse_batch_size: int = Field(default=2000, gt=0)
    redis_namespace: str = "crm"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    port: int = Field(default=8000, gt=0, lt=65536)
    # Webhooks for job events: sending threads per worker process, how many of them one account may hold at once,
    # how often due deliveries are looked for (seconds), and the first wait before a retry (doubling; seconds).
    webhook_senders: int = Field(default=24, gt=0, le=256)
    webhook_account_senders: int = Field(default=20, gt=0, le=256)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_retry_seconds: float = Field(default=30.0, gt=0)
    # Tests only: jobs may be held at a checkpoint by the test (crm_workers/jobs/holds.py). Never in production.
    job_test_holds: bool = False

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        # Only `from_env` reads the environment: `Settings(**kwargs)` in a test must not pick up the shell's.
        env = _environment.get()
        return (init_settings,) if env is None else (init_settings, _Environment(settings_cls, env))

    @field_validator("base_currency", "log_level", mode="before")
    @classmethod
    def _upper(cls, value):
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.lower() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        if not value.startswith(("s3://", "file://")):
            raise ValueError("must start with s3:// or file://")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from `env` (the process environment by default); ConfigError lists every bad value."""
        token = _environment.set(os.environ if env is None else env)
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError("invalid settings: " + "; ".join(_problem(e) for e in exc.errors())) from None
        finally:
            _environment.reset(token)

    def is_set(self, name: str) -> bool:
        """Whether the variable `name` was given (a default does not count) and is not empty."""
        field = name.lower()
        return field in self.model_fields_set and getattr(self, field) not in ("", None)

    def require(self, *names: str) -> Settings:
        """Raise ConfigError naming, in one line, every variable of `names` that is unset."""
        missing = [n for n in names if not self.is_set(n)]
        if self.conversation_socket and not self.app_secret and "APP_SECRET" not in missing:
            missing.append("APP_SECRET")
        if not missing:
            return self
        noun = "variable" if len(missing) == 1 else "variables"
        line = f"missing required environment {noun} {', '.join(missing)}"
        if "APP_SECRET" in missing and self.conversation_socket:
            line += " (CONVERSATION_SOCKET is set)"
        hints = [f"{n}: {HINTS[n]}" for n in missing if n in HINTS]
        raise ConfigError(line + (" — set " + "; ".join(hints) if hints else ""))

    def with_(self, **changes) -> Settings:
        """A copy with `changes` (field names), validated like the original."""
        return type(self)(**{**{k: getattr(self, k) for k in self.model_fields_set}, **changes})


def _problem(error: ErrorDetails) -> str:
    name = str(error["loc"][0]).upper() if error["loc"] else "?"
    message = error["msg"].removeprefix("Value error, ")
    return f"{name}: {message} (got {error.get('input')!r})"
