"""The two images' files, read (no Docker daemon here): complete each, sharing their dependency layers."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _steps(name: str) -> list[str]:
    """The file's instructions, comments and blank lines left out."""
    return [line for line in (ROOT / name).read_text().splitlines() if line and not line.startswith("#")]


def test_the_api_and_worker_images_share_their_first_layers_and_install_the_lock_with_hashes():
    api, worker = _steps("Dockerfile.api"), _steps("Dockerfile.worker")
    shared = api[: api.index("WORKDIR /data") + 1]

    assert worker[: len(shared)] == shared  # the same lines in the same order: one cache for both builds
    assert "RUN pip install --require-hashes -r requirements.lock" in shared
    assert shared.index("COPY requirements.lock ./") < shared.index("COPY crm_api crm_api")  # deps before code
    assert api[-1] == 'CMD ["crm-jobs", "api", "--host", "0.0.0.0", "--port", "8000"]'
    assert worker[-1].startswith('CMD ["crm-jobs", "worker"')
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "dockerfile: Dockerfile.api" in compose and "dockerfile: Dockerfile.worker" in compose
