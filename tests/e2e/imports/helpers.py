"""Helpers for import tests: uploads through the API, seeded fields and pipelines."""

from __future__ import annotations

import io
import json

from crm_workers.jobs import now
from tests.conftest import wait_for_job


def upload(
    client,
    tenant,
    content: bytes,
    name: str = "contacts.csv",
    options: dict | None = None,
    *,
    entity: str = "contacts",
    **headers,
):
    data = {"file": (io.BytesIO(content), name)}
    if options is not None:
        data["options"] = json.dumps(options)
    return client.post(
        f"/v1/crm/{entity}/import", data=data, content_type="multipart/form-data", headers=tenant.headers(**headers)
    )


def run_import(
    client,
    db,
    tenant,
    content: bytes,
    name: str = "contacts.csv",
    options: dict | None = None,
    *,
    entity: str = "contacts",
    timeout: float = 60,
) -> dict:
    response = upload(client, tenant, content, name, options, entity=entity)
    assert response.status_code == 202, response.get_json()
    return wait_for_job(db, response.get_json()["id"], timeout=timeout)


def contacts(db, account_id, **query) -> list[dict]:
    return list(db["crm.contacts"].find({"account_id": account_id, **query}).sort("_id", 1))


def add_field(db, account_id, key, field_type, *, entity="contact", options=None, label=None):
    ts = now()
    db["crm.fields"].insert_one(
        {
            "account_id": account_id,
            "entity": entity,
            "key": key,
            "label": label or key,
            "field_type": field_type,
            "options": options or [],
            "created_at": ts,
            "updated_at": ts,
        }
    )


def add_pipeline(db, account_id, name="Sales", currency="USD", stages=("Lead", "Won")):
    ts = now()
    pid = (
        db["crm.pipelines"]
        .insert_one({"account_id": account_id, "name": name, "currency": currency, "created_at": ts, "updated_at": ts})
        .inserted_id
    )
    ids = (
        db["crm.pipeline.stages"]
        .insert_many(
            [
                {
                    "account_id": account_id,
                    "pipeline_id": pid,
                    "name": s,
                    "position": i,
                    "created_at": ts,
                    "updated_at": ts,
                }
                for i, s in enumerate(stages)
            ]
        )
        .inserted_ids
    )
    return pid, ids
