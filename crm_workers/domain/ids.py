"""Deterministic ids: the same job writing the same row twice (a retry, a resume) writes the same record."""

from __future__ import annotations

import hashlib

from bson import ObjectId


def stable_id(*parts: object) -> ObjectId:
    digest = hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()
    return ObjectId(digest[:24])
