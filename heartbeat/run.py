"""One heartbeat run, as one straight line: lock, claim, read, evaluate, store, finish.

    host lock -> connect, check the schema -> claim the slot (run row 'running')
    -> the active students -> per batch: pace (pacing), read states (students),
       evaluate (evaluate), store (store, in a writer thread) -> complete the run row

Every way out of a claimed run records it: ``success`` or ``partial``; ``aborted`` for
the deadline or a signal (exit 4); ``failed`` for a database error (exit 3) and for
anything unforeseen (exit 5, one line: the error and what the run was doing). The locks
are released however it ends. ``coordinate`` holds the locks, the slot, the signals and
the deadline; ``store`` the SQL of the tables the job writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Optional

from heartbeat import (
    coordinate,
    db,
    evaluate,
    pacing,
    report,
    rules,
    schema,
    sizes,
    store,
    students,
)
from heartbeat.config import Config
from heartbeat.errors import (
    EXIT_ABORTED,
    EXIT_DATABASE,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PARTIAL,
    DatabaseError,
    HeartbeatError,
    InternalError,
    TakenOver,
)

log = logging.getLogger(__name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class RunSummary:
    """What ``run --json`` prints and what decides the exit code."""

    run_id: str
    status: str  # success | partial | failed | aborted | skipped | dry_run
    students_found: int = 0
    students_processed: int = 0
    errors: int = 0
    duration_ms: float = 0.0
    pacing_waits: int = 0  # times the run waited for the server's load
    pacing_wait_ms: float = 0.0  # all pacing: load waits and the spread of the writes
    failed_with: Optional[int] = None  # the exit code of the error that ended the run
    table_bytes: dict[str, int] = field(default_factory=dict, repr=False)  # for the metrics
    rows_written: int = field(default=0, repr=False)  # what pacing counts; not in --json
    sql_sent: int = field(default=0, repr=False)
    # adaptive pacing (heartbeat.adaptive), for the metrics: the lowest duty, the backoffs
    pacing_duty: float = field(default=1.0, repr=False)
    pacing_backoffs: int = field(default=0, repr=False)

    @property
    def exit_code(self) -> int:
        if self.failed_with is not None:
            return self.failed_with
        if self.status == "failed":
            return EXIT_DATABASE
        if self.status == "aborted":
            return EXIT_ABORTED
        return EXIT_PARTIAL if self.errors else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # the fields marked repr=False are for pacing and the metrics, not --json
        for internal in ("failed_with", *(f.name for f in fields(self) if not f.repr)):
            del data[internal]
        return data

    def count(self, rows: evaluate.BatchRows) -> None:
        """A batch is done (committed, or evaluated in a dry run)."""
        self.students_processed += rows.processed
        self.errors += rows.failed
        self.rows_written += rows.row_count
        self.sql_sent += rows.sent


def execute(
    config: Config,
    dry_run: bool = False,
    force: bool = False,
    clock: Callable[[], dt.datetime] = utc_now,
    on_start: Optional[Callable[[str], None]] = None,
    signals: Optional[coordinate.Signals] = None,
    on_batch: Optional[Callable[[int, int, float], None]] = None,
) -> RunSummary:
    """Run the heartbeat once; raises a ``HeartbeatError`` when the run fails.

    ``force`` runs even if the current slot was already run (a manual re-run); ``clock``
    gives the run's start (the tests simulate a day of cron starts with it);
    ``on_start`` is told the run id once this server has claimed the slot (the start
    ping); ``signals`` is the command's SIGTERM/SIGINT handler (else one of its own);
    ``on_batch`` is told (students done, of total, seconds paced) after each batch.
    """
    book = rules.load_rule_book(config.heartbeat.rules)
    if signals is None:
        with coordinate.stop_signals() as own:
            return execute(config, dry_run, force, clock, on_start, own, on_batch)
    run = _Run(config, book, dry_run, force, clock, signals, on_batch)
    if dry_run:
        return run.go(on_start)
    lock = coordinate.HostLock(config.heartbeat.lock_file)
    if not lock.acquire():
        log.info("Skipped: another heartbeat run holds the lock %s", config.heartbeat.lock_file)
        return RunSummary(run_id=run.summary.run_id, status="skipped")
    try:
        return run.go(on_start)
    finally:
        lock.release()


def check_schema(conn: Any, tables: db.Tables) -> tuple[dict[str, set[str]], dict[str, str]]:
    """The tables' columns (all there, or a DatabaseError naming what is missing) and the
    collation of each table's ``student_id`` (how it compares student ids)."""
    with db.errors_as("checking the schema"):
        found = db.columns_of(conn, tables)
        collations = db.collations_of(conn, tables)
    problems = schema.missing_schema(found, tables)
    if problems:  # a table this account may not see looks missing: say which it is
        with db.errors_as("checking the schema"):
            denied = schema.privilege_problems(conn, tables)
        problems = schema.missing_schema(found, tables, denied)
        raise DatabaseError("schema: " + "; ".join(problems))
    return found, collations


