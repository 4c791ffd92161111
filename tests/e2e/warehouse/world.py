"""A world of its own for warehouse tests: the feed covers every account of a database, so each test gets its
own database, storage folder, broker namespace and in-process worker (the session's would see other tests' data)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import dramatiq
import pyarrow.parquet as pq
from bson import ObjectId

from crm_workers.adapters.storage import storage_from_settings
from crm_workers.services import stage_events
from crm_workers.services.warehouse import manifests
from crm_workers.services.warehouse.runs import start_run
from tests.conftest import wait_for_job


@dataclass
class World:
    settings: object
    db: object
    broker: object
    storage: object
    holds: list = field(default_factory=list)
    servers: list = field(default_factory=list)

    def run(self, *, expect: str = "completed", timeout: float = 60) -> dict:
        """Start a run and wait for its end; its manifest when it completed, its job otherwise."""
        job = start_run(self.db, self.broker, requested_by="test")
        done = wait_for_job(self.db, job["_id"], timeout=timeout)
        assert done["status"] == expect, done.get("error")
        return self.manifest(str(done["_id"])) if expect == "completed" else done

    def hold(self, *, after_processed: int):
        """Hold this world's next warehouse run at its first checkpoint past `after_processed` rows."""
        from crm_workers.domain.job_types import SYSTEM_ACCOUNT_ID
        from tests.conftest import Hold

        self.holds.append(
            Hold(self.db, SYSTEM_ACCOUNT_ID, job_type="warehouse.export", after_processed=after_processed)
        )
        return self.holds[-1]

    def release_holds(self) -> None:
        for held in self.holds:
            held.release()

    def client(self):
        """A test client of an API app on this world's database and broker."""
        from crm_api import create_app

        return create_app(self.settings, db=self.db, broker=self.broker).test_client()

    def live_api(self) -> str:
        """This world's API on a real HTTP port on 127.0.0.1 (for the CLI and the browser); stopped with the world."""
        import threading

        from werkzeug.serving import make_server

        from crm_api import create_app

        server = make_server("127.0.0.1", 0, create_app(self.settings, db=self.db, broker=self.broker), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    def start(self) -> dict:
        return start_run(self.db, self.broker, requested_by="test")

    def manifest(self, run_id: str) -> dict | None:
        key = manifests.manifest_key(run_id)
        if not self.storage.exists(key):
            return None
        with self.storage.open(key) as f:
            return json.loads(f.read())

    def table(self, manifest: dict, collection: str):
        """The collection's rows of one run, as one Arrow table (None when the run wrote no file for it)."""
        files = manifest["collections"][collection]["files"]
        if not files:
            return None
        import pyarrow as pa

        return pa.concat_tables([pq.read_table(self.storage.path(key)) for key in files])

    def rows(self, manifest: dict, collection: str) -> list[dict]:
        table = self.table(manifest, collection)
        return [] if table is None else table.to_pylist()


def build_world(settings, tmp_path, *, worker: bool = True, **changes) -> tuple[World, object]:
    """(world, stop): settings of its own (database, storage, broker namespace) and, with `worker`, an in-process
    worker consuming them (else the broker only enqueues: worker processes of the test run the jobs)."""
    from crm_workers.bootstrap import build_worker_broker

    run = uuid.uuid4().hex[:8]
    own = settings.with_(
        **{
            "mongodb_db": f"{settings.mongodb_db}_wh{run}",
            "storage_url": f"file://{tmp_path}/storage",
            "redis_namespace": f"{settings.redis_namespace}-wh{run}",
            "warehouse_lag_seconds": 0,
            "warehouse_batch_size": 50,
            **changes,
        }
    )
    from crm_workers.adapters.broker import make_broker
    from crm_workers.adapters.mongo import connect, ensure_indexes

    db = connect(own.mongodb_uri, own.mongodb_db)
    hooks = list(stage_events.STAGE_ENTERED_HOOKS)  # declaring actors points them at this broker
    running = None
    if worker:
        broker = build_worker_broker(own)
        broker.emit_after("process_boot")
        running = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        running.start()
    else:
        ensure_indexes(db)
        broker = make_broker(own, for_worker=False)
    world = World(settings=own, db=db, broker=broker, storage=storage_from_settings(own))

    def stop():
        for server in world.servers:
            server.shutdown()
        if running is not None:
            running.stop()
        broker.close()
        db.client.drop_database(own.mongodb_db)
        stage_events.STAGE_ENTERED_HOOKS[:] = hooks

    return world, stop


def ids(rows: list[dict], op: str = "upsert") -> list[str]:
    return sorted(r["_id"] for r in rows if r["_op"] == op)


def oid_text(values) -> list[str]:
    return sorted(str(v) for v in values if isinstance(v, ObjectId))
