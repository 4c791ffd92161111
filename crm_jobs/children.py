"""Child processes that stop cleanly: each in its own process group, dying with its parent, stopped with escalation.

Why process groups: a graceful stop goes to the child alone (Dramatiq's and gunicorn's main processes then stop
their own workers in order), and whatever is left of the child's tree afterwards (a grandchild that outlived its
parent) is killed with one `killpg`. A terminal's Ctrl-C reaches only the supervisor, which stops everything in
order instead of every process at once.

Why `PR_SET_PDEATHSIG`: a supervisor killed with SIGKILL runs no cleanup; Linux itself then sends SIGTERM to
each child. It is Linux-only (elsewhere nothing is set) and tied to the *thread* that started the child, so it is
only set for children started from the main thread, whose end is the end of the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable

_PR_SET_PDEATHSIG = 1

#: How long (seconds) a child whose process group was sent SIGKILL may take to be reaped.
KILL_REAP_SECONDS = 5


def _load_prctl():
    if not os.uname().sysname == "Linux":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def die_with_parent(sig: signal.Signals = signal.SIGTERM, *, parent_pid: int | None = None) -> None:
    """In a child process: have the kernel send `sig` when the parent ends (Linux; a no-op elsewhere).

    With `parent_pid`, a parent that already ended before the request was made is caught too.
    """
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


def _preexec(parent_pid: int):
    def preexec() -> None:  # runs in the child between fork and exec: keep it to the one system call
        die_with_parent(parent_pid=parent_pid)

    return preexec


def spawn(argv: list[str], **popen_kwargs) -> subprocess.Popen:
    """Start `argv` in a process group of its own that ends when this process ends (Linux)."""
    started_by_main = threading.current_thread() is threading.main_thread()
    preexec = _preexec(os.getpid()) if _prctl is not None and started_by_main else None
    # Outside the terminal's foreground group, a read from the terminal would stop the child (SIGTTIN).
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(argv, process_group=0, preexec_fn=preexec, **popen_kwargs)


def forked_children_die_with_this_process() -> None:
    """Every process this one forks from its main thread (Dramatiq's workers, gunicorn's) gets SIGTERM when it
    ends, even by SIGKILL. Call once, before forking (forked children inherit the rule for their own forks)."""
    if _prctl is None:
        return
    forker: dict[str, int | None] = {"pid": None}

    def before() -> None:
        forker["pid"] = os.getpid() if threading.current_thread() is threading.main_thread() else None

    def after_in_child() -> None:
        pid, forker["pid"] = forker["pid"], None
        if pid is not None:
            die_with_parent(parent_pid=pid)

    def after_in_parent() -> None:
        forker["pid"] = None

    os.register_at_fork(before=before, after_in_child=after_in_child, after_in_parent=after_in_parent)


def exited(proc: subprocess.Popen) -> bool:
    """Whether the child ended, without reaping it: while it is an unreaped zombie its pid (the id of its process
    group) cannot be reused, so a `killpg` of that group can only reach what is left of the child's own tree."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
    except AttributeError:  # no waitid on this platform
        return proc.poll() is not None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop(procs: Iterable[subprocess.Popen], *, timeout: float, sig: signal.Signals = signal.SIGTERM) -> list[int]:
    """Ask each child to stop with `sig`, wait up to `timeout` seconds for all, then SIGKILL the process group of
    each one still running. Whatever a stopped child left behind in its group is killed too. Every child is
    reaped; their exit codes are returned in order."""
    procs = list(procs)
    for proc in procs:
        if not exited(proc):
            try:
                os.kill(proc.pid, sig)  # not Popen.send_signal: it reaps an ended child (see `exited`)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while not all(exited(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    for proc in procs:
        if proc.returncode is None:
            _kill_group(proc)  # the leader (if still running) and any straggler it left in its group
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=KILL_REAP_SECONDS))
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL (D state)
            codes.append(-int(signal.SIGKILL))
    return codes
