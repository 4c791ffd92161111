"""Who else is importing into an account right now, so that an import alone skips claims (claims.py).

Claims cost a write and a delete per new key: about as much as the records themselves. They only matter
when another import of the same account writes at the same time, so each running import keeps a presence
document (`crm.import.claims`, kind `importer`) and decides before each chunk whether it is alone.

The hand-over is the delicate part: an import alone writes a chunk without claims; one that starts
meanwhile must not decide anything before that chunk is written. So a newcomer writes its presence first,
then takes the next number of the account's epoch, and waits until every other import has promised (its
`seen` epoch) that it finished the chunk it was writing and will see the newcomer from its next decision on.
An import promises after each chunk's writes and before each decision: it reads the epoch, records it as
`seen`, then reads the presences, so a newcomer whose epoch it has seen is always among them. A newcomer
waits at most one chunk of each running import, and not at all for one that is gone (its job no longer
running, or its presence expired).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import cast

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.database import Database

from crm_workers.adapters.mongo import IMPORT_CLAIMS, QUEUES

#: A presence not renewed for this long (seconds) is a dead worker's; its job record says so sooner.
PRESENCE_LEASE_SECONDS = 600
#: How often (seconds) a newcomer looks whether the running imports have seen it.
JOIN_POLL_SECONDS = 0.2


class Importers:
    def __init__(self, db: Database, account_id: ObjectId, job_id: ObjectId, now):
        self.db, self.account_id, self.job_id, self.now = db, account_id, job_id, now
        self._me = {"account_id": account_id, "kind": "importer", "key": str(job_id)}

    def join(self) -> None:
        """This import writes into the account from now on; returns once no other import can be writing
        without having seen it."""
        self._promise(0)
        epoch = cast(
            dict,
            self.db[IMPORT_CLAIMS].find_one_and_update(
                {"account_id": self.account_id, "kind": "epoch", "key": ""},
                {"$inc": {"n": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            ),
        )["n"]
        while [o for o in self._others() if o.get("seen", 0) < epoch]:
            self.ack()  # nothing written yet: promising costs nothing, and two newcomers never wait for each other
            time.sleep(JOIN_POLL_SECONDS)

    def alone(self) -> bool:
        """Before a chunk decides: whether no other import of the account is running (then no claims)."""
        self.ack()
        return not self._others()

    def ack(self) -> None:
        """Every write of this import so far is done; its next decision sees every import that joined before."""
        epoch = self.db[IMPORT_CLAIMS].find_one({"account_id": self.account_id, "kind": "epoch", "key": ""})
        self._promise(epoch["n"] if epoch else 0)

    def leave(self) -> None:
        self.db[IMPORT_CLAIMS].delete_one(self._me)

    def _promise(self, seen: int) -> None:
        expires = self.now() + timedelta(seconds=PRESENCE_LEASE_SECONDS)
        self.db[IMPORT_CLAIMS].update_one(
            self._me, {"$max": {"seen": seen}, "$set": {"expires_at": expires}}, upsert=True
        )

    def _others(self) -> list[dict]:
        """The other imports of the account still running (a dead worker's job is re-queued by the sweeper)."""
        present = list(
            self.db[IMPORT_CLAIMS].find(
                {
                    "account_id": self.account_id,
                    "kind": "importer",
                    "key": {"$ne": str(self.job_id)},
                    "expires_at": {"$gt": self.now()},
                }
            )
        )
        if not present:
            return []
        running = {
            str(j["_id"])
            for j in self.db[QUEUES].find(
                {
                    "_id": {"$in": [ObjectId(p["key"]) for p in present]},
                    "account_id": self.account_id,
                    "status": "running",
                },
                {"_id": 1},
            )
        }
        return [p for p in present if p["key"] in running]
