"""Helpers for tests that run `crm-jobs` commands as real processes and check what is left of them afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil


def crm_jobs_process(argv: list[str], *, env: dict, log: Path) -> subprocess.Popen:
    """`crm-jobs <argv>` in a session of its own (as a shell or an init system would start it), output to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "crm_jobs.cli", *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def tree(pid: int) -> list[psutil.Process]:
    """The process and every descendant it has now."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def listening_ports(procs: list[psutil.Process]) -> set[int]:
    ports = set()
    for proc in procs:
        try:
            ports |= {c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            pass
    return ports


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (as servers do: SO_REUSEADDR, so TIME_WAIT is no conflict)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def still_running(procs: list[psutil.Process], timeout: float = 0) -> list[psutil.Process]:
    """Those of `procs` still running after up to `timeout` seconds (zombies count as ended)."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    running = []
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
        except psutil.NoSuchProcess:
            pass
    return running


def kill_all(procs: list[psutil.Process]) -> None:
    """Test clean-up: SIGKILL whatever is left, so a failed test leaks no server."""
    for proc in procs:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def tail(log: Path, limit: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-limit:]
    except OSError:
        return ""
