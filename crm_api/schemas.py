"""Request and response models (pydantic); a bad body or parameter is a 400 naming the field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonValue

from crm_workers.domain.import_requests import ImportOptions, ImportRequest, UploadOptions  # noqa: F401
from crm_workers.domain.job_types import JOB_KINDS
from crm_workers.jobs import JobStatus


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


OBJECT_ID = r"^[0-9a-fA-F]{24}$"


class JobListQuery(Strict):
    status: JobStatus | None = Field(default=None, description="only jobs in this status")
    type: str | None = Field(
        default=None,
        json_schema_extra={"enum": list[JsonValue](sorted(JOB_KINDS))},
        description="only jobs of this type",
    )
    page: int = Field(default=1, ge=1, le=100_000, description="page number (ignored with `after`)")
    per_page: int = Field(default=50, ge=1, le=200, description="jobs per page")
    after: str | None = Field(
        default=None,
        pattern=OBJECT_ID,
        description="cursor: the jobs after this job id, in the same order (newest first)",
    )
    account_id: str | None = Field(
        default=None, pattern=OBJECT_ID, description="service tokens only: one account's jobs"
    )

    @field_validator("type")
    @classmethod
    def known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in JOB_KINDS:
            raise ValueError(f"must be one of {sorted(JOB_KINDS)}")
        return value


class Progress(BaseModel):
    total: int | None
    processed: int
    succeeded: int
    failed: int
    percent: float


class JobError(BaseModel):
    code: str
    message: str


class Job(BaseModel):
    id: str
    account_id: str
    type: str
    status: JobStatus
    progress: Progress
    params: dict
    result: dict | None
    error: JobError | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None = None
    enqueued_at: str | None = None
    callback_url: str | None = Field(default=None, description="where the job's end is delivered too (webhooks)")


class JobPage(BaseModel):
    jobs: list[Job]
    page: int
    per_page: int
    total: int | None = Field(description="jobs matching; null when paging by `after`")
    next_after: str | None = Field(description="the `after` of the next page; null on the last page")


class Page(Strict):
    """?page=&per_page= of a numbered list (automation logs, webhook deliveries)."""

    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=50, ge=1, le=200)


class StageDeleteQuery(Strict):
    move_to: str | None = Field(default=None, description="the stage (of the same pipeline) to move its deals to")


class DueQuery(Strict):
    window: str | None = Field(default=None, pattern=r"^\d+d$", description="upcoming window in days, like 7d")
