"""The database edge: connecting, translating driver errors, table names, schema.

Everything that talks to PyMySQL directly lives here or receives a connection from
here, so that every driver exception becomes one ``DatabaseError`` line (exit 3) and
no password can leak through an exception text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, TypeVar

import pymysql
import pymysql.connections
import pymysql.constants
import pymysql.converters
import pymysql.cursors

from heartbeat.config import DatabaseConfig
from heartbeat.errors import DatabaseError

CONNECT_TIMEOUT_S = 10


class CountingConnection(pymysql.connections.Connection):  # type: ignore[misc]
    """A PyMySQL connection that counts the statements it sends (``statements``).

    The server's ``Questions`` counter holds every client's statements; pacing tells the
    site's own traffic from the job's by subtracting what the job's connections counted
    (``pacing.Server``). A ping is not a statement there (MariaDB does not count it)."""

    statements = 0

    def _execute_command(self, command: int, sql: Any) -> Any:
        if command != pymysql.constants.COMMAND.COM_PING:
            self.statements += 1
        return super()._execute_command(command, sql)


@dataclass(frozen=True)
class Tables:
    """Prefixed table names; the prefix is validated by ``config`` (letters, digits, _)."""

    prefix: str

    #: Every table the job knows: the site's it reads, then its own.
    ATTRS: ClassVar[tuple[str, ...]] = (
        "user",
        "sessions",
        "activity",
        "students",
        "profiles",
        "biometrics",
        "heartbeat_log",
        "evaluation_log",
        "event_log",
        "daily",
    )

    @property
    def user(self) -> str:
        return f"`{self.prefix}user`"

    @property
    def sessions(self) -> str:
        return f"`{self.prefix}alt42_learning_sessions`"

    @property
    def activity(self) -> str:
        return f"`{self.prefix}alt42_student_activity`"

    @property
    def students(self) -> str:
        return f"`{self.prefix}alt42_students`"

    @property
    def profiles(self) -> str:
        return f"`{self.prefix}alt42_student_profiles`"

    @property
    def biometrics(self) -> str:
        return f"`{self.prefix}alt42_student_biometrics`"

    @property
    def heartbeat_log(self) -> str:
        return f"`{self.prefix}alt42_heartbeat_log`"

    @property
    def evaluation_log(self) -> str:
        return f"`{self.prefix}alt42_scenario_evaluation_log`"

    @property
    def event_log(self) -> str:
        return f"`{self.prefix}alt42_event_processing_log`"

    @property
    def daily(self) -> str:
        return f"`{self.prefix}alt42_heartbeat_daily`"

    def bare(self, quoted: str) -> str:
        """The name without backquotes, as information_schema spells it."""
        return quoted.strip("`")


def describe_target(cfg: DatabaseConfig) -> str:
    """Where we connect, for messages (never the password)."""
    where = f"socket {cfg.socket}" if cfg.socket else f"{cfg.host}:{cfg.port}"
    return f"database '{cfg.name}' as '{cfg.user}' on {where}"


def translate(exc: BaseException, action: str) -> DatabaseError:
    """One line for a driver error: what we were doing, the server's code and text."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    code = None
    if len(args) >= 2 and isinstance(args[0], int):
        code, text = args[0], str(args[1])
        detail = f"({code}) {text}" if text else f"({code})"
    else:
        detail = str(exc) or type(exc).__name__
    detail = " ".join(detail.split())
    error = DatabaseError(f"database error while {action}: {detail}")
    error.code = code
    return error


DRIVER_ERRORS = (pymysql.err.MySQLError, OSError, EOFError)
#: The server refuses a new connection: max_connections, max_user_connections, or the
#: account's MAX_USER_CONNECTIONS.
TOO_MANY_CONNECTIONS = frozenset({1040, 1203, 1226})


