"""Storing: the only place that writes the job's log tables.

A run's row in ``heartbeat_log`` is written first (status ``running``, claiming the
schedule slot) and completed at the end, also when the run fails. Each batch goes into
``scenario_evaluation_log`` and ``event_processing_log`` as one transaction of
multi-row INSERTs (PyMySQL's ``executemany`` builds them: at most about 1 MB each,
every value a driver parameter), sent on a connection of its own by a writer thread, so
that the server takes batch k while the run reads, evaluates and builds batch k+1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional

import pymysql

from heartbeat import __version__, daily, db, schema
from heartbeat.config import DatabaseConfig
from heartbeat.errors import ConfigError, TakenOver
from heartbeat.evaluate import BatchRows, Json


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def claim_slot(
    conn: Any,
    tables: db.Tables,
    run_id: str,
    run_start: dt.datetime,
    slot: Optional[dt.datetime],
    host: str,
) -> Optional[str]:
    """Write the run row (status running); None if claimed, else who has the slot."""
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {tables.heartbeat_log} (execution_time, students_processed,"
                " errors, duration_ms, created_at, run_id, host, status, slot_start, version,"
                " renewed_at) VALUES (%s, 0, 0, 0, %s, %s, %s, 'running', %s, %s,"
                " UTC_TIMESTAMP())",
                (_naive(run_start), _naive(run_start), run_id, host[:255], slot, __version__),
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


def close_stale_runs(
    conn: Any, tables: db.Tables, older_than: dt.datetime, lease_seconds: int
) -> int:
    """Mark runs still 'running' whose lease expired as failed: their server died, froze
    or lost the network (a frozen one, resumed, finds its row failed and stops: fenced).
    Rows without a lease (releases before 0.3.0) once they are past any deadline."""
    with conn.cursor() as cur:
        count = int(
            cur.execute(
                f"UPDATE {tables.heartbeat_log} SET status = 'failed'"
                " WHERE status = 'running' AND (renewed_at < UTC_TIMESTAMP() - INTERVAL %s"
                " SECOND OR (renewed_at IS NULL AND created_at < %s))",
                (lease_seconds, _naive(older_than)),
            )
        )
    conn.commit()
    return count


def live_run(
    conn: Any, tables: db.Tables, older_than: dt.datetime, lease_seconds: int
) -> Optional[str]:
    """The run whose lease is alive (or, without a lease, that is not yet stale), in
    words; None when no run is going on anywhere (the lock's holder is gone)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT host, TIMESTAMPDIFF(SECOND, renewed_at, UTC_TIMESTAMP())"
            f" FROM {tables.heartbeat_log} WHERE status = 'running' AND (renewed_at >="
            " UTC_TIMESTAMP() - INTERVAL %s SECOND OR (renewed_at IS NULL AND created_at >= %s))"
            " ORDER BY id DESC LIMIT 1",
            (lease_seconds, _naive(older_than)),
        )
        row = cur.fetchone()
    conn.commit()
    if row is None:
        return None
    renewed = f", its lease renewed {row[1]} s ago" if row[1] is not None else ""
    return f"host {row[0]}{renewed}"


def renew_lease(conn: Any, tables: db.Tables, run_id: str) -> bool:
    """Renew the run's lease; False when its row is no longer 'running' (taken over)."""
    with conn.cursor() as cur:
        count = int(
            cur.execute(
                f"UPDATE {tables.heartbeat_log} SET renewed_at = UTC_TIMESTAMP()"
                " WHERE run_id = %s AND status = 'running'",
                (run_id,),
            )
        )
    conn.commit()
    return count == 1


def finish_run(
    conn: Any,
    tables: db.Tables,
    run_id: str,
    status: str,
    counts: tuple[int, int],
    duration_ms: float,
    exit_code: int,
) -> None:
    """Complete the run row: its outcome, ``counts`` (processed, errors), when it ended.

    Only a row still ``running`` is changed: a run whose row another run already marked
    failed (stale) keeps that verdict, and a run that never got its row changes nothing.
    """
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE {tables.heartbeat_log} SET students_processed = %s, errors = %s,"
            " duration_ms = %s, status = %s, finished_at = %s, exit_code = %s"
            " WHERE run_id = %s AND status = 'running'",
            (
                counts[0],
                counts[1],
                round(duration_ms, 2),
                status,
                _naive(dt.datetime.now(dt.timezone.utc)),
                exit_code,
                run_id,
            ),
        )
    conn.commit()


