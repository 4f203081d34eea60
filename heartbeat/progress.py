"""A run's progress, batch by batch: on a terminal, one line redrawn in place.

``students done of total (share), rate, time left, pacing``, after each committed
batch. On a terminal (stdout is a TTY, or ``run --progress``) the line is redrawn with
a carriage return and erased before any log line and at the end, so the log lines stay
as they are. ``run --progress`` where stdout is no terminal (a file, a pipe) prints one
ordinary log line per batch instead, without control characters; under cron there is no
progress at all unless asked for (``--no-progress`` turns it off on a terminal).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from heartbeat.output import StatusLine

log = logging.getLogger(__name__)


def describe(done: int, total: int, elapsed_s: float, paced_s: float) -> str:
    """``12,000 of 100,000 students (12%), 6,800/s, about 13 s left, paced 1.2 s``."""
    share = 100.0 * done / total if total else 100.0
    text = f"{done:,} of {total:,} students ({share:.0f}%)"
    if done and elapsed_s > 0:
        rate = done / elapsed_s
        text += f", {rate:,.0f}/s, about {_duration((total - done) / rate)} left"
    if paced_s >= 0.05:
        text += f", paced {paced_s:.1f} s"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Told after each batch; draws the status line or logs a line."""

    def __init__(
        self, status: Optional[StatusLine], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.status = status  # None: log lines (stdout is no terminal)
        self.clock = clock
        self.started = clock()

    def __call__(self, done: int, total: int, paced_s: float) -> None:
        text = describe(done, total, self.clock() - self.started, paced_s)
        if self.status is None:
            log.info("Progress: %s", text)
        else:
            self.status.show(f"Heartbeat: {text}")

    def close(self) -> None:
        if self.status is not None:
            self.status.clear()
