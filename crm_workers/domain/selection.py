"""A selection of contacts or deals (docs/contract.md §6): what every mass operation and export acts on."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_IDS = 10_000


def _id_list(values: list[str]) -> list[str]:
    for value in values:
        if not (ObjectId.is_valid(value) and len(value) == 24):
            raise ValueError(f"{value!r} is not a 24-hex id")
    return values


class Selection(BaseModel):
    """Filters combine with AND; tags may be given by id or by name."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, max_length=MAX_IDS)
    type: str | None = Field(default=None, pattern="^(person|business)$")
    tags_any: list[str] | None = None
    tags_all: list[str] | None = None
    owner: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = Field(default=None, max_length=200)
    pipeline_id: str | None = None
    stage_id: str | None = None
    import_id: str | None = None

    @field_validator("ids")
    @classmethod
    def ids_are_ids(cls, value: list[str] | None) -> list[str] | None:
        return _id_list(value) if value is not None else value

    @field_validator("owner", "pipeline_id", "stage_id", "import_id")
    @classmethod
    def one_id(cls, value: str | None) -> str | None:
        return _id_list([value])[0] if value is not None else value


def text_query(q: str, fields: list[str]) -> dict[str, Any]:
    """A case-insensitive match of `q` in any of `fields`; user text is escaped, never a pattern."""
    pattern = {"$regex": re.escape(q.strip()), "$options": "i"}
    return {"$or": [{f: pattern} for f in fields]}