class _Literals(dict):  # type: ignore[type-arg] # str -> str, filled by __missing__
    """A value's SQL literal, by the driver's own ``Connection.escape``, kept where it
    repeats: the one hand-tuned piece of the job (see :func:`prepare`).

    Only ``str`` values are keys (``1``, ``1.0`` and ``True`` would be one key, and their
    literals differ); a hit is one dict look-up in C. ``int`` literals are kept apart,
    an ``evaluate.Json`` is escaped piece by piece, anything else is escaped each time.
    """

    def __init__(self, escape: Callable[[Any], str]) -> None:
        super().__init__()
        self.escape = escape
        self.pieces: dict[str, str] = {}  # a Json piece -> its escaped text, unquoted
        self.ints: dict[int, str] = {}

    def __missing__(self, value: Any) -> str:
        kind = type(value)
        if kind is Json:
            return self.document(value.parts)
        if kind is int:
            literal = self.ints.get(value)
            if literal is None:
                literal = self.ints[value] = str(self.escape(value))
            return literal
        literal = str(self.escape(value))
        if kind is str:
            if len(self) > CACHE_SIZE:
                self.clear()
            self[value] = literal
        return literal

    def document(self, parts: tuple[str, ...]) -> str:
        """A Json's literal: its repeating (even) pieces escaped once per run, its
        numbers (odd pieces) as they are: they hold no character to escape."""
        pieces = self.pieces
        out = []
        for index, part in enumerate(parts):
            if index % 2:
                out.append(part)
                continue
            escaped = pieces.get(part)
            if escaped is None:
                if len(pieces) > CACHE_SIZE:
                    pieces.clear()
                escaped = pieces[part] = str(self.escape(part))[1:-1]  # without quotes
            out.append(escaped)
        return f"'{''.join(out)}'"


def prepare(conn: Any) -> Any:
    """Make ``conn``'s cursors escape the batches' values faster, by the driver's own
    escaping: the one hand-tuned piece of the job.

    Every value still reaches the server through ``executemany``'s parameters and
    PyMySQL's ``Connection.escape`` (which honours NO_BACKSLASH_ESCAPES); what changes
    is how often that escaping runs and what it costs per value (:class:`Cursor`):

    * a value that repeats (scenario ids, modes, the run id, routing documents, each
      student's id, event id and time on its six rows) is escaped once and then taken
      from a cache, by one dict look-up in C instead of a Python call;
    * an ``evaluate.Json`` document is escaped piece by piece, the pieces that repeat
      from student to student once per run, the numbers between them not at all.

    Bench, N = 100,000 on 2 cores: without the cache the run took 1.6x as long as the
    job of the release before (32.4 s against 20.4 s): 283 MB of JSON through
    str.translate and about 5 us of escaping per row, in the writer thread, holding the
    GIL. The C look-up (``Cursor._mogrify``) took the escaping of 20,000 students' rows
    from 0.39 s to 0.32 s of CPU in isolation.
    """
    if not hasattr(pymysql.cursors.Cursor, "_mogrify"):  # pyproject.toml asks for it
        raise ConfigError(
            f"PyMySQL {pymysql.__version__} is older than 1.2.1, which the job needs:"
            " pip install 'PyMySQL>=1.2.1,<2' (the role installs the one it was tested with)"
        )
    conn.literals = _Literals(conn.escape)
    conn.cursorclass = Cursor
    return conn


#: Escaped values and document pieces kept per connection (a batch has about 10,000).
CACHE_SIZE = 20_000


class Cursor(pymysql.cursors.Cursor):  # type: ignore[misc] # PyMySQL has no types
    """The cursor of a :func:`prepare`-d connection: a row's parameters become
    literals through the connection's cache (``_Literals``)."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        literals = getattr(connection, "literals", None)  # None: not prepared
        self._literal = None if literals is None else literals.__getitem__

    def _mogrify(self, query: str, args: Any) -> str:
        # PyMySQL (>= 1.2.1, see prepare) builds each row of executemany here.
        if self._literal is None or type(args) is not tuple:
            return str(super()._mogrify(query, args))
        try:
            return query % tuple(map(self._literal, args))
        except TypeError as exc:  # as PyMySQL says it: a count that does not match
            raise pymysql.err.ProgrammingError(str(exc)) from None


class _Statements(Cursor):
    """A cursor that keeps the statements ``executemany`` builds instead of sending
    them (``statements``); it sends nothing, so it never touches the socket."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.statements: list[bytes] = []  # bytes-like: executemany's own bytearrays

    def execute(self, query: Any, args: Any = None) -> int:
        if args is not None:
            query = self.mogrify(query, args)
        self.statements.append(query)
        return 0


