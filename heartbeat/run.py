"""One heartbeat run: lock, read active students in batches, evaluate, write in bulk.

Per batch of ``batch_size`` students: four state queries, then multi-row INSERTs of
at most 1 MB each (about six for 1,000 students) and one COMMIT on a second connection,
in a writer thread, so that the server takes batch k while batch k+1 is read and
evaluated. A batch is written whole or not at all. The run row in ``heartbeat_log`` is
written first (status ``running``) and completed at the end, also when the run fails
part-way, so a failed run is visible to monitoring.

Several web servers of one Moodle site may all run the cron entry: the database
decides which one runs a schedule slot. A named lock (``GET_LOCK``, as Moodle's own cron
uses) keeps two runs from overlapping, and the run row's unique ``slot_start`` keeps a
second server from running the same slot again after the first finished. On MariaDB
Galera the named lock is per node (or refused), so there the slot row decides alone. The
losers exit 0, ``skipped``.

A deadline (``max_run_minutes``) and SIGTERM/SIGINT stop the run between batches: the
batch in hand is committed, the run is recorded ``aborted`` and the job exits 4.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Any, Callable, Optional

import pymysql

from heartbeat import db, events, rules, schedule, schema, students
from heartbeat.config import Config
from heartbeat.errors import EXIT_ABORTED, EXIT_DATABASE, EXIT_OK, EXIT_PARTIAL, DatabaseError
from heartbeat.lock import HostLock

PRIORITY = 2
Say = Callable[[str], None]


@dataclass
class RunSummary:
    """What ``run --json`` prints and what decides the exit code."""

    run_id: str
    status: str  # success | partial | failed | aborted | skipped | dry_run
    students_found: int = 0
    students_processed: int = 0
    errors: int = 0
    duration_ms: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.status == "failed":
            return EXIT_DATABASE
        if self.status == "aborted":
            return EXIT_ABORTED
        return EXIT_PARTIAL if self.errors else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Output:
    """Where the run reports: ``say`` always, ``detail`` only with --verbose, and
    ``started`` (with the run id) once this server has claimed the slot."""

    say: Say
    detail: Optional[Say] = None
    started: Optional[Say] = None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ----------------------------------------------------------------- pure evaluation


@dataclass
class BatchRows:
    """The rows one batch writes, as SQL row literals ``(...)``, and its counts."""

    evaluations: list[str]
    events: list[str]
    processed: int = 0
    failed: int = 0


class RowEncoder:
    """Turns evaluation results into the row literals of the two log tables.

    What repeats is encoded once per run. An ``evaluation_result`` document differs
    between students only in the rules evaluated and matched and in ``duration_ms``,
    its last key: its JSON text up to ``"duration_ms":`` is encoded and escaped once
    per (scenario, rules evaluated, rules matched) and the duration appended as
    ``json.dumps`` writes a float. Routing documents, scenario ids, modes and the event
    type are encoded once too. The text stored is exactly ``json.dumps`` of each
    document; ``escape`` is ``db.string_escaper`` of the connection that writes.
    """

    _TAIL = '"duration_ms":0.0}'

    def __init__(self, book: rules.RuleBook, run_id: str, escape: Callable[[str], str]) -> None:
        self.escape = escape
        self.run_literal = f"'{escape(run_id)}'"
        self.topic_literal = f"'{escape(events.EVENT_TOPIC)}'"
        self.scenario_count = len(book.scenarios)
        # (scenario, "'S0',", ",<rules_count>,'<mode>',", escaped '"S0":')
        self.scenarios = [
            (
                scenario,
                f"'{escape(scenario.scenario_id)}',",
                f",{len(scenario.rules)},'{escape(scenario.mode)}',",
                escape(_json(scenario.scenario_id) + ":"),
            )
            for scenario in book.scenarios
        ]
        self._heads: dict[tuple[str, int, tuple[str, ...]], Optional[str]] = {}
        self._routes: dict[tuple[str, tuple[int, ...]], str] = {}

    def result(self, scenario_id: str, result: dict[str, Any]) -> str:
        """The escaped JSON text of one ``evaluation_result`` document."""
        key = (
            scenario_id,
            result["rules_evaluated"],
            tuple([match["rule_id"] for match in result["matched_rules"]]),
        )
        head = self._heads.get(key, "")
        if head == "":
            text = _json({**result, "duration_ms": 0.0})
            # Only when duration_ms is the last key (it is, see rules.evaluate).
            head = self.escape(text[: -len("0.0}")]) if text.endswith(self._TAIL) else None
            self._heads[key] = head
        if head is None:
            return self.escape(_json(result))
        return f"{head}{result['duration_ms']!r}}}"

    def routing(self, routing: dict[str, Any]) -> str:
        """The escaped JSON text of a routing document (a handful per run)."""
        key = (routing["strategy"], tuple(routing["agents"]))
        text = self._routes.get(key)
        if text is None:
            text = self._routes[key] = self.escape(_json(routing))
        return text


def process_batch(
    student_ids: Sequence[str],
    states: dict[str, dict[str, Any]],
    book: rules.RuleBook,
    encoder: RowEncoder,
    run_start: dt.datetime,
    interval_minutes: int,
    detail: Optional[Say] = None,
) -> BatchRows:
    """Evaluate every student of a batch; one student's failure never stops the others."""
    now = utc_now()
    stamp = db.datetime_literal(_naive(now))
    escape = encoder.escape
    run_literal, topic = encoder.run_literal, encoder.topic_literal
    rows = BatchRows([], [])
    for student_id in student_ids:
        state = states.get(student_id, {"student_id": student_id})
        event = events.build_event(student_id, state, run_start, interval_minutes)
        event_id = escape(event["event_id"])
        try:
            events.validate_event(event)
            results = [rules.evaluate(scenario, state) for scenario in book.scenarios]
            routing = events.route(event, now)
        # One student's failure (invalid event, unexpected data) must not stop the
        # batch: it is recorded as a failed event row and counted as an error.
        except Exception as exc:  # noqa: BLE001
            rows.failed += 1
            message = f"{type(exc).__name__}: {exc}"
            rows.events.append(
                f"('{event_id}',{topic},'{escape(student_id[: events.MAX_STUDENT_ID])}',0,"
                f"'{escape(_json({'error': message}))}',NULL,{PRIORITY},'failed',"
                f"{stamp},{stamp},{run_literal})"
            )
            if detail:
                detail(f"student {student_id}: FAILED: {message}")
            continue
        sid = escape(student_id)
        documents = []
        for (scenario, scenario_literal, middle, key), result in zip(encoder.scenarios, results):
            document = encoder.result(scenario.scenario_id, result)
            rows.evaluations.append(
                f"('{event_id}',{scenario_literal}'{sid}'{middle}'{document}',{stamp})"
            )
            documents.append(key + document)
        # scenario id -> result, assembled from the already encoded results.
        rows.events.append(
            f"('{event_id}',{topic},'{sid}',{encoder.scenario_count},"
            f"'{{{','.join(documents)}}}','{encoder.routing(routing)}',{PRIORITY},"
            f"'completed',{stamp},{stamp},{run_literal})"
        )
        rows.processed += 1
        if detail:
            matched = [m["rule_id"] for r in results for m in r["matched_rules"]]
            detail(
                f"student {student_id}: {len(matched)} rule(s) matched"
                f" ({', '.join(matched) or 'none'}), route {routing['strategy']}"
            )
    return rows


