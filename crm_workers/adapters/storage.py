"""File storage chosen by STORAGE_URL: S3-compatible (Wasabi) through boto3, or the local file system.

Keys are relative paths (`accounts/<id>/imports/<job>/file.csv`); a key can never leave the storage root.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from crm_workers.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, default: str = "file") -> str:
    """A file name reduced to safe characters (no slashes, no leading dots)."""
    cleaned = _UNSAFE.sub("_", os.path.basename(name or "")).lstrip(".")
    return cleaned[:120] or default


class InvalidKey(ValueError):
    """Raised when a storage key would reach outside the storage root."""


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        path = (self.root / _check_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidKey(f"invalid storage key {key!r}")
        return path

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        os.replace(tmp, path)  # a reader never sees half a file
        return path.stat().st_size

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")  # noqa: SIM115

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


class S3Storage:
    def __init__(self, *, bucket: str, prefix: str, client):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{_check_key(key)}" if self.prefix else _check_key(key)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        extra = {"ContentType": content_type} if content_type else None
        # upload_fileobj switches to a multipart upload for big files on its own.
        self.client.upload_fileobj(stream, self.bucket, self.object_key(key), ExtraArgs=extra)
        return self.size(key)

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]

    def size(self, key: str) -> int:
        return self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))["ContentLength"]

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except self.client.exceptions.ClientError:
            return False

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))


def storage_from_settings(settings) -> LocalStorage | S3Storage:
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalStorage((url.netloc + url.path) if url.netloc == "." else url.path or ".")
    if url.scheme == "s3":
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
        )
        return S3Storage(bucket=url.netloc, prefix=url.path, client=client)
    raise ConfigError(f"STORAGE_URL must start with s3:// or file://, got {settings.storage_url!r}")