def batch_statements(conn: Any, tables: db.Tables, rows: BatchRows) -> list[bytes]:
    """The SQL of one batch: PyMySQL's ``executemany`` makes the rows multi-row
    INSERTs of at most ``max_stmt_length`` (1 MB) each, every value a parameter escaped
    as ``conn`` (the connection that sends them) escapes it; nothing is sent here."""
    with conn.cursor(_Statements) as cur:
        if rows.evaluations:
            cur.executemany(
                f"INSERT INTO {tables.evaluation_log} ({', '.join(schema.EVALUATION_COLUMNS)})"
                f" VALUES ({', '.join(['%s'] * len(schema.EVALUATION_COLUMNS))})",
                rows.evaluations,
            )
        if rows.events:
            cur.executemany(
                f"INSERT INTO {tables.event_log} ({', '.join(schema.EVENT_COLUMNS)})"
                f" VALUES ({', '.join(['%s'] * len(schema.EVENT_COLUMNS))})",
                rows.events,
            )
        if rows.daily:
            cur.executemany(daily.upsert_statement(tables), rows.daily)
        statements: list[bytes] = cur.statements
    return statements


def write_batch(
    conn: Any, statements: list[bytes], fence: Optional[tuple[str, str]] = None
) -> None:
    """One batch in one transaction: its statements (``batch_statements``), committed.

    ``fence`` (the run table, the run id): right before the commit, the run's row must
    still be ``running``. Another server marks it failed when it takes over an expired
    lease, and a run frozen meanwhile (even in the middle of this batch) must then add
    nothing: the batch is rolled back."""
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
        if fence is not None:
            cur.execute(f"SELECT status FROM {fence[0]} WHERE run_id = %s", (fence[1],))
            row = cur.fetchone()
            if row is None or row[0] != "running":
                conn.rollback()
                raise TakenOver(
                    "another server took this run over: its lease had expired (this server"
                    " did not renew it in time: frozen or cut off); this batch was rolled"
                    " back and nothing more is written"
                )
    conn.commit()


class Writer:
    """Writes batches on a connection of its own, in a thread, one batch in flight.

    While the server takes batch k, the run reads and evaluates batch k+1: the
    database and Python work at the same time instead of in turns. Each batch is still
    one transaction; a batch counts (``committed``) once committed; the first write
    error is raised (as ``DatabaseError``) by the next ``submit``, ``wait`` or ``close``.

    The server's part is the longer one, so the writer thread only sends: a batch's
    statements are built by ``submit``, in the run's thread, which would otherwise
    wait for the writer. (N = 100,000 on 2 cores, development measurement: built in
    the writer thread, the run waited 4.9 s for it and took 16.1 s; built in
    ``submit``, it waits 2.7 s and takes 14.9 s; the job before the architecture
    issue, 13.0 s.)
    Building only reads the connection's escaping (``server_status``, for
    NO_BACKSLASH_ESCAPES, fixed for the session) and its literal cache, which only
    this thread uses; the socket is the writer thread's alone.
    """

    def __init__(
        self,
        database: DatabaseConfig,
        tables: db.Tables,
        statement_timeout: int,
        committed: Callable[[BatchRows], None],
        run_id: str,
    ) -> None:
        self.tables = tables
        self.committed = committed
        self.fence = (tables.heartbeat_log, run_id)
        self.socket = threading.Lock()  # the batches and the lease's renewals take turns
        self.conn = prepare(db.connect(database, statement_timeout=statement_timeout))
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat-writer")
        self.pending: Optional[tuple[Future[None], BatchRows]] = None

    def _write(self, statements: list[bytes]) -> None:
        with db.errors_as("writing results"), self.socket:
            write_batch(self.conn, statements, self.fence)

    def renew_lease(self, run_id: str) -> bool:
        """Renew the run's lease between two batches (``coordinate.Lease``)."""
        with self.socket:
            return renew_lease(self.conn, self.tables, run_id)

    def submit(self, rows: BatchRows) -> None:
        """Build the batch's statements now, hand them to the writer thread once the
        batch before is committed."""
        with db.errors_as("writing results"):
            statements = batch_statements(self.conn, self.tables, rows)
        rows.sent = sum(map(len, statements))
        self.wait()
        self.pending = (self.pool.submit(self._write, statements), rows)

    def writing(self) -> bool:
        """A batch is in flight (pacing's probe tells the job's rests from its work)."""
        pending = self.pending
        return pending is not None and not pending[0].done()

    def wait(self) -> None:
        """Wait for the batch in flight; count it once it is committed."""
        if self.pending is None:
            return
        future, rows = self.pending
        self.pending = None
        future.result()
        self.committed(rows)

    def close(self) -> None:
        """Let a write in flight end and count it if it committed (so the run row of a
        failed run matches the rows written); its error, if any, is already being raised."""
        with contextlib.suppress(Exception):
            self.wait()
        self.pool.shutdown(wait=True)
        db.close_quietly(self.conn)