# ----------------------------------------------------------------- database writes


def _write_batch(conn: Any, tables: db.Tables, rows: BatchRows) -> None:
    """One transaction: multi-row INSERTs of at most ``db.MAX_STATEMENT_BYTES``."""
    with conn.cursor() as cur:
        if rows.evaluations:
            for statement in db.insert_statements(
                f"INSERT INTO {tables.evaluation_log}"
                f" ({', '.join(schema.EVALUATION_COLUMNS)}) VALUES ",
                rows.evaluations,
            ):
                cur.execute(statement)
        if rows.events:
            for statement in db.insert_statements(
                f"INSERT INTO {tables.event_log} ({', '.join(schema.EVENT_COLUMNS)}) VALUES ",
                rows.events,
            ):
                cur.execute(statement)
    conn.commit()


class _Writer:
    """Writes batches on a connection of its own, in a thread, one batch in flight.

    While the server takes batch k, the run reads and evaluates batch k+1: the
    database and Python work at the same time instead of in turns. Each batch is still
    one transaction; a batch counts as processed once committed; the first write error
    is raised (as ``DatabaseError``) by the next ``submit``, ``wait`` or ``close``.
    """

    def __init__(self, config: Config, tables: db.Tables) -> None:
        self.tables = tables
        self.conn = db.connect(
            config.database, statement_timeout=config.heartbeat.query_timeout_seconds
        )
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat-writer")
        self.pending: Optional[tuple[Future[None], BatchRows]] = None

    def _write(self, rows: BatchRows) -> None:
        with db.errors_as("writing results"):
            _write_batch(self.conn, self.tables, rows)

    def submit(self, rows: BatchRows, summary: RunSummary) -> None:
        self.wait(summary)
        self.pending = (self.pool.submit(self._write, rows), rows)

    def wait(self, summary: RunSummary) -> None:
        """Wait for the batch in flight; count it once it is committed."""
        if self.pending is None:
            return
        future, rows = self.pending
        self.pending = None
        future.result()
        summary.students_processed += rows.processed
        summary.errors += rows.failed

    def close(self, summary: RunSummary) -> None:
        """Let a write in flight end and count it if it committed (so the run row of a
        failed run matches the rows written); its error, if any, is already being raised."""
        with contextlib.suppress(Exception):
            self.wait(summary)
        self.pool.shutdown(wait=True)
        db.close_quietly(self.conn)


