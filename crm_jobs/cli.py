"""`crm-jobs api | worker | scheduler | pubsub | dev | token | import | export | jobs | watch | cancel | retry |
undo | errors | warehouse runs|run | report`; `python -m crm_jobs` is the same."""

from __future__ import annotations

import argparse
import json
import os
import sys

from crm_jobs.commands import (
    cmd_cancel,
    cmd_errors,
    cmd_export,
    cmd_import,
    cmd_jobs,
    cmd_retry,
    cmd_undo,
    cmd_warehouse_run,
    cmd_warehouse_runs,
    cmd_watch,
)
from crm_jobs.private import write_private
from crm_jobs.report_command import cmd_report
from crm_workers.domain.job_types import Queue
from crm_workers.errors import ConfigError
from crm_workers.logs import configure_logging
from crm_workers.settings import API_REQUIRES, WORKER_REQUIRES, Settings

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

    settings = _settings(*API_REQUIRES)
    configure_logging(settings)

    class Server(BaseApplication):
        def load_config(self):
            # A listening socket handed down by `crm-jobs dev` (it binds the port itself: no check-then-bind race).
            self.cfg.set("bind", f"fd://{args.fd}" if args.fd is not None else f"{args.host}:{args.port}")
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

    _settings(*WORKER_REQUIRES)
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
    stop = threading.Event()
    # SIGTERM (docker stop, systemd) and Ctrl-C both mean: pull no more, settle the batch in hand, exit 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    db = connect(settings.mongodb_uri, settings.mongodb_db)
    ensure_indexes(db)
    subscription = GoogleSubscription(settings.google_cloud_project_id, settings.pubsub_import_subscription)
    try:
        run_bridge(
            subscription,
            db,
            make_broker(settings, for_worker=False),
            storage_from_settings(settings),
            settings,
            stop=stop,
        )
    finally:
        subscription.close()


def cmd_token(args) -> None:
    from crm_workers.domain.principal import issue_service_token, issue_token

    secret = os.environ.get("JWT_SECRET") or _dev_secret(args.data_dir, create=False)
    if not secret:
        sys.exit("crm-jobs: missing required environment variable JWT_SECRET")
    if args.service:
        token = issue_service_token(secret, name=args.name, ttl_seconds=args.ttl)
    else:
        token = issue_token(secret, account_id=args.account, uid=args.uid, is_owner=args.owner, ttl_seconds=args.ttl)
    print(json.dumps({"token": token}) if args.json else token)


def _dev_secret(data_dir: str, *, create: bool) -> str | None:
    path = os.path.join(data_dir, DEV_SECRET_FILE)
    if os.path.exists(path):
        os.chmod(path, 0o600)  # an earlier version left it readable by everyone on the machine
        with open(path) as f:
            return f.read().strip()
    if not create:
        return None
    import secrets

    os.makedirs(data_dir, exist_ok=True)
    secret = secrets.token_hex(32)
    write_private(path, secret)
    return secret


