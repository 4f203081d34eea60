"""What the site's own statements feel while the job runs: the adaptive pacing's signal.

The harm a run does to a Moodle site is the time its statements wait for the server
while the job works. The look between batches (``pacing.Server.read``) cannot see it:
it comes while the job rests, and on a 2-core server under a 200 statements/s
neighbour its round trip stays at 0.7 ms whether the job works 2 % or 100 % of the time,
while the neighbour's p99 goes from 1.0x to 6.7x its idle p99 (docs/performance.md).

So while the site is busy, a thread of the job sends the cheapest statement there is
(``DO 0``) on a connection of its own, every ``PROBE_EVERY_S``, as the site's statements
come: independent of the job's batches. A probe sent while the job works waits as the
site's statements do then; one sent while the job rests and its writer has nothing in
flight is *idle* and makes the baseline. ``heartbeat.adaptive`` keeps the share of
probes slower than the idle p99 plus ``max_delay_percent`` under 1 %: the site's p99
within that delay. The probe's statements are the job's own (its connection is watched,
``pacing.Server.watch``), so they never make the site look busy.

Python lets one thread run at a time: a probe that returns while the run's thread
evaluates waits for its turn, for up to the interpreter's switch interval (5 ms by
default), which would read as the server's delay. While the probe runs the interval is
``SWITCH_INTERVAL_S``; the run's thread then hands over within that, and only when
another thread asks for it (the writer and the probe, some hundred times a second).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Optional

from heartbeat import db

#: Seconds between two probes (about 90 a second with their round trips): a decision
#: window of ``adaptive.WINDOW_PROBES`` fills in about a second.
PROBE_EVERY_S = 0.01
#: While the site is quiet the probe sends nothing; it looks again this often.
INACTIVE_NAP_S = 0.05
#: The interpreter's switch interval while the probe runs (see the module's docstring).
SWITCH_INTERVAL_S = 0.0005

#: What the run does without its probe (said with why it has none).
WITHOUT = "while the site is busy, the run stays at its start duty or lower"

#: One probe: (when it was sent, its round trip in seconds, sent and answered while the
#: job rested with nothing in flight).
Sample = tuple[float, float, bool]


class Probe:
    """Sends ``DO 0`` on ``conn`` from a thread while ``active``; ``take`` hands over the
    round trips since the last call. ``resting`` (set by the pacer) and ``writing`` (the
    writer has a batch in flight) tell an idle probe from one sent while the job works.
    A failed probe stops and says why (``error``); the run goes on without it."""

    def __init__(
        self,
        conn: Any,
        writing: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.writing = writing
        self.clock = clock
        self.active = False
        self.resting = True
        self.error: Optional[str] = None
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._loop, name="heartbeat-probe", daemon=True)
        self._thread.start()

    def _idle(self) -> bool:
        return self.resting and not self.writing()

    def _loop(self) -> None:
        try:
            with self.conn.cursor() as cur:
                while not self._stop.is_set():
                    if not self.active:
                        self._stop.wait(INACTIVE_NAP_S)
                        continue
                    idle = self._idle()
                    sent = self.clock()
                    cur.execute("DO 0")
                    took = self.clock() - sent
                    sample = (sent, took, idle and self._idle())  # idle from start to end
                    with self._lock:
                        self._samples.append(sample)
                    self._stop.wait(PROBE_EVERY_S)
        except db.DRIVER_ERRORS as exc:
            self.error = str(exc) or type(exc).__name__

    def take(self) -> list[Sample]:
        """The probes since the last call, oldest first."""
        with self._lock:
            samples, self._samples = self._samples, []
        return samples

    def close(self) -> None:
        """Stop the thread (a probe in flight ends first: ``DO 0`` takes microseconds, and
        a hung server is left to the connection's time limits) and close its connection."""
        self._stop.set()
        self._thread.join(timeout=5)
        sys.setswitchinterval(self._switch)
        db.close_quietly(self.conn)
