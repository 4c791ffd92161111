"""File storage chosen by STORAGE_URL: S3-compatible (Wasabi) through boto3, or the local file system.

Keys are relative paths (`accounts/<id>/imports/<job>/file.csv`); a key can never leave the storage root.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, urlencode, urlparse

from crm_workers.errors import ConfigError

if TYPE_CHECKING:
    from crm_workers.settings import Settings

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


def link_signature(secret: str, key: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def check_link(secret: str, key: str, expires: str | None, signature: str | None, *, at: float | None = None) -> bool:
    """True when a local download link is authentic and not expired."""
    if expires is None:  # the link has no `expires`
        return False
    try:
        expiry = int(expires)
    except (TypeError, ValueError):
        return False
    # As bytes: compare_digest refuses a str with a non-ASCII character (`sig=é` was a 500), a link never has one.
    given = (signature or "").encode("utf-8", "surrogateescape")
    good = hmac.compare_digest(link_signature(secret, key, expiry).encode(), given)
    return good and (at or time.time()) < expiry


class LocalStorage:
    """Files under a root folder; downloads go through the API's signed, expiring /files/<key> links."""

    def __init__(self, root: str | Path, *, link_secret: str = "", public_url: str = ""):
        self.root = Path(root).resolve()
        self.link_secret = link_secret
        self.public_url = public_url.rstrip("/")

    def download_url(self, key: str, *, expires_in: int, file_name: str | None = None) -> tuple[str, int]:
        if not self.link_secret:
            raise ConfigError("local download links need JWT_SECRET to sign them")
        expires = int(time.time()) + expires_in
        query = urlencode({"expires": expires, "sig": link_signature(self.link_secret, _check_key(key), expires)})
        return f"{self.public_url}/files/{quote(key)}?{query}", expires

    def path(self, key: str) -> Path:
        path = (self.root / _check_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidKey(f"invalid storage key {key!r}")
        return path

    def put_stream(self, key: str, stream: BinaryIO | io.RawIOBase, content_type: str | None = None) -> int:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, 64 * 1024)  # what is held between the writer and the file
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

    def list(self, prefix: str) -> list[str]:
        """The keys under `prefix` (a folder, ending in "/"), sorted; files being written are not listed."""
        folder = self.path(prefix.rstrip("/"))
        if not folder.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".part")
        )


class S3Storage:
    def __init__(self, *, bucket: str, prefix: str, client: Any) -> None:  # a boto3 S3 client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{_check_key(key)}" if self.prefix else _check_key(key)

    def put_stream(self, key: str, stream: BinaryIO | io.RawIOBase, content_type: str | None = None) -> int:
        extra = {"ContentType": content_type} if content_type else None
        # upload_fileobj switches to a multipart upload for big files on its own, if a read of its threshold
        # (8 MB) returns 8 MB: a raw stream (IterStream) answers each read with one chunk, and a short first read
        # makes it send the whole file as one PUT held in memory. A buffered reader reads until it has the amount.
        if isinstance(stream, io.RawIOBase):
            stream = io.BufferedReader(stream)
        self.client.upload_fileobj(stream, self.bucket, self.object_key(key), ExtraArgs=extra)
        return self.size(key)

    def open(self, key: str) -> BinaryIO:
        body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]  # StreamingBody
        return body

    def size(self, key: str) -> int:
        length: int = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))["ContentLength"]
        return length

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except self.client.exceptions.ClientError:
            return False

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def list(self, prefix: str) -> list[str]:
        """The keys under `prefix` (a folder, ending in "/"), sorted, a page of 1,000 per request."""
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys, folder = [], self.object_key(prefix.rstrip("/")) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
            keys += [item["Key"][strip:] for item in page.get("Contents", [])]
        return sorted(keys)

    def download_url(self, key: str, *, expires_in: int, file_name: str | None = None) -> tuple[str, int]:
        params = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if file_name:
            params["ResponseContentDisposition"] = f'attachment; filename="{safe_name(file_name)}"'
        url = self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url, int(time.time()) + expires_in


def storage_from_settings(settings: Settings) -> LocalStorage | S3Storage:
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalStorage(
            (url.netloc + url.path) if url.netloc == "." else url.path or ".",
            link_secret=settings.jwt_secret,
            public_url=settings.public_url,
        )
    if url.scheme == "s3":
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
        )
        return S3Storage(bucket=url.netloc, prefix=url.path, client=client)
    raise ConfigError(f"STORAGE_URL must start with s3:// or file://, got {settings.storage_url!r}")


class IterStream(io.RawIOBase):
    """A readable file over an iterator of bytes: lets an upload pull a file while it is being written."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes, fewer only at the end. An upload to S3 decides between one PUT and a multipart
        upload by whether its first read of 8 MiB comes back full: a short read (one chunk) made it send the
        whole file as one PUT, read into memory first."""
        if size is None or size < 0:
            return self.readall()
        parts, wanted = [], size
        while wanted > 0:
            part = super().read(wanted)
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)

    # io calls it with a bytearray or a memoryview only; typeshed allows any writable buffer.
    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n], self._buffer = self._buffer[:n], self._buffer[n:]
        return n
