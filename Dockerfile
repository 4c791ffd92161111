# One file, two images sharing one base (the locked dependencies, then the code):
#   docker build --target api    -t crm-jobs-api .
#   docker build --target worker -t crm-jobs-worker .
# The scheduler and the Pub/Sub bridge run from the worker image (`crm-jobs scheduler`, `crm-jobs pubsub`).
# Every setting comes from the environment at run time (README: Production); none is baked in.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The user the processes run as, and a data folder it owns (for a file:///data/... STORAGE_URL on a volume).
RUN useradd --create-home --uid 10001 crm && mkdir -p /data && chown crm:crm /data
WORKDIR /app
# Dependencies in their own layer, exactly as locked (hashes checked): editing the code reuses this layer.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
# Then the code, installed without touching the dependencies.
COPY pyproject.toml README.md ./
COPY crm_api crm_api
COPY crm_workers crm_workers
COPY crm_jobs crm_jobs
COPY scheduler scheduler
RUN pip install --no-deps . && rm -rf build *.egg-info
USER crm
WORKDIR /data

FROM base AS api
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-c", \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["crm-jobs", "api", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
# Dramatiq's Prometheus exporter (messages, errors, retries, durations per actor) for this container's workers.
ENV dramatiq_prom_host=0.0.0.0 dramatiq_prom_port=9191
EXPOSE 9191
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9191/', timeout=4)"]
# Scale by running more containers; pick queues with --queues.
CMD ["crm-jobs", "worker", "--processes", "2", "--threads", "8"]
