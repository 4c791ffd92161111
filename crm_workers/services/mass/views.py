"""Saved views (`crm.views`) kept in line with the account's custom fields: a deleted field leaves every view of the
account for its entity (`columns`, `filters`, `sort`), each change kept in the trash so undo puts the view back."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from crm_workers.adapters.mongo import FIELDS, VIEWS
from crm_workers.jobs import now
from crm_workers.services.mass import trash

#: How undo's result names a view put back, and its trash entries' `field`.
VIEW_ALIGNED = "view_aligned"


def without_field(view: dict, name: str) -> dict:
    """What changes in the view once `name` (`custom.<key>`) is gone: only the parts that named it."""
    change: dict[str, Any] = {}
    columns = view.get("columns")
    if isinstance(columns, list) and name in columns:
        change["columns"] = [c for c in columns if c != name]
    filters = view.get("filters")
    if isinstance(filters, dict) and name in filters:
        change["filters"] = {k: v for k, v in filters.items() if k != name}
    sort = view.get("sort")
    if isinstance(sort, dict) and sort.get("field") == name:
        change["sort"] = None
    return change


def remove_field_from_views(db: Database, account_id, job_id, field: dict) -> int:
    """Take the field out of every view of the account for its entity; how many views changed. Rerun-safe: a view
    already without it is not touched again."""
    name = f"custom.{field['key']}"
    changed = 0
    # The account's views of one entity are few; read whole, their keys (`custom.<key>`) hold dots a query would
    # read as a path.
    for view in db[VIEWS].find({"account_id": account_id, "entity": field["entity"]}):
        change = without_field(view, name)
        if not change:
            continue
        after = {**change, "updated_at": now()}
        trash.keep_sets(db, account_id, job_id, VIEWS, VIEW_ALIGNED, [view], after, requires=(FIELDS, field["_id"]))
        db[VIEWS].update_one({"_id": view["_id"], "account_id": account_id}, {"$set": after})
        changed += 1
    return changed
