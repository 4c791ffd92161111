"""Settings: one typed object built once from the environment (CONTRACT §2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from crm_workers.errors import ConfigError

DEFAULT_STORAGE_URL = "file://./.crm-data/files"


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a process needs to know about its surroundings."""

    mongodb_uri: str = ""
    mongodb_db: str = "crm"
    redis_url: str = ""
    base_currency: str = "USD"
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
    scheduler_tick_seconds: int = 15
    webhook_allow_private: bool = False
    # Our own knobs (not in the contract, all optional).
    account_heavy_job_limit: int = 2
    job_heartbeat_seconds: int = 5
    job_stale_seconds: int = 120
    job_retention_days: int = 90
    bulk_batch_size: int = 500
    import_max_bytes: int = 512 * 1024 * 1024
    import_max_rows: int = 1_048_576
    import_max_json_bytes: int = 32 * 1024 * 1024
    job_lost_seconds: int = 300
    import_chunk_rows: int = 2000
    public_url: str = "http://127.0.0.1:8000"
    export_link_seconds: int = 24 * 3600
    export_retention_days: int = 7
    redis_namespace: str = "crm"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            mongodb_uri=env.get("MONGODB_URI", ""),
            mongodb_db=env.get("MONGODB_DB") or "crm",
            redis_url=env.get("REDIS_URL", ""),
            base_currency=(env.get("BASE_CURRENCY") or "USD").upper(),
            jwt_secret=env.get("JWT_SECRET", ""),
            app_secret=env.get("APP_SECRET", ""),
            conversation_socket=env.get("CONVERSATION_SOCKET", ""),
            storage_url=env.get("STORAGE_URL") or DEFAULT_STORAGE_URL,
            s3_endpoint_url=env.get("S3_ENDPOINT_URL", ""),
            s3_region=env.get("S3_REGION", ""),
            s3_access_key_id=env.get("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=env.get("S3_SECRET_ACCESS_KEY", ""),
            google_cloud_project_id=env.get("GOOGLE_CLOUD_PROJECT_ID", ""),
            pubsub_import_subscription=env.get("PUBSUB_IMPORT_SUBSCRIPTION", ""),
            scheduler_tick_seconds=_int(env, "SCHEDULER_TICK_SECONDS", 15),
            webhook_allow_private=env.get("WEBHOOK_ALLOW_PRIVATE") == "1",
            account_heavy_job_limit=_int(env, "ACCOUNT_HEAVY_JOB_LIMIT", 2),
            job_heartbeat_seconds=_int(env, "JOB_HEARTBEAT_SECONDS", 5),
            job_stale_seconds=_int(env, "JOB_STALE_SECONDS", 120),
            job_retention_days=_int(env, "JOB_RETENTION_DAYS", 90),
            bulk_batch_size=_int(env, "BULK_BATCH_SIZE", 500),
            import_max_bytes=_int(env, "IMPORT_MAX_BYTES", 512 * 1024 * 1024),
            import_max_rows=_int(env, "IMPORT_MAX_ROWS", 1_048_576),
            import_max_json_bytes=_int(env, "IMPORT_MAX_JSON_BYTES", 32 * 1024 * 1024),
            job_lost_seconds=_int(env, "JOB_LOST_SECONDS", 300),
            import_chunk_rows=_int(env, "IMPORT_CHUNK_ROWS", 2000),
            public_url=(env.get("PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            export_link_seconds=_int(env, "EXPORT_LINK_SECONDS", 24 * 3600),
            export_retention_days=_int(env, "EXPORT_RETENTION_DAYS", 7),
            redis_namespace=env.get("REDIS_NAMESPACE") or "crm",
        )

    def require(self, *names: str) -> Settings:
        """Raise ConfigError naming the first of `names` (env variable names) that is unset."""
        for name in names:
            if not getattr(self, name.lower()):
                raise ConfigError(f"missing required environment variable {name}")
        if self.conversation_socket and not self.app_secret:
            raise ConfigError("missing required environment variable APP_SECRET (CONVERSATION_SOCKET is set)")
        return self

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)
