"""`crm-jobs api | worker | scheduler | pubsub | dev | token | import | export | jobs | watch`."""

from __future__ import annotations

import argparse
import os
import sys

from crm_workers.domain.job_types import Queue
from crm_workers.errors import ConfigError
from crm_workers.logs import configure_logging
from crm_workers.settings import Settings

DEV_SECRET_FILE = "jwt-secret"
#: On SIGTERM a worker lets its running jobs go on this long (seconds), then exits: an unfinished job is taken
#: over and resumed from its saved progress (JOB_STALE_SECONDS, or Dramatiq's redelivery). Below Docker's 10 s
#: stop grace period, so the worker's own orderly shutdown (prefetched messages handed back) always runs.
WORKER_SHUTDOWN_SECONDS = 8
#: On SIGTERM the API lets requests in flight finish for this long (seconds).
API_SHUTDOWN_SECONDS = 8


def _settings(*required: str) -> Settings:
    try:
        return Settings.from_env().require(*required)
    except ConfigError as exc:
        sys.exit(f"crm-jobs: {exc}")


def cmd_api(args) -> None:
    from gunicorn.app.base import BaseApplication

    from crm_api import create_app
    from crm_jobs.children import forked_children_die_with_this_process

    settings = _settings("JWT_SECRET", "MONGODB_URI", "REDIS_URL")
    configure_logging()

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            self.cfg.set("accesslog", "-")
            # On SIGTERM, requests in flight get this long; then gunicorn kills its workers.
            self.cfg.set("graceful_timeout", API_SHUTDOWN_SECONDS)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 24
                # Its control socket is one path per user: several APIs on one machine would share it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_app(settings)

    forked_children_die_with_this_process()  # gunicorn's workers, even if the master is killed
    Server().run()


def cmd_worker(args) -> None:
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from crm_jobs.children import forked_children_die_with_this_process

    _settings("MONGODB_URI", "REDIS_URL")
    argv = ["crm_workers.worker", "--processes", str(args.processes), "--threads", str(args.threads)]
    if args.queues:
        argv += ["--queues", *args.queues]
    # Dramatiq waits 10 minutes by default for running jobs; ours resume from their saved progress elsewhere.
    argv += ["--worker-shutdown-timeout", str(int(args.shutdown_timeout * 1000))]
    forked_children_die_with_this_process()  # Dramatiq's worker processes, even if this one is killed
    sys.exit(dramatiq_main(make_argument_parser().parse_args(argv)))


def cmd_scheduler(args) -> None:
    from scheduler.app import run

    settings = _settings("MONGODB_URI", "REDIS_URL")
    configure_logging()
    run(settings)


def cmd_pubsub(args) -> None:
    import signal
    import threading

    from crm_workers.adapters.broker import make_broker
    from crm_workers.adapters.mongo import connect, ensure_indexes
    from crm_workers.adapters.pubsub import GoogleSubscription
    from crm_workers.adapters.storage import storage_from_settings
    from crm_workers.services.imports.pubsub_bridge import run_bridge

    settings = _settings("MONGODB_URI", "REDIS_URL", "GOOGLE_CLOUD_PROJECT_ID", "PUBSUB_IMPORT_SUBSCRIPTION")
    configure_logging()
    db = connect(settings.mongodb_uri, settings.mongodb_db)
    ensure_indexes(db)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    subscription = GoogleSubscription(settings.google_cloud_project_id, settings.pubsub_import_subscription)
    try:
        run_bridge(subscription, db, make_broker(settings, for_worker=False), storage_from_settings(settings),
                   settings, stop=stop)
    except KeyboardInterrupt:
        pass


def cmd_token(args) -> None:
    from crm_workers.domain.principal import issue_token

    secret = os.environ.get("JWT_SECRET") or _dev_secret(args.data_dir, create=False)
    if not secret:
        sys.exit("crm-jobs: missing required environment variable JWT_SECRET")
    print(issue_token(secret, account_id=args.account, uid=args.uid, is_owner=args.owner,
                      ttl_seconds=args.ttl))


def _dev_secret(data_dir: str, *, create: bool) -> str | None:
    path = os.path.join(data_dir, DEV_SECRET_FILE)
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    if not create:
        return None
    import secrets

    os.makedirs(data_dir, exist_ok=True)
    secret = secrets.token_hex(32)
    with open(path, "w") as f:
        f.write(secret)
    return secret


def cmd_dev(args) -> None:
    from crm_jobs.dev import run_dev

    secret = os.environ.get("JWT_SECRET") or _dev_secret(args.data_dir, create=True)
    sys.exit(run_dev(data_dir=args.data_dir, port=args.port, jwt_secret=secret))


