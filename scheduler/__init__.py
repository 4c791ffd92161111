"""APScheduler wiring and the leader lease; each scheduled job enqueues work, it does none."""
