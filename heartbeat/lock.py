"""One run at a time on a host: an advisory ``flock`` on a lock file.

The kernel drops a ``flock`` when its process dies, however it dies, so a crashed or
killed run can never leave a stale lock behind (unlike a PID file).
"""

from __future__ import annotations

import fcntl
import os
from typing import Optional

from heartbeat.errors import ConfigError


class HostLock:
    """Non-blocking exclusive lock; ``acquire`` returns False when another run holds it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self) -> bool:
        try:
            # Read-only is enough for flock, so a lock file created by root still
            # works for www-data (and the other way round) in a sticky /run/lock.
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot open lock file {self.path}: {exc.strerror}; "
                "fix [heartbeat] lock_file or the directory's permissions"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
