"""The warehouse feed on S3 (moto's server over HTTP, authentication enforced): files and manifest uploaded
through the storage layer, and the next run finds where the last one ended by listing the manifests there."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from bson import ObjectId

from crm_workers.adapters.storage import storage_from_settings
from tests.e2e.warehouse.seed import seed_account
from tests.e2e.warehouse.world import build_world, ids


@pytest.fixture
def world(settings, tmp_path):
    from tests.s3_server import AuthenticatedS3

    server = AuthenticatedS3()
    key_id, secret = server.start()
    s3 = dict(
        storage_url="s3://crm-feed/wasabi-prefix",
        s3_endpoint_url=server.endpoint,
        s3_region="us-east-1",
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
    )
    storage_from_settings(settings.with_(**s3)).client.create_bucket(Bucket="crm-feed")
    made, stop = build_world(settings, tmp_path, **s3)
    yield made
    made.release_holds()
    stop()
    server.stop()


def read_json(storage, key):
    with storage.open(key) as f:
        return json.loads(f.read())


def test_a_run_on_s3_uploads_its_files_and_manifest_and_the_next_run_starts_where_it_ended(world):
    seeded = seed_account(world.db, ObjectId(), contacts=60)

    first = world.run()
    world.db["crm.contacts"].update_one({"_id": seeded["crm.contacts"][1]}, {"$set": {"updated_at": first_end(first)}})
    # As if the worker died between uploading the manifest and recording it: storage is the truth.
    world.db["warehouse.runs"].delete_many({})
    second = world.run()

    storage = world.storage
    keys = storage.list("warehouse/")
    manifests = [k for k in keys if k.startswith("warehouse/_runs/")]
    assert sorted(manifests) == sorted(f"warehouse/_runs/{m['run_id']}.json" for m in (first, second))
    assert read_json(storage, manifests[0])["run_id"] in (first["run_id"], second["run_id"])
    (key,) = first["collections"]["crm.contacts"]["files"]
    head = storage.client.head_object(Bucket="crm-feed", Key=f"wasabi-prefix/{key}")
    assert head["ContentLength"] == first["collections"]["crm.contacts"]["bytes"]
    with storage.open(key) as f:
        rows = pq.read_table(io.BytesIO(f.read())).to_pylist()
    assert ids(rows) == sorted(str(i) for i in seeded["crm.contacts"])
    assert second["from"] == first["to"]  # found by listing the manifests in the bucket
    assert ids(world_rows(storage, second, "crm.contacts")) == [str(seeded["crm.contacts"][1])]


def world_rows(storage, manifest, collection):
    rows = []
    for key in manifest["collections"][collection]["files"]:
        with storage.open(key) as f:
            rows += pq.read_table(io.BytesIO(f.read())).to_pylist()
    return rows


def first_end(manifest):
    from datetime import timedelta

    from crm_workers.services.warehouse.manifests import parse_iso

    return parse_iso(manifest["to"]) + timedelta(milliseconds=1)