def cmd_dev(args) -> None:
    from crm_jobs.dev import run_dev

    secret = os.environ.get("JWT_SECRET") or _dev_secret(args.data_dir, create=True)
    assert secret is not None, "create=True always gives one"
    sys.exit(run_dev(data_dir=args.data_dir, port=args.port, jwt_secret=secret))


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line and exit code 2 (argparse's code, without its usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crm-jobs")
    except PackageNotFoundError:
        return "unknown"


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="crm-jobs",
        description="The CRM's background-job system. Client commands exit 0 when the "
        "job completed, 1 when it failed or was cancelled (or the API refused), 2 on bad usage, 3 when "
        "the API cannot be reached.",
    )
    p.add_argument("--version", action="version", version=f"crm-jobs {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    api = sub.add_parser("api", help="run the HTTP API (gunicorn)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=None, help="default: PORT or 8000")
    api.add_argument("--workers", type=int, default=2)
    api.add_argument("--threads", type=int, default=8)
    api.add_argument("--fd", type=int, default=None, help="serve on this inherited listening socket instead")
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run Dramatiq workers")
    worker.add_argument("--queues", nargs="*", choices=[str(q) for q in Queue], help="queues to consume (default: all)")
    worker.add_argument("--processes", type=int, default=2)
    worker.add_argument("--threads", type=int, default=8)
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=WORKER_SHUTDOWN_SECONDS,
        metavar="SECONDS",
        help="on SIGTERM, how long running jobs may go on before they are left to resume "
        f"elsewhere (default: {WORKER_SHUTDOWN_SECONDS})",
    )
    worker.set_defaults(func=cmd_worker)

    sched = sub.add_parser("scheduler", help="run the scheduler (safe to run two replicas)")
    sched.set_defaults(func=cmd_scheduler)

    pubsub = sub.add_parser("pubsub", help="run the Pub/Sub bridge (imports and connector batches)")
    pubsub.set_defaults(func=cmd_pubsub)

    dev = sub.add_parser("dev", help="everything in one command on embedded servers")
    dev.add_argument("--port", type=int, default=8000, help="0: a free port the system chooses")
    dev.add_argument("--data-dir", default=".crm-data")
    dev.set_defaults(func=cmd_dev)

    imp = sub.add_parser("import", help="upload a CSV/XLSX through the API and watch the import")
    imp.add_argument("file")
    imp.add_argument("--entity", choices=["contacts", "deals"], default="contacts")
    imp.add_argument("--mapping", help='a JSON file: {"<header>": "<target>"}')
    imp.add_argument("--options", help="import options as JSON")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export through the API and print the download link")
    exp.add_argument("--entity", choices=["contacts", "deals"], default="contacts")
    exp.add_argument("--filter", help="a selection as JSON")
    exp.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    exp.set_defaults(func=cmd_export)

    jobs = sub.add_parser("jobs", help="jobs as a table, newest first")
    jobs.add_argument("--status", choices=["queued", "running", "completed", "failed", "cancelled"])
    jobs.add_argument("--type", help="a job type, e.g. contacts.import")
    jobs.add_argument("--account", help="one account's jobs (service tokens only)")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument("--after", help="the jobs after this job id (the `more:` hint of the last page)")
    jobs.set_defaults(func=cmd_jobs)

    watch = sub.add_parser("watch", help="follow a job until it ends")
    watch.add_argument("job_id")
    watch.add_argument("--interval", type=float, default=1.0)
    watch.set_defaults(func=cmd_watch)

    warehouse = sub.add_parser("warehouse", help="the warehouse feed's runs (a service token)")
    warehouse_sub = warehouse.add_subparsers(dest="warehouse_command", required=True)
    wh_runs = warehouse_sub.add_parser("runs", help="the latest runs, newest first, with their windows and counts")
    wh_runs.add_argument("--limit", type=int, default=20)
    wh_runs.set_defaults(func=cmd_warehouse_runs)
    wh_run = warehouse_sub.add_parser("run", help="start a run now (or the one queued or running) and watch it")
    wh_run.add_argument("--no-watch", action="store_true", help="print the job and return at once")
    wh_run.set_defaults(func=cmd_warehouse_run)

    report = sub.add_parser("report", help="a report (new_contacts, pipeline, automations): stored, or computed")
    report.add_argument("kind", choices=["new_contacts", "pipeline", "automations"])
    report.add_argument("--from", dest="from_", help="first day, YYYY-MM-DD (account time; default 30 days ago)")
    report.add_argument("--to", help="last day, YYYY-MM-DD (default today)")
    report.add_argument("--interval", choices=["day", "week", "month"], help="new_contacts only")
    report.add_argument("--pipeline", help="pipeline id (pipeline only)")
    report.add_argument("--automation", help="automation id (automations only)")
    report.add_argument("--refresh", action="store_true", help="compute it now, even if a fresh one is stored")
    report.add_argument("--csv", action="store_true", help="print CSV")
    report.set_defaults(func=cmd_report)

    cancel = sub.add_parser("cancel", help="cancel a queued or running job")
    retry = sub.add_parser("retry", help="retry a failed job and watch it")
    undo = sub.add_parser("undo", help="undo an import, bulk delete or structure delete (30 days) and watch it")
    errors = sub.add_parser("errors", help="the failed rows of an import, as CSV")
    errors.add_argument("--output", "-o", help="write the CSV to this file instead of stdout")
    for command, func in ((cancel, cmd_cancel), (retry, cmd_retry), (undo, cmd_undo), (errors, cmd_errors)):
        command.add_argument("job_id")
        command.set_defaults(func=func)
    for command in (imp, exp, retry, undo):
        command.add_argument("--no-watch", action="store_true", help="print the job and return at once")
    for command in (imp, exp, jobs, watch, cancel, retry, undo, errors, wh_runs, wh_run, report):
        command.add_argument("--url", help="API base URL (default: CRM_URL or http://127.0.0.1:8000)")
        command.add_argument("--token", help="bearer token (default: CRM_TOKEN)")

    token = sub.add_parser("token", help="print a bearer token for local use")
    token.add_argument(
        "--service",
        action="store_true",
        help="a service token (operators, the queue manager): every account's jobs, no CRM data",
    )
    token.add_argument("--name", default="operator", help="who the service token is for (its `sub`)")
    token.add_argument("--account", help="account id (24 hex)")
    token.add_argument("--uid", help="user id (24 hex)")
    token.add_argument("--owner", action="store_true", help="the user is an account owner")
    token.add_argument("--ttl", type=int, default=7 * 24 * 3600, help="seconds the token is valid")
    token.add_argument("--data-dir", default=".crm-data", help="where `crm-jobs dev` keeps its secret")
    token.set_defaults(func=cmd_token)
    for command in (imp, exp, jobs, watch, cancel, retry, undo, errors, token, wh_runs, wh_run, report):
        command.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of text")
    return p


def main(argv: list[str] | None = None) -> None:
    from crm_jobs.client import ClientError

    p = parser()
    args = p.parse_args(argv)
    if args.command == "token" and not args.service:
        from bson import ObjectId

        for name in ("account", "uid"):
            value = getattr(args, name)
            if not (value and ObjectId.is_valid(value) and len(value) == 24):
                p.exit(2, f"crm-jobs: --{name} must be a 24-hex id (or give --service)\n")
    if args.command == "api" and args.port is None:
        args.port = _settings().port
    try:
        code = args.func(args)
    except ClientError as exc:
        p.exit(exc.exit_code, f"crm-jobs: {exc}\n")
    except KeyboardInterrupt:
        p.exit(130)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
