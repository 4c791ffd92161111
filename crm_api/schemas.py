"""Request and response models (pydantic); a bad body or parameter is a 400 naming the field."""

from __future__ import annotations

from typing import Any, Literal

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class ImportOptions(Strict):
    mapping: dict[str, str] | None = None
    dedupe: Literal["email", "phone", "none"] = "email"
    mode: Literal["upsert", "create", "update"] = "upsert"
    tags: list[str] = Field(default_factory=list, max_length=50)
    owner: str | None = None
    country: str | None = Field(default=None, min_length=2, max_length=2)
    run_automations: bool = False
    type: Literal["person", "business"] = "person"

    @field_validator("owner")
    @classmethod
    def owner_is_an_id(cls, value: str | None) -> str | None:
        if value is not None and not (ObjectId.is_valid(value) and len(value) == 24):
            raise ValueError("must be a user id (24 hex)")
        return value

    @field_validator("country")
    @classmethod
    def country_upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @model_validator(mode="after")
    def update_needs_a_key(self):
        if self.mode == "update" and self.dedupe == "none":
            raise ValueError("mode 'update' needs dedupe 'email' or 'phone' to find the records")
        return self


class RecordsSource(Strict):
    type: Literal["records"]
    records: list[dict[str, Any]] = Field(min_length=1)
    file_name: str | None = None


class StorageSource(Strict):
    type: Literal["storage"]
    key: str = Field(min_length=1, max_length=1000)
    file_name: str | None = None


class ImportRequest(Strict):
    source: RecordsSource | StorageSource = Field(discriminator="type")
    options: ImportOptions = Field(default_factory=ImportOptions)


class UploadOptions(Strict):
    options: ImportOptions = Field(default_factory=ImportOptions)
