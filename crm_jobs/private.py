"""Files with secrets in them (the dev JWT secret, a bearer token): readable by their owner only."""

from __future__ import annotations

import os


def write_private(path, text: str) -> None:
    """A file only its owner may read (0600), whatever the umask, and made so again if it was readable by
    others (a secret or a bearer token written by an earlier version)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