def slot_of(config: Config, moment: dt.datetime) -> dt.datetime:
    """The schedule slot (naive UTC) a run starting at ``moment`` belongs to."""
    settings = config.heartbeat
    if settings.schedule is not None:
        return schedule.slot_of(moment, settings.schedule)
    return schedule.interval_slot(moment, settings.interval_minutes)


def _claim_slot(
    conn: Any,
    tables: db.Tables,
    run_id: str,
    run_start: dt.datetime,
    slot: Optional[dt.datetime],
) -> Optional[str]:
    """Write the run row (status running); None if claimed, else who has the slot."""
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {tables.heartbeat_log} (execution_time, students_processed,"
                " errors, duration_ms, created_at, run_id, host, status, slot_start)"
                " VALUES (%s, 0, 0, 0, %s, %s, %s, 'running', %s)",
                (_naive(run_start), _naive(run_start), run_id, socket.gethostname()[:255], slot),
            )
        conn.commit()
    except pymysql.err.IntegrityError:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT host, status FROM {tables.heartbeat_log} WHERE slot_start = %s", (slot,)
            )
            row = cur.fetchone()
        conn.commit()
        return f"host {row[0]} ({row[1]})" if row else "another run"
    return None


def _close_stale_runs(conn: Any, tables: db.Tables, older_than: dt.datetime) -> int:
    """Mark runs still 'running' long after any deadline as failed: their process died."""
    with conn.cursor() as cur:
        count = int(
            cur.execute(
                f"UPDATE {tables.heartbeat_log} SET status = 'failed'"
                " WHERE status = 'running' AND created_at < %s",
                (_naive(older_than),),
            )
        )
    conn.commit()
    return count


