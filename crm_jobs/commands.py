"""The client commands of `crm-jobs` (import, export, jobs, watch, cancel, retry, undo, errors): each returns its
exit code, or raises ClientError with the code and one line to print (crm_jobs/client.py says which)."""

from __future__ import annotations

import json
import sys


def _client(args):
    from crm_jobs.client import Client

    return Client(args.url, args.token)


def _started(args, job: dict) -> int:
    """A job the command started: followed to its end unless --no-watch; the exit code says how it ended."""
    from crm_jobs.client import OK, exit_code, watch

    if args.no_watch:
        print(json.dumps(job) if args.json else f"job {job['id']} ({job['type']}) {job['status']}")
        return OK
    if not args.json:
        print(f"job {job['id']} ({job['type']}) {job['status']}", flush=True)
    return exit_code(watch(_client(args), job["id"], as_json=args.json))


def cmd_import(args) -> int:
    from crm_jobs.client import import_file

    return _started(
        args, import_file(_client(args), args.file, entity=args.entity, mapping=args.mapping, options=args.options)
    )


def cmd_export(args) -> int:
    from crm_jobs.client import export

    return _started(args, export(_client(args), entity=args.entity, filter_json=args.filter, fmt=args.format))


def cmd_jobs(args) -> int:
    from crm_jobs.client import jobs_page, jobs_table

    page = jobs_page(
        _client(args), status=args.status, job_type=args.type, account=args.account, limit=args.limit, after=args.after
    )
    if args.json:
        print(json.dumps(page))
    else:
        jobs_table(page)
    return 0


def cmd_watch(args) -> int:
    from crm_jobs.client import exit_code, watch

    return exit_code(watch(_client(args), args.job_id, interval=args.interval, as_json=args.json))


def cmd_cancel(args) -> int:
    job = _client(args).call("POST", f"/jobs/{args.job_id}/cancel")
    print(
        json.dumps(job)
        if args.json
        else f"job {job['id']} ({job['type']}) {job['status']}"
        + (" (stops at its next checkpoint)" if job["status"] == "running" else "")
    )
    return 0


def cmd_retry(args) -> int:
    return _started(args, _client(args).call("POST", f"/jobs/{args.job_id}/retry"))


def cmd_undo(args) -> int:
    return _started(args, _client(args).call("POST", f"/jobs/{args.job_id}/undo"))


def cmd_errors(args) -> int:
    from crm_jobs.client import csv_as_records, error_rows

    text = error_rows(_client(args), args.job_id)
    if args.json:
        print(json.dumps(csv_as_records(text)))
    elif args.output:
        with open(args.output, "w", encoding="utf-8-sig", newline="") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_warehouse_run(args) -> int:
    return _started(args, _client(args).call("POST", "/warehouse/runs"))


def cmd_warehouse_runs(args) -> int:
    from crm_jobs.client import warehouse_table

    runs = _client(args).call("GET", "/warehouse/runs")["runs"][: args.limit]
    if args.json:
        print(json.dumps({"runs": runs}))
    else:
        warehouse_table(runs)
    return 0
