"""Pacing: spending the interval kindly on a database the Moodle site shares.

Between two batches the run looks at the server (one ``SHOW GLOBAL STATUS``): while it
is loaded past a limit of ``[pacing]`` it waits and looks again, as gh-ost's
``--max-load`` and ``--max-lag-millis`` do:

* ``Threads_running`` (statements executing right now, the job's own look included);
* on MariaDB Galera, the share of time the cluster spent paused by flow control since
  the last look (``wsrep_flow_control_paused_ns``, as pt-online-schema-change's
  ``--max-flow-ctl``) and this node's receive queue (``wsrep_local_recv_queue``);
* with ``replica`` set, that replica's lag (``SHOW REPLICA STATUS``; a replica that is
  not replicating has no lag to wait out, so it counts as over the limit).

Besides, the run spreads its writes so that on average it writes no more than
``max_rows_per_second`` rows (and ``max_bytes_per_second`` bytes of SQL): it sleeps
before a batch that would come early. That spread never costs the deadline: when the
students left could not be written by the deadline's last quarter at the capped rate,
the rate is raised just enough. A load wait has no such way out: when the next look
would come after the deadline, the run stops as at its deadline (the batch in hand
committed, exit 4), and the line says that pacing held it back, on what and how long.

Every wait is logged (``--verbose``), counted (the summary line, ``run --json``, the
metrics). :func:`over_limits` is pure; :class:`Server` reads the values; :class:`Pacer`
decides and waits.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from heartbeat import adaptive, db, probe
from heartbeat.config import DatabaseConfig, PacingConfig
from heartbeat.errors import DatabaseError

log = logging.getLogger(__name__)

#: Seconds between two looks at the server while waiting.
LOOK_EVERY_S = 1.0
#: The rate spread aims to be done by this share of the deadline (the rest is slack for
#: load waits and the last batches).
SPREAD_SHARE = 0.75
#: While the rate is capped, a batch is about this many seconds of the capped writes.
STEP_S = 0.1
#: The longest single sleep: signals and the deadline are looked at in between.
NAP_S = 0.2

REPLICA_FIX = (
    "; the job's user must reach the replica with the same password and hold REPLICA"
    " MONITOR there (MySQL: REPLICATION CLIENT), or remove [pacing] replica"
)
STATUS_NAMES = (
    "Threads_running",
    "wsrep_flow_control_paused_ns",
    "wsrep_local_recv_queue",
    "Questions",
)
#: Before the first batch, the adaptive pacing looks twice this far apart: is the site
#: quiet (the run goes unpaced at once) or busy (it starts gently)?
FIRST_LOOK_S = 0.1


@dataclass(frozen=True)
class Reading:
    """One look at the server; None: not known there (no Galera, no replica set)."""

    threads_running: Optional[int] = None
    flow_control_percent: Optional[float] = None  # since the previous look
    recv_queue: Optional[int] = None
    replica_lag_s: Optional[float] = None  # inf: the replica is not replicating
    others: Optional[int] = None  # the site's statements since the previous look (about)


def over_limits(reading: Reading, limits: PacingConfig) -> list[tuple[str, str]]:
    """Each limit ``reading`` is past: (the check, ``"Threads_running 40 > 25"``); a
    limit of 0 is no limit."""
    checks = (
        ("Threads_running", reading.threads_running, limits.max_threads_running, "{:.0f}"),
        (
            "Galera flow control",
            reading.flow_control_percent,
            limits.max_flow_control_percent,
            "{:.0f}%",
        ),
        ("wsrep_local_recv_queue", reading.recv_queue, limits.max_recv_queue, "{:.0f}"),
        ("replica lag", reading.replica_lag_s, limits.max_replica_lag_seconds, "{:.0f} s"),
    )
    found = []
    for name, value, limit, form in checks:
        if limit and value is not None and value > limit:
            shown = "not replicating" if value == float("inf") else form.format(value)
            found.append((name, f"{name} {shown} > {form.format(limit)}"))
    return found


def describe(reading: Reading, limits: PacingConfig, replica: str = "") -> str:
    """What ``check`` says about pacing: each value read and its limit, the rate."""
    parts = []
    if reading.threads_running is not None:
        parts.append(
            f"Threads_running {reading.threads_running}{_limit(limits.max_threads_running)}"
        )
    if reading.recv_queue is not None:
        parts.append(
            f"Galera: wsrep_local_recv_queue {reading.recv_queue}{_limit(limits.max_recv_queue)},"
            f" flow control{_limit(limits.max_flow_control_percent, '%')}"
        )
    if reading.replica_lag_s is not None:
        lag = reading.replica_lag_s
        shown = "not replicating" if lag == float("inf") else f"{lag:.0f} s behind"
        parts.append(f"{replica} {shown}{_limit(limits.max_replica_lag_seconds, ' s')}")
    rates = []
    if limits.max_rows_per_second:
        rates.append(f"{limits.max_rows_per_second:,} rows/s")
    if limits.max_bytes_per_second:
        rates.append(f"{limits.max_bytes_per_second:,} bytes/s")
    parts.append("writes at most " + " and ".join(rates) if rates else "writes not capped")
    if limits.max_delay_percent:
        parts.append(
            f"adaptive: unpaced while the site sends at most"
            f" {limits.quiet_statements_per_second} statements/s, else keeps the site's p99"
            f" within {limits.max_delay_percent}% of idle"
        )
    text = "; ".join(parts)
    over = over_limits(reading, limits)
    if over:
        text += f" (a run would wait now: {_said(over)})"
    return text


def _limit(limit: int, unit: str = "") -> str:
    return f" (waits above {limit}{unit})" if limit else " (not watched)"


def _said(reasons: list[tuple[str, str]]) -> str:
    return "; ".join(text for _, text in reasons)


class Server:
    """Reads the values the limits are about: the job's own server, and the replica."""

    def __init__(
        self,
        conn: Any,
        database: DatabaseConfig,
        limits: PacingConfig,
        statement_timeout: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.database = database
        self.statement_timeout = statement_timeout
        self.clock = clock
        self.replica: Optional[Any] = None
        self.probe: Optional[probe.Probe] = None
        self.probe_tried = False  # its connection is opened once, the first time asked
        self._writing: list[Callable[[], bool]] = []  # the job's writers: one in flight?
        self.replica_where = ""
        self._paused: Optional[tuple[float, int]] = None  # (when, paused ns) last look
        self._questions: Optional[tuple[int, int]] = None  # (server's, the job's) last look
        self.own = [conn]  # the job's connections to this server (``watch``)
        if limits.replica is not None:
            host, port = limits.replica
            self.replica_where = f"replica {host}:{port}"
            target = dataclasses.replace(database, host=host, port=port, socket=None)
            try:
                self.replica = db.connect(target, statement_timeout)
            except DatabaseError as exc:
                raise DatabaseError(f"{exc} ([pacing] replica){REPLICA_FIX}") from None

    def watch(self, conn: Any, writing: Optional[Callable[[], bool]] = None) -> None:
        """Count ``conn``'s statements as the job's own; ``writing`` tells whether a
        batch is in flight on it (the writer's)."""
        self.own.append(conn)
        if writing is not None:
            self._writing.append(writing)

    def start_probe(self) -> Optional[probe.Probe]:
        """The adaptive pacing's probe, on a connection of its own whose statements are
        the job's; None, said once, when that connection cannot be opened (a server at
        its ``max_connections``): the run goes on without it. Asked again, it does not
        retry."""
        if self.probe_tried:
            return self.probe
        self.probe_tried = True
        try:
            conn = db.connect(self.database, self.statement_timeout)
        except DatabaseError as exc:
            log.warning("Pacing: %s (the probe); %s", exc, probe.WITHOUT)
            return None
        self.watch(conn)
        self.probe = probe.Probe(conn, lambda: any(writing() for writing in self._writing))
        return self.probe

    def read(self) -> Reading:
        with db.errors_as("reading the server's load (pacing)"), self.conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN (%s, %s, %s, %s)", STATUS_NAMES)
            values = {str(name).lower(): str(value) for name, value in cur.fetchall()}
            # Before the commit: the server's count holds this look, not the commit.
            own = sum(getattr(conn, "statements", 0) for conn in self.own)
            self.conn.commit()
        now = self.clock()
        questions, others = _int(values.get("questions")), None
        if questions is not None:
            if self._questions is not None:
                # Not clamped at 0: a statement the writer sent while this look read
                # the counter is the job's here and the server's at the next look; the
                # two cancel out in the controller's window.
                server, mine = questions - self._questions[0], own - self._questions[1]
                others = server - mine
            self._questions = (questions, own)
        paused = _int(values.get("wsrep_flow_control_paused_ns"))
        percent = None
        if paused is not None:
            if self._paused is not None and now > self._paused[0]:
                elapsed_ns = (now - self._paused[0]) * 1e9
                percent = min(100.0, 100.0 * (paused - self._paused[1]) / elapsed_ns)
            self._paused = (now, paused)
        return Reading(
            threads_running=_int(values.get("threads_running")),
            flow_control_percent=percent,
            recv_queue=_int(values.get("wsrep_local_recv_queue")),
            replica_lag_s=self.replica_lag(),
            others=others,
        )

    def replica_lag(self) -> Optional[float]:
        if self.replica is None:
            return None
        try:
            with db.errors_as(f"reading the lag of {self.replica_where} (pacing)"):
                with self.replica.cursor() as cur:
                    cur.execute("SHOW REPLICA STATUS")
                    row = cur.fetchone()
                    names = [column[0] for column in cur.description or ()]
                self.replica.commit()
        except DatabaseError as exc:
            raise DatabaseError(f"{exc}{REPLICA_FIX}") from None
        if row is None:
            return float("inf")  # not a replica (any more)
        status = dict(zip(names, row))
        lag = status.get("Seconds_Behind_Master", status.get("Seconds_Behind_Source"))
        return float("inf") if lag is None else float(lag)

    def stop_probe(self) -> None:
        """Close the probe (the run's end, or a probe that failed: its connection goes
        at once, not at the run's end)."""
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    def close(self) -> None:
        self.stop_probe()
        if self.replica is not None:
            db.close_quietly(self.replica)


def _int(text: Optional[str]) -> Optional[int]:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


@dataclass
class Waits:
    """How pacing held the run back: load waits (count, seconds, why) and spread."""

    count: int = 0
    load_s: float = 0.0
    spread_s: float = 0.0
    yield_s: float = 0.0  # the adaptive rests between batches (``heartbeat.adaptive``)
    reasons: dict[str, float] = field(default_factory=dict)  # check name -> seconds

    @property
    def total_s(self) -> float:
        return self.load_s + self.spread_s + self.yield_s


class Pacer:
    """Decides, before each batch, whether the run goes on now, later, or stops."""

    def __init__(
        self,
        limits: PacingConfig,
        server: Server,
        stop_requested: Callable[[], Optional[str]],
        deadline: float,
        max_minutes: int,
        writes: bool = True,
        rows_per_student: int = 6,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self.writes = writes
        self.rows_per_student = rows_per_student
        self.server = server
        self.stop_requested = stop_requested
        self.deadline = deadline
        self.max_minutes = max_minutes
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.waits = Waits()
        self._done = (0, 0, 0, 0)  # the figures of the last before_batch
        self._raised_rate = False
        self.controller: Optional[adaptive.Controller] = None
        if writes and limits.max_delay_percent:
            self.controller = adaptive.Controller(
                limits.quiet_statements_per_second, 1 + limits.max_delay_percent / 100
            )
        self._rested = self.started  # when the last rest ended
        self._busy_s = 0.0  # time the run worked (not pacing)
        self.checks_load = any(
            (
                limits.max_threads_running,
                limits.max_flow_control_percent,
                limits.max_recv_queue,
                limits.replica is not None and limits.max_replica_lag_seconds,
            )
        )
        if self.checks_load or self.controller:
            server.read()  # the first flow-control figure is a difference to this one
        if self.controller:
            self.sleep(FIRST_LOOK_S)
            reading = server.read()
            seconds = max(self.clock() - self.started, 1e-6)
            self._note(self.controller.start((reading.others or 0) / seconds))
            self._steer_probe()
            self._rested = self.clock()

    def before_batch(
        self, students_done: int, students_total: int, handed: int, sent: int, written: int
    ) -> Optional[str]:
        """Wait as long as the limits say; a reason to stop the run, or None to go on.

        ``handed`` rows of ``students_done`` of ``students_total`` students went to the
        writer so far; of them, ``written`` are committed, by ``sent`` bytes of SQL.
        """
        size = sent * handed // written if written else 0
        self._done = (students_done, students_total, handed, size)
        worked = self.clock() - self._rested  # reading, evaluating, writing
        self._busy_s += worked
        sender = self.server.probe
        if sender:
            sender.resting = True
        reason = self.spread(*self._done)
        if reason is None and self.controller:
            reason = self.rest(self.controller, worked, students_done, students_total)
        if reason is None and (self.checks_load or self.controller):
            reason = self.wait_for_load()
        if sender:
            sender.resting = False
        self._rested = self.clock()
        return reason

    # ------------------------------------------------------------------ adaptive
    def look(self) -> Reading:
        """Read the server; the adaptive controller learns from every look."""
        reading = self.server.read()
        if self.controller and reading.others is not None:
            sender = self.server.probe
            probes = sender.take() if sender else []
            self._note(self.controller.observe(self.clock(), reading.others, probes))
            self._steer_probe()
        return reading

    def _steer_probe(self) -> None:
        """The probe runs while the site is busy (its connection is opened the first time
        the site is: a quiet site never sees it); one that failed is said once and let go
        (the controller then holds a busy site at its start duty or lower)."""
        controller = self.controller
        if controller is None:
            return
        sender = self.server.start_probe() if controller.busy else self.server.probe
        if sender is None:
            return
        if sender.error:
            log.warning("Pacing: the probe stopped (%s); %s", sender.error, probe.WITHOUT)
            self.server.stop_probe()
            controller.forget_baseline()
            return
        sender.active = controller.busy

    def _note(self, decision: Optional[adaptive.Decision]) -> None:
        if decision:
            log.debug(
                "Pacing: %s: duty %.0f%% -> %.0f%%",
                decision.why,
                decision.before * 100,
                decision.after * 100,
            )

    def rest(
        self,
        controller: adaptive.Controller,
        worked: float,
        students_done: int,
        students_total: int,
    ) -> Optional[str]:
        """Rest so that the run works ``duty`` of the time: after ``worked`` seconds of
        work, ``worked * (1 - duty) / duty``; never less than the deadline needs."""
        controller.floor = self.floor(students_done, students_total)
        duty = controller.pace
        if duty >= 1.0:
            return None
        began = self.clock()
        stop = self.nap_until(began + worked * (1 - duty) / duty)
        self.waits.yield_s += self.clock() - began
        return stop

    def floor(self, students_done: int, students_total: int) -> float:
        """The lowest duty that still ends the run by ``SPREAD_SHARE`` of its deadline,
        at the speed the run has worked so far (0 before there is a speed)."""
        if not students_done or self._busy_s <= 0:
            return 0.0
        left = self.started + (self.deadline - self.started) * SPREAD_SHARE - self.clock()
        if left <= 0:
            return 1.0
        speed = students_done / self._busy_s  # students per second of work
        return min(1.0, (students_total - students_done) / left / speed)

    # ------------------------------------------------------------------ the load
    def wait_for_load(self) -> Optional[str]:
        reasons = over_limits(self.look(), self.limits)
        if not reasons:
            return None
        began = self.clock()
        self.waits.count += 1
        log.debug("Pacing: waiting (%s)", _said(reasons))
        while reasons:
            if self.clock() + LOOK_EVERY_S > self.deadline:
                waited = self.clock() - began
                self._count_load(reasons, waited)
                return (
                    f"pacing held the run back {self.waits.load_s:.0f} s, the last wait"
                    f" {waited:.0f} s on {_said(reasons)}; deadline of"
                    f" {self.max_minutes} min reached"
                )
            stop = self.nap_until(self.clock() + LOOK_EVERY_S)
            if stop:
                self._count_load(reasons, self.clock() - began)
                return stop
            latest = over_limits(self.look(), self.limits)
            if not latest:
                break
            reasons = latest
        waited = self.clock() - began
        self._count_load(reasons, waited)
        log.debug("Pacing: going on after %.1f s", waited)
        return None

    def _count_load(self, reasons: list[tuple[str, str]], seconds: float) -> None:
        self.waits.load_s += seconds
        for name, _ in reasons:
            self.waits.reasons[name] = self.waits.reasons.get(name, 0.0) + seconds

    # ------------------------------------------------------------------ the rate
    def plan(self, students_done: int, students_total: int, rows: int, size: int) -> float:
        """How long the whole run takes at the capped rate, in seconds (0: no cap), from
        what was written so far; never more than the deadline allows."""
        limits = self.limits
        if not self.writes or not (limits.max_rows_per_second or limits.max_bytes_per_second):
            return 0.0
        if students_done:
            rows_total = rows * students_total / students_done
            size_total = size * students_total / students_done
        else:  # before the first batch: the rows a student usually gets, bytes unknown
            rows_total, size_total = students_total * self.rows_per_student, 0.0
        span = 0.0
        if limits.max_rows_per_second:
            span = rows_total / limits.max_rows_per_second
        if limits.max_bytes_per_second:
            span = max(span, size_total / limits.max_bytes_per_second)
        budget = (self.deadline - self.started) * SPREAD_SHARE
        if span > budget:
            if not self._raised_rate:
                self._raised_rate = True
                log.info(
                    "Pacing: writing faster than [pacing] allows, to be done within %d min:"
                    " %d students at the capped rate would take %.0f s",
                    self.max_minutes,
                    students_total,
                    span,
                )
            span = budget
        return span

    def batch_size(self, configured: int) -> int:
        """Students in the next batch: ``configured``, or, while the rate is capped, what
        the cap writes in ``STEP_S`` (many small batches spread the writes evenly; a
        batch of 1000 students is a burst of writes the neighbours feel)."""
        students_total = self._done[1]
        span = self.plan(*self._done)
        size = configured
        if span:
            size = max(1, min(configured, round(students_total / span * STEP_S)))
        if self.controller:
            # small batches at a low duty: a short burst, then a rest, many times over
            size = max(1, min(size, round(configured * self.controller.pace)))
        return size

    def spread(
        self, students_done: int, students_total: int, rows: int, size: int
    ) -> Optional[str]:
        """Sleep until the rows (bytes) written so far fit the capped rate."""
        span = self.plan(students_done, students_total, rows, size)
        if not span or not students_done:
            return None
        due = self.started + span * students_done / students_total
        if due <= self.clock():
            return None
        began = self.clock()
        stop = self.nap_until(due)
        self.waits.spread_s += self.clock() - began
        return stop

    def nap_until(self, moment: float) -> Optional[str]:
        """Sleep until ``moment`` in short naps; a reason to stop if one came up."""
        while True:
            stop = self.stop_requested()
            if stop:
                return stop
            left = moment - self.clock()
            if left <= 0:
                return None
            self.sleep(min(NAP_S, left))

    def summary(self) -> str:
        """``paced 12.0 s (Threads_running: 2 waits, 3.1 s; spread 8.9 s)``, or ""."""
        waits = self.waits
        if waits.total_s < 0.05 and not waits.count:
            return ""
        parts = []
        if waits.count:
            why = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in waits.reasons.items())
            parts.append(f"{waits.count} load waits, {waits.load_s:.1f} s: {why}")
        if waits.spread_s >= 0.05:
            parts.append(f"spread {waits.spread_s:.1f} s")
        controller = self.controller
        if controller and waits.yield_s >= 0.05:
            parts.append(
                f"yielded {waits.yield_s:.1f} s, duty down to {controller.lowest:.0%},"
                f" {controller.backoffs} backoffs"
            )
        return f"paced {waits.total_s:.1f} s ({'; '.join(parts)})"