def _finish_record(conn: Any, tables: db.Tables, summary: RunSummary) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE {tables.heartbeat_log} SET students_processed = %s, errors = %s,"
            " duration_ms = %s, status = %s, finished_at = %s, exit_code = %s"
            " WHERE run_id = %s",
            (
                summary.students_processed,
                summary.errors,
                round(summary.duration_ms, 2),
                summary.status,
                _naive(utc_now()),
                summary.exit_code,
                summary.run_id,
            ),
        )
    conn.commit()


# ----------------------------------------------------------------- the run


class _StopFlag:
    """Set by SIGTERM/SIGINT; the run checks it between batches."""

    def __init__(self) -> None:
        self.signal_name: Optional[str] = None

    def __call__(self, signum: int, _frame: Optional[FrameType]) -> None:
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_StopFlag]:
    """Catch SIGTERM and SIGINT for the duration of the run, then restore the handlers."""
    flag = _StopFlag()
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def execute(
    config: Config,
    out: Output,
    dry_run: bool = False,
    force: bool = False,
    clock: Callable[[], dt.datetime] = utc_now,
) -> RunSummary:
    """Run the heartbeat once; raises ``ConfigError``/``DatabaseError`` on fatal errors.

    ``force`` runs even if the current slot was already run (a manual re-run); ``clock``
    gives the run's start (the tests simulate a day of cron starts with it).
    """
    book = rules.load_rule_book(config.heartbeat.rules)
    run_id = str(uuid.uuid4())
    if dry_run:
        return _execute(config, book, out, run_id, clock(), dry_run=True, force=force)
    lock = HostLock(config.heartbeat.lock_file)
    if not lock.acquire():
        out.say(f"Skipped: another heartbeat run holds the lock {config.heartbeat.lock_file}")
        return RunSummary(run_id=run_id, status="skipped")
    try:
        return _execute(config, book, out, run_id, clock(), dry_run=False, force=force)
    finally:
        lock.release()


def _execute(
    config: Config,
    book: rules.RuleBook,
    out: Output,
    run_id: str,
    run_start: dt.datetime,
    dry_run: bool,
    force: bool,
) -> RunSummary:
    settings = config.heartbeat
    tables = db.Tables(config.database.prefix)
    started = time.monotonic()
    deadline = started + settings.max_run_minutes * 60
    summary = RunSummary(run_id=run_id, status="dry_run" if dry_run else "running")
    conn = db.connect(config.database, statement_timeout=settings.query_timeout_seconds)
    recorded = False
    try:
        with db.errors_as("checking the schema"):
            found = db.columns_of(conn, tables)
        problems = schema.missing_schema(found, tables)
        if problems:
            raise DatabaseError("schema: " + "; ".join(problems))
        profile_columns = found[tables.bare(tables.profiles)]
        if not dry_run:
            with db.errors_as("claiming the run"):
                holder = _claim(conn, config, tables, run_id, run_start, force)
            if holder:
                out.say(f"Skipped: this slot is taken by {holder}")
                summary.status = "skipped"
                return summary
            recorded = True
            if out.started:
                out.started(run_id)
        suffix = " (dry run: nothing will be written)" if dry_run else ""
        out.say(f"Starting heartbeat run {run_id}{suffix}")
        with db.errors_as("reading active students"):
            ids = students.active_student_ids(
                conn, tables, run_start, settings.window_hours, settings.open_session_hours
            )
        summary.students_found = len(ids)
        out.say(f"Found {len(ids)} active students")
        _process_all(
            conn,
            config,
            tables,
            book,
            ids,
            run_start,
            summary,
            out,
            dry_run,
            deadline,
            profile_columns,
        )
        summary.duration_ms = round((time.monotonic() - started) * 1000, 2)
        if not dry_run:
            if summary.status == "running":
                summary.status = "partial" if summary.errors else "success"
            with db.errors_as("recording the run result"):
                _finish_record(conn, tables, summary)
    except DatabaseError:
        summary.status = "failed"
        summary.duration_ms = round((time.monotonic() - started) * 1000, 2)
        if recorded:
            _record_failure(config, tables, summary, out)
        raise
    finally:
        db.close_quietly(conn)  # also releases the GET_LOCK
    verb = "Aborted" if summary.status == "aborted" else "Completed"
    out.say(
        f"{verb}: {summary.students_processed} processed, {summary.errors} errors,"
        f" {summary.duration_ms:.0f} ms"
    )
    return summary


