"""Webhooks for job events (docs/contract.md §10): subscriptions, the outbox of deliveries, and sending them.

- `subscriptions`: an account's subscriptions and secrets;
- `outbox`: the deliveries a job's end calls for, recorded in MongoDB before anything is sent;
- `sender`: one attempt of one delivery (claimed atomically, signed, its outcome recorded);
- `dispatcher`: the worker's sending threads, apart from the job threads, so a slow receiver delays no job.
"""


def attach(broker, *, db, settings) -> None:
    """A worker's broker gets the senders, and each job it ends has its deliveries recorded at once."""
    from crm_workers.adapters.middleware.job_lifecycle import JobLifecycle
    from crm_workers.services.webhooks import dispatcher, interest, outbox

    subscribed = interest.SubscribedAccounts(db)

    def record_deliveries(job):
        if outbox.record_job_end(db, job["_id"]):
            dispatcher.wake()

    for middleware in broker.middleware:
        if isinstance(middleware, JobLifecycle):
            middleware.after_end[:] = [record_deliveries]
            middleware.events_wanted = subscribed.wants
    broker.add_middleware(
        dispatcher.WebhookDispatcher(
            db=db,
            senders=settings.webhook_senders,
            account_senders=settings.webhook_account_senders,
            poll_seconds=settings.webhook_poll_seconds,
            allow_private=settings.webhook_allow_private,
            retry_base_seconds=settings.webhook_retry_seconds,
            subscribed=subscribed,
        )
    )
