"""The account-fairness renewal copied the held slots, a release removed
one meanwhile, and the renewal wrote it back: a phantom slot for the lease's length, the account running one
heavy job fewer. On a real Valkey, a release that comes while a renewal is writing leaves no slot behind, and the
account can take its full limit right after."""

from __future__ import annotations

import threading

import dramatiq
import redis
from bson import ObjectId

from crm_workers.adapters.middleware.account_fairness import AccountFairness


def message(account: str) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name="imports",
        actor_name="contacts.import",
        args=(),
        kwargs={"job_id": str(ObjectId())},
        options={"account_id": account},
    )


class PausingValkey(redis.Redis):
    """A real client whose renewal write waits, once armed, until the test lets it go: the moment the race needs
    (a renewal that has read the held slots and not yet written them) held open on purpose."""

    armed, paused, go = False, threading.Event(), threading.Event()

    def pipeline(self, *args, **kwargs):
        pipe = super().pipeline(*args, **kwargs)
        if self.armed:
            real = pipe.execute

            def execute(*a, **kw):
                self.paused.set()
                assert self.go.wait(30)
                return real(*a, **kw)

            pipe.execute = execute
        return pipe


def test_a_release_during_a_renewal_leaves_no_phantom_slot(redis_url):
    client = PausingValkey.from_url(redis_url)
    fairness = AccountFairness(
        client=client, queues=["imports"], limit=2, lease_seconds=600, namespace=f"t{ObjectId()}"
    )
    account = str(ObjectId())
    took, release_now = threading.Event(), threading.Event()

    def a_job():  # a worker thread: takes its slot, runs, gives the slot back (the slot is the thread's own)
        msg = message(account)
        fairness.before_process_message(None, msg)
        took.set()
        assert release_now.wait(30)
        fairness.after_process_message(None, msg)

    job = threading.Thread(target=a_job)
    job.start()
    assert took.wait(30) and client.zcard(fairness.key(account)) == 1
    client.armed = True
    renewal = threading.Thread(target=fairness.renew)
    renewal.start()
    assert client.paused.wait(30)  # the renewal is writing the slot it holds
    release_now.set()
    job.join(0.5)  # before the fix the release went through at once; now it waits for the renewal's write
    client.go.set()
    renewal.join(30)
    job.join(30)
    client.armed = False

    assert client.zcard(fairness.key(account)) == 0  # the released slot stays released
    held = [message(account), message(account)]
    for each in held:
        fairness.before_process_message(None, each)  # the account's full limit, at once
    assert client.zcard(fairness.key(account)) == 2
    for each in held:
        fairness.after_process_message(None, each)