def _process_all(
    conn: Any,
    config: Config,
    tables: db.Tables,
    book: rules.RuleBook,
    ids: Sequence[str],
    run_start: dt.datetime,
    summary: RunSummary,
    out: Output,
    dry_run: bool,
    deadline: float,
    profile_columns: set[str],
) -> None:
    """Every batch: read state, evaluate, write and commit; stop early when told to.

    Reading and evaluating happen here, on ``conn``; writing happens on the writer's
    own connection, overlapping the next batch (see ``_Writer``).
    """
    settings = config.heartbeat
    writer = None if dry_run else _Writer(config, tables)
    encoder = RowEncoder(book, summary.run_id, db.string_escaper(writer.conn if writer else conn))
    try:
        with _stop_on_signals() as stop:
            for offset in range(0, len(ids), settings.batch_size):
                reason = _stop_reason(stop, deadline, settings.max_run_minutes)
                if reason:
                    if writer:
                        writer.wait(summary)  # the batch in hand is committed
                    summary.status = "aborted"
                    out.say(f"Stopping early ({reason}) after {offset} of {len(ids)} students")
                    return
                batch = ids[offset : offset + settings.batch_size]
                with db.errors_as("reading student state"):
                    states = students.load_states(
                        conn,
                        tables,
                        batch,
                        has_mbti_type="mbti_type" in profile_columns,
                        profiles_have_id="id" in profile_columns,
                    )
                    # End the read transaction: no metadata lock (which would make a
                    # waiting ALTER/DROP block Moodle's own queries) or snapshot is held
                    # while the batch is evaluated and written.
                    conn.commit()
                rows = process_batch(
                    batch, states, book, encoder, run_start, settings.interval_minutes, out.detail
                )
                if writer:
                    writer.submit(rows, summary)
                else:
                    summary.students_processed += rows.processed
                    summary.errors += rows.failed
            if writer:
                writer.wait(summary)
    finally:
        if writer:
            writer.close(summary)


def _claim(
    conn: Any,
    config: Config,
    tables: db.Tables,
    run_id: str,
    run_start: dt.datetime,
    force: bool,
) -> Optional[str]:
    """Take the site-wide lock and the slot; None when this server runs, else who does.

    On Galera the named lock is per node (or refused), so servers on different nodes
    reach the slot row together and one of them gets a certification conflict at commit:
    its retry then finds the winner's row, and it skips like any other loser.
    """
    if db.named_lock(conn, db.lock_name(config.database, "heartbeat")) is False:
        return "a run on another server (database lock held)"
    settings = config.heartbeat
    stale = run_start - dt.timedelta(minutes=settings.max_run_minutes, hours=1)
    slot = None if force else slot_of(config, run_start)

    def claim() -> Optional[str]:
        _close_stale_runs(conn, tables, stale)
        return _claim_slot(conn, tables, run_id, run_start, slot)

    return db.retry_deadlocks(conn, claim)


def _stop_reason(stop: _StopFlag, deadline: float, max_minutes: int) -> Optional[str]:
    if stop.signal_name:
        return f"{stop.signal_name} received"
    if time.monotonic() > deadline:
        return f"deadline of {max_minutes} min reached"
    return None


def _record_failure(config: Config, tables: db.Tables, summary: RunSummary, out: Output) -> None:
    """Best effort: mark the run row failed with the counts so far, on a fresh connection."""
    try:
        conn = db.connect(config.database)
        try:
            with db.errors_as("recording the failed run"):
                _finish_record(conn, tables, summary)
        finally:
            db.close_quietly(conn)
    except DatabaseError as exc:
        out.say(f"Could not record the failed run in the database: {exc}")
