"""Raw Dramatiq no-op actors on the same Redis, for jobs_bench.py to compare against (loaded by `dramatiq`)."""

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

client = redis.Redis.from_url(os.environ["REDIS_URL"])
broker = RedisBroker(client=client, namespace=os.environ["BENCH_NAMESPACE"])
dramatiq.set_broker(broker)
COUNTER = os.environ["BENCH_NAMESPACE"] + ":done"


@dramatiq.actor(queue_name="noop", max_retries=0)
def noop(i):
    client.incr(COUNTER)
