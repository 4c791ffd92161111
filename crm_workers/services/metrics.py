"""Prometheus metrics read from the shared state (MongoDB, Redis) at scrape time, so that every API replica
reports the same numbers however many workers run, and nothing is lost when a worker restarts."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pymongo.database import Database

from crm_workers.adapters.broker import queue_depths
from crm_workers.adapters.mongo import QUEUES, REMINDERS
from crm_workers.jobs import now
from crm_workers.services.imports.pubsub_bridge import bridge_stats
from crm_workers.services.rates import rates_stats
from crm_workers.services.warehouse.manifests import feed_totals


class JobMetrics:
    """A prometheus_client collector: jobs by type and status, durations, attempts, rows, queues, lag."""

    def __init__(self, db: Database, broker):
        self.db, self.broker = db, broker

    def describe(self):
        return []

    def collect(self):
        jobs = GaugeMetricFamily("crm_jobs", "Job records by type and status", labels=["type", "status"])
        attempts = CounterMetricFamily(
            "crm_job_attempts", "Runs started, by job type (retries included)", labels=["type"]
        )
        duration = CounterMetricFamily("crm_job_duration_seconds", "Time finished jobs ran, by type", labels=["type"])
        finished = CounterMetricFamily("crm_jobs_finished", "Finished jobs, by type", labels=["type"])
        for row in self.db[QUEUES].aggregate(
            [{"$group": {"_id": {"type": "$type", "status": "$status"}, "n": {"$sum": 1}}}]
        ):
            jobs.add_metric([row["_id"]["type"], row["_id"]["status"]], row["n"])
        for row in self.db[QUEUES].aggregate(
            [{"$group": {"_id": "$type", "attempts": {"$sum": {"$ifNull": ["$attempts", 0]}}}}]
        ):
            attempts.add_metric([row["_id"]], row["attempts"])
        for row in self.db[QUEUES].aggregate(
            [
                {"$match": {"finished_at": {"$ne": None}, "started_at": {"$ne": None}}},
                {
                    "$group": {
                        "_id": "$type",
                        "n": {"$sum": 1},
                        "ms": {"$sum": {"$subtract": ["$finished_at", "$started_at"]}},
                    }
                },
            ]
        ):
            duration.add_metric([row["_id"]], row["ms"] / 1000)
            finished.add_metric([row["_id"]], row["n"])
        yield from (jobs, attempts, duration, finished)
        yield from self._rows()
        depth = GaugeMetricFamily(
            "crm_queue_depth", "Messages waiting in each Dramatiq queue (delayed included)", labels=["queue"]
        )
        for queue, waiting in queue_depths(self.broker).items():
            depth.add_metric([queue], waiting)
        yield depth
        lag = GaugeMetricFamily("crm_scheduler_lag_seconds", "Age of the oldest due reminder not notified yet")
        oldest = next(
            iter(
                self.db[REMINDERS]
                .find({"status": "pending", "notified_at": None, "due_at": {"$lte": now()}}, {"due_at": 1})
                .sort("due_at", 1)
                .limit(1)
            ),
            None,
        )
        lag.add_metric([], (now() - oldest["due_at"]).total_seconds() if oldest else 0.0)
        yield lag
        yield from self._pubsub()
        yield from self._rates()
        yield from self._warehouse()

    def _warehouse(self):
        totals, last_end = feed_totals(self.db)
        rows = CounterMetricFamily(
            "crm_warehouse_rows", "Rows the warehouse feed wrote, by collection and `_op`", labels=["collection", "op"]
        )
        unexpected = CounterMetricFamily(
            "crm_warehouse_unexpected_values",
            "Values of an unexpected shape the feed wrote as text, by collection",
            labels=["collection"],
        )
        for t in totals:
            rows.add_metric([t["_id"], "upsert"], t["rows"])
            rows.add_metric([t["_id"], "delete"], t["deleted"])
            unexpected.add_metric([t["_id"]], t["unexpected"])
        lag = GaugeMetricFamily(
            "crm_warehouse_lag_seconds", "How far behind the warehouse is: age of the end of the last run written"
        )
        if last_end is not None:
            lag.add_metric([], (now() - last_end).total_seconds())
        yield from (rows, unexpected, lag)

    def _rates(self):
        stats = rates_stats(self.db)
        failures = CounterMetricFamily(
            "crm_rates_refresh_failures", "Exchange-rate reads of RATES_URL that failed, by reason", labels=["reason"]
        )
        for reason, n in sorted((stats.get("failures") or {}).items()):
            failures.add_metric([reason], n)
        stored = CounterMetricFamily("crm_rates_days_stored", "Days of exchange rates stored from RATES_URL")
        stored.add_metric([], stats.get("days_stored", 0))
        yield from (failures, stored)

    def _pubsub(self):
        stats = bridge_stats(self.db)
        transient = CounterMetricFamily(
            "crm_pubsub_transient_errors", "Pub/Sub bridge transient errors, by operation", labels=["operation"]
        )
        for operation, n in sorted((stats.get("transient_errors") or {}).items()):
            transient.add_metric([operation], n)
        dead = CounterMetricFamily(
            "crm_pubsub_dead_letters", "Pub/Sub messages dead-lettered, by reason", labels=["reason"]
        )
        for reason, n in sorted((stats.get("dead_letters") or {}).items()):
            dead.add_metric([reason], n)
        failed = CounterMetricFamily("crm_pubsub_failed_attempts", "Pub/Sub messages that failed to become a job")
        failed.add_metric([], stats.get("failed_attempts", 0))
        yield from (transient, dead, failed)

    def _rows(self):
        imported = CounterMetricFamily("crm_rows_imported", "Rows imported (created + updated)", labels=["type"])
        exported = CounterMetricFamily("crm_rows_exported", "Rows exported", labels=["type"])
        for row in self.db[QUEUES].aggregate(
            [
                {"$match": {"type": {"$in": ["contacts.import", "deals.import"]}, "status": "completed"}},
                {
                    "$group": {
                        "_id": "$type",
                        "n": {
                            "$sum": {
                                "$add": [
                                    {"$ifNull": ["$result.counts.created", 0]},
                                    {"$ifNull": ["$result.counts.updated", 0]},
                                ]
                            }
                        },
                    }
                },
            ]
        ):
            imported.add_metric([row["_id"]], row["n"])
        for row in self.db[QUEUES].aggregate(
            [
                {"$match": {"type": {"$in": ["contacts.export", "deals.export"]}, "status": "completed"}},
                {"$group": {"_id": "$type", "n": {"$sum": {"$ifNull": ["$result.rows", 0]}}}},
            ]
        ):
            exported.add_metric([row["_id"]], row["n"])
        yield imported
        yield exported