class _Run:
    """The state of one run; :meth:`go` is the run, top to bottom."""

    def __init__(
        self,
        config: Config,
        book: rules.RuleBook,
        dry_run: bool,
        force: bool,
        clock: Callable[[], dt.datetime],
        signals: coordinate.Signals,
        on_batch: Optional[Callable[[int, int, float], None]] = None,
    ) -> None:
        self.config = config
        self.on_batch = on_batch
        self.book = book
        self.dry_run = dry_run
        self.force = force
        self.clock = clock
        self.signals = signals
        self.tables = db.Tables(config.database.prefix)
        status = "dry_run" if dry_run else "running"
        self.summary = RunSummary(run_id=str(uuid.uuid4()), status=status)
        self.phase = "starting"
        self.claimed = False  # once the claim was sent, the run row may exist
        self.conn: Optional[Any] = None  # the run's own connection (it holds the locks)
        self.server: Optional[pacing.Server] = None
        self.writer: Optional[store.Writer] = None
        self.lease: Optional[coordinate.Lease] = None
        self.paced = ""  # how pacing held the run back, for the summary line

    def go(self, on_start: Optional[Callable[[str], None]]) -> RunSummary:
        settings, summary = self.config.heartbeat, self.summary
        started = time.monotonic()
        run_start = self.clock()
        conn = None
        try:
            self.phase = "connecting to the database"
            conn = self.conn = db.connect(self.config.database, settings.query_timeout_seconds)
            found, keys = self.check_schema(conn)
            # Every connection the run needs is open before it claims the slot: at the
            # server's connection limit a run fails without taking the slot (before, the
            # writer's connection failed after the claim and the slot stayed `running`).
            self.phase = "opening the run's connections"
            server, writer = self.connections(conn)
            if not self.dry_run and not self.claim(conn, run_start, on_start):
                return summary  # skipped
            suffix = " (dry run: nothing will be written)" if self.dry_run else ""
            log.info("Starting heartbeat run %s%s", summary.run_id, suffix)
            self.phase = "reading active students"
            with db.errors_as(self.phase):
                ids = students.active_student_ids(
                    conn, self.tables, run_start, settings.window_hours, settings.open_session_hours
                )
            summary.students_found = len(ids)
            log.info("Found %d active students", len(ids))
            profile_columns = found[self.tables.bare(self.tables.profiles)]
            self.batches(conn, ids, run_start, started, profile_columns, keys, server, writer)
            summary.duration_ms = round((time.monotonic() - started) * 1000, 2)
            if not self.dry_run:
                if summary.status == "running":
                    summary.status = "partial" if summary.errors else "success"
                self.phase = "recording the run result"
                with self.signals.held(), db.errors_as(self.phase):
                    self.finish(conn)
                if self.config.monitoring.metrics_file:  # its only reader
                    summary.table_bytes = self.table_bytes(conn)
        except HeartbeatError as exc:
            stopped = isinstance(exc, (coordinate.Interrupted, TakenOver))
            self.fail(started, "aborted" if stopped else "failed")
            summary.failed_with = exc.exit_code
            self.record_failure()
            if isinstance(exc, coordinate.Interrupted):
                raise coordinate.Interrupted(f"aborted: {exc} while {self.phase}") from None
            raise
        except Exception as exc:  # a bug, or data nobody foresaw: recorded, one line
            self.fail(started, "failed")
            summary.failed_with = EXIT_INTERNAL
            self.record_failure()
            raise InternalError(
                f"internal error while {self.phase}: {type(exc).__name__}: {exc} (a bug: "
                "please report it with the output of run --verbose)"
            ) from exc
        finally:
            self.close_helpers()
            if conn is not None:
                db.close_quietly(conn)  # also releases the GET_LOCK
        verb = "Aborted" if summary.status == "aborted" else "Completed"
        log.info(
            "%s: %d processed, %d errors, %.0f ms%s",
            verb,
            summary.students_processed,
            summary.errors,
            summary.duration_ms,
            f"; {self.paced}" if self.paced else "",
        )
        return summary

    def connections(self, conn: Any) -> tuple[pacing.Server, Optional[store.Writer]]:
        """What reads the server's load (and a replica's connection), the writer's
        connection and the lease's (none in a dry run)."""
        settings = self.config.heartbeat
        self.server = pacing.Server(
            conn, self.config.database, self.config.pacing, settings.query_timeout_seconds
        )
        if self.dry_run:
            return self.server, None
        self.writer = store.Writer(
            self.config.database,
            self.tables,
            settings.query_timeout_seconds,
            self.done,
            self.summary.run_id,
        )
        # its statements are the job's, not the site's
        self.server.watch(self.writer.conn, self.writer.writing)
        self.lease = coordinate.Lease(self.config, self.writer)
        return self.server, self.writer

    def check_schema(self, conn: Any) -> tuple[dict[str, set[str]], students.IdKeys]:
        """The tables' columns and how each table compares student ids."""
        self.phase = "checking the schema"
        found, collations = check_schema(conn, self.tables)
        return found, students.id_keys(collations, self.tables)

    def claim(
        self, conn: Any, run_start: dt.datetime, on_start: Optional[Callable[[str], None]]
    ) -> bool:
        """Claim the slot (the run row) and tell ``on_start``; False: skipped, because
        another server or run holds it (said in the log)."""
        self.phase = "claiming the run"
        self.claimed = True
        with db.errors_as(self.phase):
            holder = coordinate.claim(
                conn, self.config, self.tables, self.summary.run_id, run_start, self.force
            )
        if holder:
            log.info("Skipped: this slot is taken by %s", holder)
            self.summary.status = "skipped"
            return False
        if self.lease is not None:
            self.lease.start(self.summary.run_id)
        if on_start:
            self.phase = "telling the monitor that the run started"
            on_start(self.summary.run_id)
        return True

    def batches(
        self,
        conn: Any,
        ids: Sequence[str],
        run_start: dt.datetime,
        started: float,
        profile_columns: set[str],
        keys: students.IdKeys,
        server: pacing.Server,
        writer: Optional[store.Writer],
    ) -> None:
        """Every batch: read its states, evaluate, store (committed whole); between
        batches, stop when told to (a signal, the deadline) after the batch in hand."""
        settings, summary = self.config.heartbeat, self.summary
        deadline = started + settings.max_run_minutes * 60
        cache = evaluate.DocumentCache(self.book)
        day = self.summary_day(conn, run_start)
        with self.signals.held():
            pacer = pacing.Pacer(
                self.config.pacing,
                server,
                lambda: coordinate.stop_reason(
                    self.signals, deadline, settings.max_run_minutes, self.lease
                ),
                deadline,
                settings.max_run_minutes,
                writes=not self.dry_run,
                rows_per_student=1 + len(self.book.scenarios),
            )
            handed = offset = 0  # rows handed to the writer, students so far
            while offset < len(ids):
                reason = coordinate.stop_reason(
                    self.signals, deadline, settings.max_run_minutes, self.lease
                )
                if reason is None:
                    self.phase = "pacing"
                    reason = pacer.before_batch(
                        offset, len(ids), handed, summary.sql_sent, summary.rows_written
                    )
                    self.note_pacing(pacer)
                if reason:
                    if writer:
                        writer.wait()  # the batch in hand is committed
                    summary.status = "aborted"
                    log.info(
                        "Stopping early (%s) after %d of %d students", reason, offset, len(ids)
                    )
                    return
                batch = ids[offset : offset + pacer.batch_size(settings.batch_size)]
                offset += len(batch)
                self.phase = "reading student state"
                with db.errors_as(self.phase):
                    states = students.load_states(conn, self.tables, batch, profile_columns, keys)
                    # End the read transaction: no metadata lock (which would make a
                    # waiting ALTER/DROP block Moodle's own queries) or snapshot is
                    # held while the batch is evaluated and written.
                    conn.commit()
                self.phase = "evaluating students"
                rows = evaluate.evaluate_batch(
                    batch,
                    states,
                    self.book,
                    cache,
                    summary.run_id,
                    run_start,
                    settings.interval_minutes,
                    self.clock,
                    day,
                )
                self.phase = "writing results"
                handed += rows.row_count
                if writer:
                    writer.submit(rows)
                else:
                    self.done(rows)
            if writer:
                writer.wait()

    def summary_day(self, conn: Any, run_start: dt.datetime) -> dt.date:
        """The day this run counts in for the daily summary: the day ``report`` counts
        it in (``[report] time_zone``, else the database server's zone)."""
        self.phase = "reading the database server's time zone"
        with db.errors_as(self.phase):
            zone, _ = report.zone(conn, self.config.report.time_zone)
        return run_start.astimezone(zone).date()

    def done(self, rows: evaluate.BatchRows) -> None:
        """A batch is done: committed (told by the writer), or evaluated in a dry run."""
        summary = self.summary
        summary.count(rows)
        if self.on_batch:
            self.on_batch(
                summary.students_processed, summary.students_found, summary.pacing_wait_ms / 1000
            )

    def note_pacing(self, pacer: pacing.Pacer) -> None:
        self.summary.pacing_waits = pacer.waits.count
        self.summary.pacing_wait_ms = round(pacer.waits.total_s * 1000, 2)
        if pacer.controller:
            self.summary.pacing_duty = pacer.controller.lowest
            self.summary.pacing_backoffs = pacer.controller.backoffs
        self.paced = pacer.summary()

    def finish(self, conn: Any) -> None:
        summary = self.summary
        store.finish_run(
            conn,
            self.tables,
            summary.run_id,
            summary.status,
            (summary.students_processed, summary.errors),
            summary.duration_ms,
            summary.exit_code,
        )

    def table_bytes(self, conn: Any) -> dict[str, int]:
        """The job's tables' bytes after the run, for the metrics file; a failure to read
        them never changes the run's outcome (the run is recorded already)."""
        try:
            return {name: size for name, (size, _rows) in sizes.on_disk(conn, self.tables).items()}
        except (*db.DRIVER_ERRORS, DatabaseError) as exc:
            log.debug("Table sizes not read: %s", exc)
            return {}

    def close_helpers(self) -> None:
        """Stop the lease's renewals, close the writer (a batch in flight ends and counts
        if it committed, so that the row of a failed run matches the rows written) and
        the pacing reader."""
        if self.lease is not None:
            self.lease.close()
            self.lease = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.server is not None:
            self.server.close()
            self.server = None

    def fail(self, started: float, status: str) -> None:
        self.close_helpers()
        self.summary.status = status
        self.summary.duration_ms = round((time.monotonic() - started) * 1000, 2)

    def record_failure(self) -> None:
        """Best effort: complete the run row (failed or aborted, with the counts so far)
        on a fresh connection (the run's own may be what failed), or on the run's own at
        the server's connection limit; signals are held meanwhile, so that it is never cut
        short."""
        if not self.claimed:
            return
        with self.signals.held():
            try:
                conn = db.connect(self.config.database, self.config.heartbeat.query_timeout_seconds)
            except DatabaseError as exc:
                if exc.code not in db.TOO_MANY_CONNECTIONS or self.conn is None:
                    # On stdout with the run's other lines: the error line is the run's.
                    log.info("Could not record the failed run in the database: %s", exc)
                    return
                # At the server's connection limit: on the connection the run holds
                # (before, the row stayed `running` and the slot was lost).
                conn = self.conn
                with contextlib.suppress(*db.DRIVER_ERRORS):
                    conn.rollback()
            try:
                with db.errors_as("recording the failed run"):
                    self.finish(conn)
            except DatabaseError as exc:
                log.info("Could not record the failed run in the database: %s", exc)
            finally:
                if conn is not self.conn:
                    db.close_quietly(conn)
