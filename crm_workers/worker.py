"""The module the `dramatiq` CLI loads in each worker process (`crm-jobs worker` points it here)."""

import dramatiq

from crm_workers.bootstrap import build_worker_broker
from crm_workers.logs import configure_logging
from crm_workers.settings import Settings

configure_logging()
broker = build_worker_broker(Settings.from_env().require("MONGODB_URI", "REDIS_URL"))
dramatiq.set_broker(broker)
