"""The README's "Querying the feed": its DuckDB statements, run as written over a feed of several runs (with a
killed run's files lying beside them), give the contacts exactly as MongoDB has them."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bson import ObjectId

from tests.conftest import Tenant
from tests.e2e.warehouse.seed import seed_account
from tests.e2e.warehouse.test_feed import run_api
from tests.e2e.warehouse.world import build_world

duckdb = pytest.importorskip("duckdb")
README = Path(__file__).resolve().parents[3] / "docs" / "warehouse.md"


@pytest.fixture
def world(settings, tmp_path):
    made, stop = build_world(settings, tmp_path)
    yield made
    made.release_holds()
    stop()


def readme_duckdb_sql(root: Path) -> list[str]:
    text = README.read_text()
    block = re.search(r"```sql\n-- duckdb:.*?\n(.*?)```", text[text.index("## Querying the feed") :], re.S).group(1)
    return [s.strip() for s in block.replace(".crm-data/files", str(root)).split(";") if s.strip()]


def test_the_readmes_duckdb_view_gives_the_contacts_as_mongodb_has_them(world):
    tenant = Tenant(world.db)
    people = seed_account(world.db, tenant.account_id, contacts=10)["crm.contacts"][1:]
    seed_account(world.db, ObjectId(), contacts=3)
    first = world.run()
    client = world.client()
    run_api(
        world,
        client,
        tenant,
        "/v1/crm/contacts/bulk-update",
        {"ids": [str(p) for p in people[:4]], "set": {"owner": str(tenant.user_uid)}},
    )
    run_api(world, client, tenant, "/v1/crm/contacts/bulk-delete", {"ids": [str(p) for p in people[4:7]]})
    world.run()
    # A later run killed before its manifest: its file lies in the feed's folders and must not count.
    written = world.storage.path(first["collections"]["crm.contacts"]["files"][0])
    killed = pq.read_table(written)
    killed = killed.set_column(
        killed.schema.get_field_index("_run"), "_run", pa.array([str(ObjectId())] * killed.num_rows)
    )
    killed = killed.set_column(
        killed.schema.get_field_index("email"), "email", pa.array(["killed@example.com"] * killed.num_rows)
    )
    pq.write_table(killed, written.with_name(f"{ObjectId()}-0.parquet"))
    root = world.storage.path("warehouse").parent
    statements = readme_duckdb_sql(root)

    con = duckdb.connect()
    for statement in statements[:-1]:
        con.execute(statement)
    rows = con.execute("SELECT _id, account_id, email, owner, tags, updated_at FROM contacts ORDER BY _id").fetchall()
    by_city = con.execute(statements[-1]).fetchall()

    docs = list(world.db["crm.contacts"].find({}).sort("_id", 1))
    assert [r[0] for r in rows] == [str(d["_id"]) for d in docs]  # the deleted three gone, nobody twice
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        (str(d["account_id"]), d.get("email"), d.get("owner") and str(d["owner"]), [str(t) for t in d["tags"]])
        for d in docs
    ]
    assert [r[5] for r in rows] == [d["updated_at"] for d in docs]  # UTC timestamps, to the millisecond
    assert by_city == [("Porto", 10), (None, 2)]  # 7 + 3 people in Porto, the two businesses without an address
