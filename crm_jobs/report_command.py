"""`crm-jobs report <kind> [--from --to --interval --pipeline --automation] [--refresh] [--json | --csv]`:
a report through the API — the stored answer, or the job computing it followed to its end."""

from __future__ import annotations

import json
import sys
import time

from crm_jobs.client import ClientError

POLL_SECONDS = 0.5


def _query(args) -> dict:
    query = {
        "from": args.from_,
        "to": args.to,
        "interval": args.interval,
        "pipeline_id": args.pipeline,
        "automation_id": args.automation,
        "refresh": "1" if args.refresh else None,
    }
    return {k: v for k, v in query.items() if v is not None}


def fetch_report(client, kind: str, query: dict, *, timeout: float = 600) -> dict:
    """The report's answer: at once when stored and fresh, else once its job completes."""
    response = client.request("GET", f"/reports/{kind}", params=query)
    body = response.json()
    if response.status_code == 200:
        return body
    deadline = time.monotonic() + timeout
    while body["status"] not in ("completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise ClientError(f"the report's job {body['id']} did not end within {timeout:.0f} s", 1)
        time.sleep(POLL_SECONDS)
        body = client.poll(f"/jobs/{body['id']}")
    if body["status"] != "completed":
        error = body.get("error") or {}
        raise ClientError(f"the report's job {body['id']} {body['status']}: {error.get('message', '')}", 1)
    return body["result"]


def _money(value) -> str:
    return f"{value:,.2f}"


def print_report(answer: dict, out=sys.stdout) -> None:
    data, kind, params = answer["data"], answer["kind"], answer["params"]
    print(f"{kind} {params['from']} .. {params['to']} (computed {answer['computed_at']})", file=out)
    if kind == "new_contacts":
        for p in data["series"]:
            print(
                f"  {p['period']}  {p['total']:>7}  persons {p['persons']:>6}  businesses {p['businesses']:>6}",
                file=out,
            )
        print(f"  total {data['total']}", file=out)
    elif kind == "pipeline":
        print(f"  values in {data['base_currency']}, rates as of {data['rates_as_of']}", file=out)
        for p in data["pipelines"]:
            rate = "-" if p["win_rate"] is None else f"{p['win_rate']:.0%}"
            print(
                f"  {p['name']}: open {p['open_count']} ({_money(p['open_value'])}), won {p['won_count']} "
                f"({_money(p['won_value'])}), lost {p['lost_count']}, win rate {rate}",
                file=out,
            )
            for s in p["stages"]:
                print(f"    {s['name']:<24} {s['open_count']:>6}  {_money(s['open_value']):>16}", file=out)
        print("  leaderboard:", file=out)
        for row in data["leaderboard"]:
            print(
                f"    {row['owner']}  won {row['won_count']} ({_money(row['won_value'])})  lost {row['lost_count']}"
                f"  open {row['open_count']}",
                file=out,
            )
    else:
        t = data["totals"]
        print(
            f"  runs {t['runs']}: succeeded {t['succeeded']}, failed {t['failed']}, skipped {t['skipped']}, "
            f"waiting {t['waiting']}",
            file=out,
        )
        for a in data["automations"]:
            print(f"    {a['automation_id']}  runs {a['runs']}  failed {a['failed']}", file=out)


def cmd_report(args) -> int:
    from crm_jobs.commands import _client
    from crm_workers.services.reports.csv_out import report_csv

    answer = fetch_report(_client(args), args.kind, _query(args))
    if args.json:
        print(json.dumps(answer))
    elif args.csv:
        sys.stdout.write(report_csv(answer))
    else:
        print_report(answer)
    return 0
