"""The shape of an import request (docs/contract.md §6, §7), shared by the API and the Pub/Sub bridge."""

from __future__ import annotations

import codecs
from typing import Any, Literal, Self

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImportOptions(Strict):
    mapping: dict[str, str | None] | None = None  # header -> target; None ignores the header
    dedupe: Literal["email", "phone", "none"] = "email"
    mode: Literal["upsert", "create", "update"] = "upsert"
    tags: list[str] = Field(default_factory=list, max_length=50)
    owner: str | None = None
    pipeline: str | None = Field(default=None, min_length=1, max_length=200)  # deals: name or id, for rows naming none
    create_missing: bool = False  # deals: create the pipelines and stages the file names
    country: str | None = Field(default=None, min_length=2, max_length=2)
    run_automations: bool = False
    type: Literal["person", "business"] = "person"
    encoding: str | None = Field(default=None, max_length=40)  # overrides the guessed encoding of a CSV
    strict: bool = False  # a bad value fails its row instead of being left out with a warning
    # {"<row number>": {"<header>": "<new value>"}}: cells replaced before anything reads them (the preview's fixes)
    corrections: dict[str, dict[str, str | None]] | None = Field(default=None, max_length=10_000)

    @field_validator("corrections")
    @classmethod
    def corrections_name_rows(
        cls, value: dict[str, dict[str, str | None]] | None
    ) -> dict[str, dict[str, str | None]] | None:
        for row, cells in (value or {}).items():
            if not row.isdigit() or not 0 < int(row) < 10**8:
                raise ValueError(f"{row!r} is not a row number (as the spreadsheet numbers it)")
            if len(cells) > 1000 or any(len(str(v or "")) > 32_768 or len(h) > 1000 for h, v in cells.items()):
                raise ValueError(f"row {row}: too many or too large cells")
        return value

    @field_validator("owner")
    @classmethod
    def owner_is_an_id(cls, value: str | None) -> str | None:
        if value is not None and not (ObjectId.is_valid(value) and len(value) == 24):
            raise ValueError("must be a user id (24 hex)")
        return value

    @field_validator("encoding")
    @classmethod
    def encoding_is_known(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            codec = codecs.lookup(value)
        except LookupError:
            raise ValueError("not a text encoding Python knows (like windows-1251, iso-8859-2, shift_jis)") from None
        if not getattr(codec, "_is_text_encoding", True):
            raise ValueError("not a text encoding")
        try:  # the reader turns unreadable bytes into U+FFFD: an encoding that cannot (idna) reads no file
            codecs.getincrementaldecoder(value)("replace").decode(b"", final=True)
        except (UnicodeError, TypeError, ValueError, LookupError, AssertionError):
            raise ValueError("not an encoding a file can be read in") from None
        return value

    @field_validator("country")
    @classmethod
    def country_upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @model_validator(mode="after")
    def update_needs_a_key(self) -> Self:
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
