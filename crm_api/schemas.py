"""Request and response models (pydantic); a bad body or parameter is a 400 naming the field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_workers.domain.import_requests import ImportOptions, ImportRequest, UploadOptions  # noqa: F401
from crm_workers.domain.job_types import JOB_KINDS
from crm_workers.jobs import JobStatus


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobListQuery(Strict):
    status: JobStatus | None = None
    type: str | None = Field(default=None, json_schema_extra={"enum": sorted(JOB_KINDS)})
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)

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


class JobPage(BaseModel):
    jobs: list[Job]
    page: int
    per_page: int
    total: int
