"""The adaptive part of pacing: how much of the database server the run takes, decided
from what the server shows, not from a dial.

A fixed rate is wrong almost everywhere: too slow on an idle server at 3 a.m., too fast
for a busy one, and its right value depends on the server's cores and disks, which the
operator of a web server rarely knows. So the run controls its *duty*: the share of the
time it keeps the server working (1.0: unpaced; 0.05: 5 ms of writes, then 95 ms of
rest). A duty is relative to the server's own speed, so the same setting fits any server.

Two signals, taken in at each look between batches (``pacing.Pacer.look``):

* the site's own traffic: the server's ``Questions`` counter minus the statements the job
  sent itself (its connections count them). At or below ``quiet_statements_per_second``
  nobody shares the server: the duty doubles at each decision, up to unpaced.
* what the site's statements feel (delay-based, as LEDBAT and TCP Vegas yield to other
  traffic): while the site is busy, the job's probe (``heartbeat.probe``) sends a trivial
  statement about 90 times a second. The probes sent while the job rested make the idle
  baseline (their p99 over the last two minutes); a probe slower than that p99 plus
  ``max_delay_percent`` is *slow*. A window of about a hundred probes with more than
  1 % slow ones (the site's p99 past the allowed delay) cuts the duty in proportion
  to them, as DCTCP cuts its window in proportion to the marked packets: two slow
  probes in a hundred take a fifth off, five or more halve it. A window within it lets
  the duty grow by a tenth, so the run probes for what the server can give and backs
  off as soon as it does not. Both steps are relative to the duty, as the duty is to
  the server: the same rule fits a 2-core server where the site allows the run 2 % and
  a large one where it allows 50 %. (A step of 1 % of the time and a halving at every
  cut made the duty swing between 1 % and 6 % on such a server, and the swings past
  4 % were what the site felt; docs/performance.md.)

The hard limits stay outside: the threshold waits (``Threads_running``, Galera, replica
lag) and the deadline, which sets the lowest duty (``floor``). :class:`Controller` is pure
(time and readings come in as arguments), so every rule has a unit test.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

#: Seconds of looks between two decisions on the site's traffic.
DECIDE_S = 0.25
#: The duty at the start, before the first decision (the run's first look pair decides
#: before any write whether the server is quiet: ``Controller.start``).
START_DUTY = 0.05
#: The lowest duty the controller goes to by itself (the deadline may ask for more).
MIN_DUTY = 0.01
#: While the site is busy and its statements keep their pace, the duty grows by this
#: share of itself at each full window (1.1x: from 2 % to 4 % in seven windows, about
#: eight seconds; from 5 % to unpaced in about half a minute).
GROWTH = 0.1
#: Probes in a decision window on the delay; more than ``SLOW_SHARE`` of them slow
#: decides early (two slow probes of a hundred are enough to back off).
WINDOW_PROBES = 100
#: The share of slow probes a window may have: the site's p99 stays within the delay.
SLOW_SHARE = 0.01
#: Past ``SLOW_SHARE``, each per cent of slow probes in the window takes this many per
#: cent off the duty: 2 % slow, x0.8; 3 %, x0.7; 5 % or more, x``MAX_CUT`` (a halving: a
#: load that comes all at once makes a third of the probes slow).
CUT_PER_SLOW = 10.0
MAX_CUT = 0.5
#: The baseline is the p99 of the idle probes of the last this many seconds (as LEDBAT's
#: base delay history): it follows a server that became slower for good, in minutes.
BASE_WINDOW_S = 120.0
#: Idle probes needed before their p99 is a baseline (about half a second of rests).
MIN_BASE_PROBES = 50
#: The idle probes kept for the baseline (about 45 s of rests at 90 probes a second).
MAX_BASE_PROBES = 4096


@dataclass
class Decision:
    """One decision: the duty before and after, and why (for ``--verbose``)."""

    before: float
    after: float
    why: str


@dataclass
class Controller:
    """Decides the run's duty from the site's traffic and what its statements feel."""

    quiet_per_s: float
    max_delay_ratio: float  # 1.25: a statement may take 25 % longer than the idle p99
    duty: float = START_DUTY
    floor: float = 0.0  # what the deadline needs (set by the pacer)
    busy: bool = False  # the site's traffic at the last decision (the probe runs then)
    decisions: int = 0
    backoffs: int = 0
    lowest: float = 1.0  # the lowest duty of the run (metrics)
    _window_start: Optional[float] = None
    _others: float = 0.0  # the site's statements in this window
    _window: list[float] = field(default_factory=list)  # the probes' round trips since
    # the last delay decision, judged against the baseline once per decision
    _idle: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=MAX_BASE_PROBES)
    )  # (when, round trip) of the idle probes

    @property
    def pace(self) -> float:
        """The duty the run keeps now: the controller's, or more if the deadline needs it."""
        return max(self.duty, self.floor)

    def start(self, others_per_s: float) -> Decision:
        """Before the first batch: a quiet server gets the whole run unpaced at once
        (a 0.3 s run must not spend seconds ramping up); a busy one starts gently."""
        before = self.duty
        self.busy = others_per_s > self.quiet_per_s
        if not self.busy:
            self.duty = 1.0
            why = f"the site is quiet ({others_per_s:.0f} statements/s)"
        else:
            self.duty = max(START_DUTY, self.floor)
            why = f"the site is busy ({others_per_s:.0f} statements/s)"
        self.lowest = min(self.lowest, self.duty)
        return Decision(before, self.duty, why)

    def observe(
        self, now: float, others: float, probes: Sequence[tuple[float, float, bool]] = ()
    ) -> Optional[Decision]:
        """One look: ``others`` statements of the site since the previous look, and the
        probes since then, (sent, round trip, idle). Returns a decision once per
        ``DECIDE_S`` at most (None: no change)."""
        if self._window_start is None:
            self._window_start = now
        self._others += others
        self._idle.extend((sent, took) for sent, took, idle in probes if idle)
        self._window.extend(took for _, took, _ in probes)
        elapsed = now - self._window_start
        if elapsed < DECIDE_S:
            return None
        others_per_s = max(0.0, self._others / elapsed)
        self._window_start, self._others = now, 0.0
        return self.decide(others_per_s, self.limit(now))

    def limit(self, now: float) -> Optional[float]:
        """The round trip past which a probe is slow: the idle probes' p99 of the last
        ``BASE_WINDOW_S``, times ``max_delay_ratio``; None while there are too few."""
        while self._idle and now - self._idle[0][0] > BASE_WINDOW_S:
            self._idle.popleft()
        if len(self._idle) < MIN_BASE_PROBES:
            return None
        ordered = sorted(took for _, took in self._idle)
        return ordered[int(0.99 * len(ordered))] * self.max_delay_ratio

    def forget_baseline(self) -> None:
        """No more probes will come (the probe failed): no baseline either, so a busy
        site keeps the run at ``START_DUTY`` or lower."""
        self._idle.clear()
        self._window.clear()

    def decide(self, others_per_s: float, limit: Optional[float]) -> Optional[Decision]:
        before = self.duty
        site = f"the site is busy ({others_per_s:.0f} statements/s)"
        self.busy = others_per_s > self.quiet_per_s
        if limit is None:
            self._window.clear()  # probes before a baseline judge nothing
        probes = len(self._window)
        slow = sum(took > limit for took in self._window) if limit is not None else 0
        share = slow / max(probes, WINDOW_PROBES)  # a window not yet full counts as full
        judged = f"{site} and {slow} of {probes} probes took over {(limit or 0) * 1000:.2f} ms"
        if not self.busy:
            self.duty = min(1.0, self.duty * 2)
            why = f"the site is quiet ({others_per_s:.0f} statements/s)"
        elif limit is None:  # no rests yet to learn it from: make some, gently
            if self.duty <= START_DUTY:
                return None
            self.duty = max(START_DUTY, self.duty / 2)
            why = f"{site} and its idle answer time is not known yet"
        elif share > SLOW_SHARE:
            self.duty = max(MIN_DUTY, self.duty * max(MAX_CUT, 1 - CUT_PER_SLOW * share))
            why = judged
        elif probes >= WINDOW_PROBES:
            self.duty = min(1.0, self.duty * (1 + GROWTH))
            why = judged
        else:
            return None  # the delay window is not full yet
        self.backoffs += before > self.duty
        self._window.clear()
        self.duty = max(self.duty, self.floor)
        self.lowest = min(self.lowest, self.duty)
        self.decisions += 1
        if self.duty == before:
            return None
        return Decision(before, self.duty, why)