def _client(args):
    from crm_jobs.client import Client

    return Client(args.url, args.token)


def cmd_import(args) -> None:
    from crm_jobs.client import import_file, watch

    job = import_file(_client(args), args.file, entity=args.entity, mapping=args.mapping, options=args.options)
    print(f"job {job['id']} ({job['type']}) queued")
    if not args.no_watch:
        watch(_client(args), job["id"])


def cmd_export(args) -> None:
    from crm_jobs.client import export, watch

    job = export(_client(args), entity=args.entity, filter_json=args.filter, fmt=args.format)
    print(f"job {job['id']} ({job['type']}) queued")
    if not args.no_watch:
        watch(_client(args), job["id"])


def cmd_jobs(args) -> None:
    from crm_jobs.client import jobs_table

    jobs_table(_client(args), status=args.status, limit=args.limit)


def cmd_watch(args) -> None:
    from crm_jobs.client import watch

    job = watch(_client(args), args.job_id, interval=args.interval)
    sys.exit(0 if job["status"] == "completed" else 1)


def _api_flags(p) -> None:
    p.add_argument("--url", help="API base URL (default: CRM_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", help="bearer token (default: CRM_TOKEN)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crm-jobs", description="The CRM's background-job system.")
    sub = p.add_subparsers(dest="command", required=True)

    api = sub.add_parser("api", help="run the HTTP API (gunicorn)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    api.add_argument("--workers", type=int, default=2)
    api.add_argument("--threads", type=int, default=8)
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run Dramatiq workers")
    worker.add_argument("--queues", nargs="*", choices=[str(q) for q in Queue],
                        help="queues to consume (default: all)")
    worker.add_argument("--processes", type=int, default=2)
    worker.add_argument("--threads", type=int, default=8)
    worker.add_argument("--shutdown-timeout", type=float, default=WORKER_SHUTDOWN_SECONDS, metavar="SECONDS",
                        help="on SIGTERM, how long running jobs may go on before they are left to resume "
                             f"elsewhere (default: {WORKER_SHUTDOWN_SECONDS})")
    worker.set_defaults(func=cmd_worker)

    sched = sub.add_parser("scheduler", help="run the scheduler (safe to run two replicas)")
    sched.set_defaults(func=cmd_scheduler)

    pubsub = sub.add_parser("pubsub", help="run the Pub/Sub bridge (imports and connector batches)")
    pubsub.set_defaults(func=cmd_pubsub)

    dev = sub.add_parser("dev", help="everything in one command on embedded servers")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data-dir", default=".crm-data")
    dev.set_defaults(func=cmd_dev)

    imp = sub.add_parser("import", help="upload a CSV/XLSX through the API and watch the import")
    imp.add_argument("file")
    imp.add_argument("--entity", choices=["contacts", "deals"], default="contacts")
    imp.add_argument("--mapping", help="a JSON file: {\"<header>\": \"<target>\"}")
    imp.add_argument("--options", help="import options as JSON")
    imp.add_argument("--no-watch", action="store_true")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export through the API and print the download link")
    exp.add_argument("--entity", choices=["contacts", "deals"], default="contacts")
    exp.add_argument("--filter", help="a selection as JSON")
    exp.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    exp.add_argument("--no-watch", action="store_true")
    exp.set_defaults(func=cmd_export)

    jobs = sub.add_parser("jobs", help="the account's jobs as a table")
    jobs.add_argument("--status")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(func=cmd_jobs)

    watch = sub.add_parser("watch", help="a job's progress bar until it ends")
    watch.add_argument("job_id")
    watch.add_argument("--interval", type=float, default=1.0)
    watch.set_defaults(func=cmd_watch)
    for api_command in (imp, exp, jobs, watch):
        _api_flags(api_command)

    token = sub.add_parser("token", help="print a bearer token for local use")
    token.add_argument("--account", required=True, help="account id (24 hex)")
    token.add_argument("--uid", required=True, help="user id (24 hex)")
    token.add_argument("--owner", action="store_true", help="the user is an account owner")
    token.add_argument("--ttl", type=int, default=7 * 24 * 3600, help="seconds the token is valid")
    token.add_argument("--data-dir", default=".crm-data", help="where `crm-jobs dev` keeps its secret")
    token.set_defaults(func=cmd_token)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "token":
        from bson import ObjectId

        for name in ("account", "uid"):
            if not ObjectId.is_valid(getattr(args, name)):
                sys.exit(f"crm-jobs: --{name} must be a 24-hex id")
    args.func(args)


if __name__ == "__main__":
    main()