@contextlib.contextmanager
def errors_as(action: str) -> Iterator[None]:
    """Turn any driver error inside the block into a ``DatabaseError`` naming ``action``."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate(exc, action) from None


def _datetime(text: str) -> Any:
    """A DATETIME or TIMESTAMP value as PyMySQL's ``convert_datetime`` returns it, in C
    for the text a server sends ('2024-05-01 10:00:00[.ffffff]'): ``fromisoformat``
    reads it to the same datetime, and raises where PyMySQL's converter is needed (a
    zero date, which it returns as the string). Bench, N = 100,000: the profile rows'
    ``updated_at`` (2.5 per student) took 0.47 s of the run's Python through PyMySQL's.
    """
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return pymysql.converters.convert_datetime(text)


#: PyMySQL's decoders, with :func:`_datetime` for DATETIME and TIMESTAMP columns.
DECODERS = {
    **pymysql.converters.conversions,
    pymysql.constants.FIELD_TYPE.DATETIME: _datetime,
    pymysql.constants.FIELD_TYPE.TIMESTAMP: _datetime,
}


def connect(
    cfg: DatabaseConfig, statement_timeout: int, connect_timeout: int = CONNECT_TIMEOUT_S
) -> Any:
    """Open a UTC, utf8mb4, non-autocommit connection, or raise ``DatabaseError``.

    Every connection has a time limit for each step: ``connect_timeout`` to connect,
    ``statement_timeout`` (seconds) for any statement (MariaDB ``max_statement_time``;
    MySQL's ``max_execution_time`` covers SELECTs), and its socket reads and writes give
    up a little after that if the server itself hangs, so no run holds its lock and no
    monitoring check waits forever.
    """
    socket = cfg.socket  # config decided it as PHP's mysqli does
    read_timeout = statement_timeout + min(30, statement_timeout)
    with errors_as(f"connecting to {describe_target(cfg)}"):
        conn = CountingConnection(
            host=None if socket else cfg.host,
            port=cfg.port,
            unix_socket=socket,
            user=cfg.user,
            # bytes: PyMySQL would encode text as latin-1 (fails beyond it, and differs
            # from PHP mysqli, which sends the UTF-8 bytes of config.php)
            password=cfg.password.encode("utf-8"),
            database=cfg.name,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=connect_timeout,
            # PyMySQL reads the server's greeting with the read timeout: the whole
            # handshake must fit in the connect timeout (a server that accepts and
            # never speaks), and only then do statements get theirs.
            read_timeout=connect_timeout,
            write_timeout=connect_timeout,
            init_command="SET time_zone = '+00:00'",
            conv=DECODERS,
        )
    # Not settable through PyMySQL's API once connected; these are the attributes
    # its socket reads and writes use (PyMySQL 1.x).
    conn._read_timeout = conn._write_timeout = read_timeout
    with errors_as("setting the statement time limit"), conn.cursor() as cur:
        try:
            cur.execute("SET SESSION max_statement_time = %s", (statement_timeout,))
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != UNKNOWN_SYSTEM_VARIABLE:
                raise
            cur.execute("SET SESSION max_execution_time = %s", (statement_timeout * 1000,))
    return conn


UNKNOWN_SYSTEM_VARIABLE = 1193

#: ER_LOCK_DEADLOCK: InnoDB chose this transaction as a deadlock victim, or Galera
#: aborted it because a conflicting write on another node was certified first.
LOCK_DEADLOCK = 1213
DEADLOCK_ATTEMPTS = 4

_T = TypeVar("_T")


def retry_deadlocks(conn: Any, work: Callable[[], _T], attempts: int = DEADLOCK_ATTEMPTS) -> _T:
    """Run ``work`` (one short transaction on ``conn``, committed inside) again when the
    server rolled it back with "Deadlock found ... try restarting transaction".

    Both InnoDB and Galera mean it literally: the transaction is gone and running it
    again is correct. This is how several servers claim one slot or prune one table at
    the same time: the loser's retry sees the winner's committed row. ``work`` must have
    no effect outside the database. Any other error, or the last attempt's, propagates.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != LOCK_DEADLOCK or attempt == attempts:
                raise
            with contextlib.suppress(*DRIVER_ERRORS):
                conn.rollback()
            time.sleep(0.05 * attempt)  # let the winner's write reach this node
    raise AssertionError("unreachable")  # pragma: no cover


def stream(conn: Any, sql: str, params: Any = None) -> Iterator[tuple[Any, ...]]:
    """Rows of a query through an unbuffered cursor: memory stays flat for big results."""
    cursor = conn.cursor(pymysql.cursors.SSCursor)
    try:
        cursor.execute(sql, params)
        yield from cursor
    finally:
        cursor.close()


def columns_of(conn: Any, tables: Tables) -> dict[str, set[str]]:
    """Existing ALT42 tables of the current database and their columns, in one query."""
    names = [tables.bare(getattr(tables, attr)) for attr in Tables.ATTRS]
    marks = ", ".join(["%s"] * len(names))
    found: dict[str, set[str]] = {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
            f" WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({marks})",
            names,
        )
        for table, column in cur.fetchall():
            found.setdefault(str(table), set()).add(str(column).lower())
    return found


def collations_of(conn: Any, tables: Tables, column: str = "student_id") -> dict[str, str]:
    """The collation of ``column`` in each ALT42 table that has it: how the database
    compares student ids there (case, accents, trailing spaces)."""
    found: dict[str, str] = {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = %s AND TABLE_NAME LIKE %s",
            (column, tables.prefix.replace("_", "\\_") + "alt42\\_%"),
        )
        for table, collation in cur.fetchall():
            if collation:
                found[str(table)] = str(collation)
    return found


def lock_name(cfg: DatabaseConfig, job: str) -> str:
    """The ``GET_LOCK`` name of ``job`` (heartbeat, prune): one per Moodle database and
    prefix, so that two sites on one server never block each other (at most 64 chars)."""
    name = "alt42_heartbeat" if job == "heartbeat" else f"alt42_heartbeat_{job}"
    return f"{name}:{cfg.name}:{cfg.prefix}"[:64]


def named_lock(conn: Any, name: str) -> Optional[bool]:
    """``GET_LOCK(name, 0)`` for the session of ``conn`` (released when it closes).

    True if taken, False if another session holds it, None where the server refuses
    named locks (MariaDB Galera 10.6.12/13: ER_NOT_SUPPORTED_YET). Later Galera versions
    grant it per node: callers must not rely on it alone across servers.
    """
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
            row = cur.fetchone()
    except pymysql.err.OperationalError:
        raise
    except pymysql.err.MySQLError:
        conn.rollback()
        return None
    return None if row is None or row[0] is None else bool(row[0])


@contextlib.contextmanager
def session(
    cfg: DatabaseConfig, statement_timeout: int, action: str, **timeouts: int
) -> Iterator[Any]:
    """One command's connection: a driver error inside the block becomes one
    ``DatabaseError`` naming ``action`` (an inner ``errors_as`` names a narrower one),
    and the connection is closed whatever happened."""
    conn = connect(cfg, statement_timeout, **timeouts)
    try:
        with errors_as(action):
            yield conn
    finally:
        close_quietly(conn)


def require_tables(conn: Any, tables: Tables, *needed: str) -> dict[str, set[str]]:
    """The job's tables and their columns (``columns_of``); a ``DatabaseError`` naming
    the first of ``needed`` that ``migrate`` has not made yet."""
    found = columns_of(conn, tables)
    for table in needed:
        if tables.bare(table) not in found:
            raise DatabaseError(
                f"table {tables.bare(table)} is missing (run 'alt42-heartbeat migrate')"
            )
    return found


def close_quietly(conn: Any) -> None:
    """Close a connection that may already be lost: there is nothing left to release."""
    with contextlib.suppress(*DRIVER_ERRORS):
        conn.close()
