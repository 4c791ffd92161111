"""contacts.link tells the users concerned through the socket service (docs/contract.md §10): the caller and the
owner of the business or deal, one notification each per job.

Stored like reminder notifications (services/reminders/delivery.py): one document per job and user with a unique
`dedupe_key` (and an `_id` made from it) before anything is sent, marked once sent. A retried job (the socket
service was down) sends what is still unsent; it never stores or sends one twice.
"""

from __future__ import annotations

from pymongo.database import Database

from crm_workers.adapters.mongo import CONTACTS, DEALS, NOTIFICATIONS, oid
from crm_workers.domain.ids import stable_id
from crm_workers.jobs import now
from crm_workers.services.reminders.delivery import deliver
from crm_workers.services.reminders.fanout import insert_new


def _concerned(db: Database, job: dict) -> tuple[str, dict | None, list]:
    p, account_id = job["params"], job["account_id"]
    field = "business_id" if p.get("business_id") else "deal_id"
    collection = CONTACTS if field == "business_id" else DEALS
    target = db[collection].find_one({"_id": oid(p.get(field)), "account_id": account_id}, {"owner": 1, "name": 1})
    caller = oid((p.get("principal") or {}).get("uid")) or job.get("created_by")
    users = [u for u in (caller, (target or {}).get("owner")) if u is not None]
    return field, target, list(dict.fromkeys(users))


def notify_linked(db: Database, settings, job: dict, count: int) -> int:
    """Store the job's notifications (once per user) and send those not sent yet; how many were sent now."""
    field, target, users = _concerned(db, job)
    if not users:
        return 0
    account_id, job_id, ts = job["account_id"], job["_id"], now()
    claim_id = f"link:{job_id}"
    name = (target or {}).get("name") or ("the business" if field == "business_id" else "the deal")
    docs = []
    for uid in users:
        dedupe_key = f"contacts.linked:{job_id}:{uid}"
        docs.append(
            {
                "_id": stable_id(dedupe_key),
                "account_id": account_id,
                "uid": uid,
                "type": "contacts.linked",
                "title": f"{count} contact{'s' if count != 1 else ''} linked to {name}",
                "data": {"type": "contacts.linked", "job_id": str(job_id), field: job["params"][field], "count": count},
                "read": False,
                "claim_id": claim_id,
                "delivered_at": None,
                "created_at": ts,
                "dedupe_key": dedupe_key,
            }
        )
    insert_new(db[NOTIFICATIONS], docs)
    return deliver(db, settings, {"claim_id": claim_id, "account_id": account_id})
