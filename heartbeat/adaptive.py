"""The adaptive part of pacing: how much of the database server the run takes, decided
from what the server shows, not from a dial.

A fixed rate is wrong almost everywhere: too slow on an idle server at 3 a.m., too fast
for a busy one, and its right value depends on the server's cores and disks, which the
operator of a web server rarely knows. So the run controls its *duty*: the share of the
time it keeps the server working (1.0: unpaced; 0.05: 5 ms of writes, then 95 ms of
rest). A duty is relative to the server's own speed, so the same setting fits any server.

Two signals, read at each look between batches (``pacing.Server.read``):

* the site's own traffic: the server's ``Questions`` counter minus the statements the job
  sent itself (its connections count them). At or below ``quiet_statements_per_second``
  nobody shares the server: the duty doubles at each decision, up to unpaced.
* the server's answer time, against its idle baseline (delay-based, as LEDBAT and TCP
  Vegas yield to other traffic): the round trip of the look itself, the mean of each
  decision window, compared with the lowest such mean of the last two minutes. While
  the site is busy, a look slower than ``max_delay_percent`` over the baseline halves the
  duty (multiplicative decrease); a look within it lets the duty grow by a step
  (additive increase), so the run probes for what the server can give and backs off as
  soon as it does not keep up.

The hard limits stay outside: the threshold waits (``Threads_running``, Galera, replica
lag) and the deadline, which sets the lowest duty (``floor``). :class:`Controller` is pure
(time and readings come in as arguments), so every rule has a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

#: Seconds of looks between two decisions.
DECIDE_S = 0.25
#: The duty at the start, before the first decision (the run's first look pair decides
#: before any write whether the server is quiet: ``Controller.start``).
START_DUTY = 0.05
#: The lowest duty the controller goes to by itself (the deadline may ask for more).
MIN_DUTY = 0.01
#: While the site is busy and the server keeps up, the duty grows by this much.
STEP_UP = 0.01
#: The baseline is the lowest look of the last this many seconds (as LEDBAT's base
#: delay history): it follows a server that became slower for good, in minutes.
BASE_WINDOW_S = 120.0


@dataclass
class Decision:
    """One decision: the duty before and after, and why (for ``--verbose``)."""

    before: float
    after: float
    why: str


@dataclass
class Controller:
    """Decides the run's duty from the site's traffic and the server's answer time."""

    quiet_per_s: float
    max_delay_ratio: float  # 1.25: a look may take 25 % longer than the baseline
    duty: float = START_DUTY
    floor: float = 0.0  # what the deadline needs (set by the pacer)
    decisions: int = 0
    backoffs: int = 0
    lowest: float = 1.0  # the lowest duty of the run (metrics)
    _window_start: Optional[float] = None
    _others: float = 0.0  # the site's statements in this window
    _looks: list[float] = field(default_factory=list)  # the round trips of this window
    _bases: list[tuple[float, float]] = field(default_factory=list)  # (when, lowest look)

    @property
    def pace(self) -> float:
        """The duty the run keeps now: the controller's, or more if the deadline needs it."""
        return max(self.duty, self.floor)

    def start(self, others_per_s: float) -> Decision:
        """Before the first batch: a quiet server gets the whole run unpaced at once
        (a 0.3 s run must not spend seconds ramping up); a busy one starts gently."""
        before = self.duty
        if others_per_s <= self.quiet_per_s:
            self.duty = 1.0
            why = f"the site is quiet ({others_per_s:.0f} statements/s)"
        else:
            self.duty = max(START_DUTY, self.floor)
            why = f"the site is busy ({others_per_s:.0f} statements/s)"
        self.lowest = min(self.lowest, self.duty)
        return Decision(before, self.duty, why)

    def observe(self, now: float, others: float, look_s: float) -> Optional[Decision]:
        """One look: ``others`` statements of the site since the previous look, the
        look's round trip. Returns a decision once per ``DECIDE_S`` (None: no change)."""
        if self._window_start is None:
            self._window_start = now
        self._others += others
        self._looks.append(look_s)
        elapsed = now - self._window_start
        if elapsed < DECIDE_S:
            return None
        others_per_s = max(0.0, self._others / elapsed)
        current = sum(self._looks) / len(self._looks)
        self._note_base(now, current)
        self._window_start, self._others, self._looks = now, 0.0, []
        return self.decide(now, others_per_s, current)

    def _note_base(self, now: float, look_s: float) -> None:
        self._bases = [(t, v) for t, v in self._bases if now - t <= BASE_WINDOW_S]
        self._bases.append((now, look_s))

    def base(self, now: float) -> float:
        """The idle baseline: the lowest look of the last ``BASE_WINDOW_S`` (as LEDBAT's
        base delay: the fastest the server answered lately is what it does unloaded)."""
        return min(v for t, v in self._bases if now - t <= BASE_WINDOW_S)

    def decide(self, now: float, others_per_s: float, current: float) -> Optional[Decision]:
        before = self.duty
        base = self.base(now)
        if others_per_s <= self.quiet_per_s:
            self.duty = min(1.0, self.duty * 2)
            why = f"the site is quiet ({others_per_s:.0f} statements/s)"
        elif current > base * self.max_delay_ratio:
            self.duty = max(MIN_DUTY, self.duty / 2)
            self.backoffs += before > self.duty
            why = (
                f"the site is busy ({others_per_s:.0f} statements/s) and the server answers"
                f" slower ({current * 1000:.2f} ms, idle {base * 1000:.2f} ms)"
            )
        else:
            self.duty = min(1.0, self.duty + STEP_UP)
            why = (
                f"the site is busy ({others_per_s:.0f} statements/s) and the server keeps up"
                f" ({current * 1000:.2f} ms, idle {base * 1000:.2f} ms)"
            )
        self.duty = max(self.duty, self.floor)
        self.lowest = min(self.lowest, self.duty)
        self.decisions += 1
        if self.duty == before:
            return None
        return Decision(before, self.duty, why)
