"""What a worker process holds: settings, the database, the broker."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.database import Database

from crm_workers.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
