"""The module the `dramatiq` CLI loads in each worker process (`crm-jobs worker` points it here)."""

import dramatiq
from dramatiq.middleware.prometheus import Prometheus

from crm_workers.bootstrap import build_worker_broker
from crm_workers.logs import configure_logging
from crm_workers.settings import Settings

settings = Settings.from_env().require("MONGODB_URI", "REDIS_URL")
configure_logging(settings)
broker = build_worker_broker(settings)
# Dramatiq's own Prometheus exporter: messages, errors, retries, durations per actor (and so per job type),
# served by a forked process on $dramatiq_prom_port (9191) for every worker process of this machine.
broker.add_middleware(Prometheus())
dramatiq.set_broker(broker)
