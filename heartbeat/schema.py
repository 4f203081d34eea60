"""The tables: what the job needs to read, and ``migrate`` for the ones it writes.

``migrate`` only ever creates missing tables, adds missing nullable columns and
indexes, and widens ``student_id`` to 32 characters: it never drops, renames or
rewrites what an existing installation (the PHP job's migration) already has, so the
seed's monitoring queries keep working.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Optional

import pymysql

from heartbeat import daily
from heartbeat.db import Tables, columns_of
from heartbeat.errors import DatabaseError

log = logging.getLogger(__name__)

# Columns the job reads, per table attribute of ``Tables``.
READ_COLUMNS: dict[str, set[str]] = {
    "user": {"id", "deleted"},
    "sessions": {"student_id", "start_time", "session_end"},
    "activity": {"student_id", "activity_date"},
    "students": {"student_id", "userid", "grade", "class", "mbti"},
    "profiles": {
        "user_id",
        "student_id",
        "emotion_state",
        "immersion_level",
        "engagement_score",
        "math_confidence",
        "updated_at",
    },
    "biometrics": {"id", "student_id", "stress_level", "concentration_level", "created_at"},
}

STUDENT_ID_LENGTH = 32

# The job's own tables: full definition for a fresh install, then the columns and
# indexes an older table (the PHP migration's) may lack, all nullable or defaulted.
# Indexes are those a reader uses (docs/footprint.md): the time indexes (the plugin's
# windows, report, prune), the run's claim, and a student's or a run's events for an
# admin's question; none on event_id (a random UUID no reader looks up: it cost a fifth
# of the evaluation table) and none on the evaluation rows' student.
CREATE: dict[str, str] = {
    "heartbeat_log": """
        CREATE TABLE IF NOT EXISTS {table} (
            id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            execution_time TIMESTAMP NULL DEFAULT NULL,
            students_processed INT UNSIGNED NOT NULL DEFAULT 0,
            errors INT UNSIGNED NOT NULL DEFAULT 0,
            duration_ms DECIMAL(10,2) NOT NULL DEFAULT 0,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            run_id CHAR(36) NULL DEFAULT NULL,
            host VARCHAR(255) NULL DEFAULT NULL,
            status VARCHAR(16) NULL DEFAULT NULL,
            finished_at TIMESTAMP NULL DEFAULT NULL,
            exit_code TINYINT UNSIGNED NULL DEFAULT NULL,
            slot_start DATETIME NULL DEFAULT NULL,
            version VARCHAR(32) NULL DEFAULT NULL,
            renewed_at DATETIME NULL DEFAULT NULL,
            KEY idx_created_at (created_at),
            UNIQUE KEY uq_run_id (run_id),
            UNIQUE KEY uq_slot (slot_start)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4{options}""",
    "evaluation_log": """
        CREATE TABLE IF NOT EXISTS {table} (
            id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            event_id VARCHAR(36) NULL DEFAULT NULL,
            scenario_id VARCHAR(10) NOT NULL,
            student_id VARCHAR(32) NOT NULL,
            rules_count INT UNSIGNED NOT NULL DEFAULT 0,
            evaluation_mode VARCHAR(20) NOT NULL,
            evaluation_result JSON NULL,
            evaluated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            KEY idx_evaluated_at (evaluated_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4{options}""",
    "event_log": """
        CREATE TABLE IF NOT EXISTS {table} (
            id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            event_id VARCHAR(36) NOT NULL,
            event_type VARCHAR(100) NOT NULL,
            student_id VARCHAR(32) NOT NULL,
            scenarios_evaluated INT UNSIGNED NOT NULL DEFAULT 0,
            scenario_results JSON NULL,
            routing_result JSON NULL,
            priority TINYINT UNSIGNED NOT NULL DEFAULT 2,
            status ENUM('pending','processing','completed','failed') NOT NULL DEFAULT 'pending',
            processed_at TIMESTAMP NULL DEFAULT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            run_id CHAR(36) NULL DEFAULT NULL,
            KEY idx_student (student_id),
            KEY idx_created_at (created_at),
            KEY idx_run (run_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4{options}""",
    # the daily summary (heartbeat/daily.py): a few dozen rows a day, kept as long as
    # the run rows; the key's first column is what prune deletes by
    "daily": """
        CREATE TABLE IF NOT EXISTS {table} (
            day DATE NOT NULL,
            kind VARCHAR(8) NOT NULL,
            name VARCHAR(100) NOT NULL,
            events INT UNSIGNED NOT NULL DEFAULT 0,
            matches INT UNSIGNED NOT NULL DEFAULT 0,
            PRIMARY KEY (day, kind, name)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4{options}""",
}

#: The per-student tables (nearly all the bytes: docs/footprint.md) are created with
#: MariaDB's page compression: a page is compressed as it is written to its file, and
#: read into memory as it was (bench/footprint.py: a fifth of the bytes on disk, the
#: plugin's pages as fast; ROW_FORMAT=COMPRESSED kept twice the bytes and slowed the
#: plugin's dashboard by a third). Tables that exist are never converted by ``migrate``.
COMPRESSED_TABLES = ("evaluation_log", "event_log")
COMPRESSED = " PAGE_COMPRESSED=1"

EXTRA_COLUMNS: dict[str, dict[str, str]] = {
    "heartbeat_log": {
        "run_id": "CHAR(36) NULL DEFAULT NULL",
        "host": "VARCHAR(255) NULL DEFAULT NULL",
        "status": "VARCHAR(16) NULL DEFAULT NULL",
        "finished_at": "TIMESTAMP NULL DEFAULT NULL",
        "exit_code": "TINYINT UNSIGNED NULL DEFAULT NULL",
        # the schedule slot a run claimed: unique, so one run per slot across servers
        "slot_start": "DATETIME NULL DEFAULT NULL",
        # the release that ran (0.2.0+)
        "version": "VARCHAR(32) NULL DEFAULT NULL",
        # the run's lease, renewed while it runs (0.3.0+): UTC by the database's clock
        "renewed_at": "DATETIME NULL DEFAULT NULL",
    },
    "evaluation_log": {},
    "event_log": {"run_id": "CHAR(36) NULL DEFAULT NULL"},
    "daily": {},
}

#: Index name -> its columns; a name starting with ``uq_`` is a unique index. An index
#: counts as present when one with those leading columns exists under any name (the
#: plugin's ``idx_created_at`` serves where ours would be).
EXTRA_INDEXES: dict[str, dict[str, tuple[str, ...]]] = {
    "heartbeat_log": {
        "idx_created_at": ("created_at",),
        "uq_run_id": ("run_id",),
        "uq_slot": ("slot_start",),
    },
    "evaluation_log": {"idx_evaluated_at": ("evaluated_at",)},
    "event_log": {"idx_created_at": ("created_at",), "idx_run": ("run_id",)},
    "daily": {},
}

#: What each unique index guarantees (``check`` names it when the index is missing).
UNIQUE_BECAUSE = {
    "uq_slot": "two servers can run one slot",
    "uq_run_id": "two rows can claim one run",
}

#: Where the ALT42 plugin's migrations (alt42/orchestration/db/migrations/) create the
#: tables the job reads and add the columns that came later: named when one is missing.
PLUGIN_MIGRATIONS: dict[tuple[str, str], str] = {
    ("sessions", ""): "004_create_base_tables.sql",
    ("sessions", "session_end"): "006_create_heartbeat_views.sql",
    ("activity", ""): "006_create_heartbeat_views.sql",
    ("students", ""): "004_create_base_tables.sql",
    ("biometrics", ""): "004_create_base_tables.sql",
    ("profiles", "student_id"): "007_create_students_and_biometrics_tables.sql",
    ("profiles", "emotion_state"): "004_create_base_tables.sql",
    ("profiles", "immersion_level"): "004_create_base_tables.sql",
    ("profiles", "engagement_score"): "004_create_base_tables.sql",
    ("profiles", "math_confidence"): "004_create_base_tables.sql",
    ("profiles", "updated_at"): "004_create_base_tables.sql",
}

# The columns of the job's multi-row INSERTs, in the order ``evaluate.evaluate_batch`` builds
# each row literal (the benchmark's floor inserts the same columns).
EVALUATION_COLUMNS = (
    "event_id",
    "scenario_id",
    "student_id",
    "rules_count",
    "evaluation_mode",
    "evaluation_result",
    "evaluated_at",
)
EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "student_id",
    "scenarios_evaluated",
    "scenario_results",
    "routing_result",
    "priority",
    "status",
    "processed_at",
    "created_at",
    *EXTRA_COLUMNS["event_log"],
)

# What the writer needs of each of its tables (the original PHP columns plus ours).
WRITE_COLUMNS: dict[str, set[str]] = {
    "heartbeat_log": {
        "execution_time",
        "students_processed",
        "errors",
        "duration_ms",
        "created_at",
        *EXTRA_COLUMNS["heartbeat_log"],
    },
    "evaluation_log": set(EVALUATION_COLUMNS),
    "event_log": set(EVENT_COLUMNS),
    "daily": set(daily.COLUMNS),
}


def missing_schema(
    found: dict[str, set[str]], tables: Tables, denied: Optional[dict[str, str]] = None
) -> list[str]:
    """Problems with the schema, one sentence each (empty when all is there). A table
    in ``denied`` (``privilege_problems``) is not shown to this account, which may not
    use it: its line says so, not that it is missing."""
    problems, denied = [], denied or {}
    for attr, needed in {**READ_COLUMNS, **WRITE_COLUMNS}.items():
        name = tables.bare(getattr(tables, attr))
        if name not in found and name in denied:
            problems.append(denied[name])
            continue
        if name not in found:
            fix = "run 'alt42-heartbeat migrate'" if attr in WRITE_COLUMNS else _plugin_fix(attr)
            problems.append(f"table {name} is missing ({fix})")
            continue
        lacking = sorted(needed - found[name])
        if lacking and attr in WRITE_COLUMNS:
            problems.append(
                f"table {name} lacks column(s) {', '.join(lacking)} (run 'alt42-heartbeat migrate')"
            )
        for column in lacking if attr not in WRITE_COLUMNS else ():
            problems.append(f"table {name} lacks column {column} ({_plugin_fix(attr, column)})")
    return problems


def _plugin_fix(attr: str, column: str = "") -> str:
    """What to do about a table or column of the plugin's that is not there."""
    migration = PLUGIN_MIGRATIONS.get((attr, column))
    if migration is None:
        return "check [database] prefix, and that the ALT42 plugin is installed and upgraded"
    made = "creates the table" if not column else "adds it"
    prefix = "check [database] prefix; " if not column else ""
    return (
        f"{prefix}the ALT42 plugin's migration {migration} {made}: run the plugin's"
        " database migrations (alt42/orchestration/db/migrations/)"
    )


@dataclass(frozen=True)
class Change:
    """One step of ``migrate``: what it does (for the operator), its DDL, and the
    table it changes (its name as information_schema spells it)."""

    what: str
    sql: str
    table: str


def plan(conn: Any, tables: Tables) -> list[Change]:
    """The changes ``migrate`` would make now, without making any (check mode).

    Only additions: missing tables, nullable columns, indexes (by their columns), and
    ``student_id`` widened to 32 characters with every other attribute of the column
    kept as the server itself prints it (the plugin's comment, charset, collation,
    nullability, default).
    """
    changes: list[Change] = []
    with conn.cursor() as cur:
        cannot_compress: Optional[str] = None
        for attr, create in CREATE.items():
            table = getattr(tables, attr)
            name = tables.bare(table)
            columns = _columns(cur, name)
            if not columns:
                options = ""
                if attr in COMPRESSED_TABLES:
                    if cannot_compress is None:
                        cannot_compress = compression_problem(cur) or ""
                        if cannot_compress:
                            log.info("The per-student tables go uncompressed: %s", cannot_compress)
                    options = "" if cannot_compress else COMPRESSED
                what = f"create table {name}" + (" (compressed)" if options else "")
                sql = create.format(table=table, options=options)
                changes.append(Change(what, sql, name))
                continue
            for column, definition in EXTRA_COLUMNS[attr].items():
                if column not in columns:
                    changes.append(
                        Change(
                            f"add column {name}.{column}",
                            f"ALTER TABLE {table} ADD COLUMN `{column}` {definition}",
                            name,
                        )
                    )
            length = columns.get("student_id")
            if length is not None and (length or 0) < STUDENT_ID_LENGTH:
                definition = _widened_student_id(cur, table)
                changes.append(
                    Change(
                        f"widen {name}.student_id to {STUDENT_ID_LENGTH} characters",
                        f"ALTER TABLE {table} MODIFY {definition}",
                        name,
                    )
                )
            indexes = _indexes(cur, name)
            for index, wanted in EXTRA_INDEXES[attr].items():
                unique = index.startswith("uq_")
                if not any(_serves(found, wanted, unique) for found in indexes):
                    kind = "UNIQUE INDEX" if unique else "INDEX"
                    cols = ", ".join(f"`{column}`" for column in wanted)
                    changes.append(
                        Change(
                            f"add index {name}.{index}",
                            f"ALTER TABLE {table} ADD {kind} `{index}` ({cols})",
                            name,
                        )
                    )
    conn.commit()
    return changes


def compression_problem(cur: Any) -> Optional[str]:
    """Why this server cannot compress the job's tables, in words; None when it can.

    Page compression is MariaDB's; it needs a tablespace per table and an algorithm
    (``innodb_compression_algorithm``, zlib unless a site chose ``none``). MySQL and
    Aurora MySQL get plain tables (their own formats are not tested here)."""
    cur.execute(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'innodb_file_per_table',"
        " 'innodb_compression_algorithm', 'aurora_version')"
    )
    found = {str(name).lower(): str(value) for name, value in cur.fetchall()}
    version = found.get("version", "")
    if "aurora_version" in found or "mariadb" not in version.lower():
        server = "Aurora MySQL" if "aurora_version" in found else f"MySQL {version}"
        return f"page compression is MariaDB's, and this server is {server}"
    if found.get("innodb_file_per_table", "ON").upper() not in ("ON", "1"):
        return "innodb_file_per_table is OFF (compressed tables need a tablespace of their own)"
    if found.get("innodb_compression_algorithm", "zlib").lower() == "none":
        return "innodb_compression_algorithm is none"
    return None


#: How long one DDL statement waits for its table's metadata lock, how often it tries,
#: and the pause between tries. Every query of the site on that table queues behind a
#: DDL that waits (the server's default wait is a year; a backup's open transaction made
#: the plugin's pages wait 282 s): with these, at most MDL_WAIT_S seconds.
MDL_WAIT_S = 2
MDL_TRIES = 5
MDL_PAUSE_S = 3
LOCK_WAIT_TIMEOUT = 1205


def migrate(conn: Any, tables: Tables) -> int:
    """Create or extend the job's tables; returns the number of changes made.

    Each change waits only briefly for its table's metadata lock and is tried again a
    few times; if another session keeps the table the whole time (a backup's long
    transaction), ``migrate`` stops with one line naming that session, before the
    release is switched: every change made so far is complete on its own (additive)."""
    changes = plan(conn, tables)
    with conn.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = %s", (MDL_WAIT_S,))
        for change in changes:
            _execute_ddl(cur, change)
            if change.what.startswith("create table"):
                _check_visible(cur, change.table)
            log.info(_past(change.what))
    conn.commit()
    return len(changes)


#: The longest one table's conversion may take (``migrate --compress``): a rebuild is
#: work, not a wait, and takes about a minute per GiB here; far above that, something is
#: wrong, and the table stays as it was.
COMPRESS_LIMIT_S = 6 * 3600


@dataclass(frozen=True)
class Conversion:
    """An existing per-student table that ``migrate --compress`` would compress."""

    attr: str  # the ``Tables`` attribute
    name: str
    bytes: int  # data and indexes now: about what the rebuild writes, and needs free
    rows: int  # the server's estimate

    @property
    def what(self) -> str:
        return (
            f"compress table {self.name} (about {self.rows:,} rows, {self.bytes / 2**20:,.0f} MiB;"
            f" the rebuild needs about that much free disk and runs online: the site and"
            " the job go on reading and writing it)"
        )


def conversions(conn: Any, tables: Tables) -> tuple[list[Conversion], Optional[str]]:
    """The existing per-student tables that are not compressed yet, and why the server
    cannot compress them (one line), if it cannot."""
    attrs = {tables.bare(getattr(tables, attr)): attr for attr in COMPRESSED_TABLES}
    with conn.cursor() as cur:
        problem = compression_problem(cur)
        if problem is None:
            problem = _galera_problem(cur)
        cur.execute(
            "SELECT TABLE_NAME, DATA_LENGTH + INDEX_LENGTH, TABLE_ROWS, CREATE_OPTIONS"
            " FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_NAME IN (%s, %s)",
            list(attrs),
        )
        found = [
            Conversion(attrs[str(row[0])], str(row[0]), int(row[1] or 0), int(row[2] or 0))
            for row in cur.fetchall()
            if not is_compressed(str(row[3] or ""))
        ]
    conn.commit()
    return sorted(found, key=lambda table: COMPRESSED_TABLES.index(table.attr)), problem


def is_compressed(create_options: str) -> bool:
    """Whether information_schema's CREATE_OPTIONS of a table say it is page compressed
    (`` `PAGE_COMPRESSED`=1 ``, or ``'ON'``; ``=0`` is a table someone turned it off on)."""
    return re.search(r"page_compressed`?='?(1|on)\b", create_options, re.IGNORECASE) is not None


def _galera_problem(cur: Any) -> Optional[str]:
    """A Galera node rebuilds a table in total order: every node holds it, and every
    write to it, until the rebuild ends. Not something to start from a deploy."""
    cur.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('wsrep_on', 'wsrep_OSU_method')")
    found = {str(name).lower(): str(value).upper() for name, value in cur.fetchall()}
    if found.get("wsrep_on") == "ON" and found.get("wsrep_osu_method", "TOI") == "TOI":
        return (
            "this is a Galera node (wsrep_OSU_method TOI): the rebuild would hold the table"
            " on every node until it ends; convert node by node with wsrep_OSU_method = RSU"
            " in a quiet hour, or leave the tables as they are"
        )
    return None


def compress(conn: Any, tables: Tables, pending: list[Conversion]) -> int:
    """Compress ``pending`` (from ``conversions``), one table at a time, online
    (``ALGORITHM=INPLACE, LOCK=NONE``: the site and the job read and write it meanwhile).

    An interrupted conversion (the process killed, ``KILL QUERY``, the time limit) leaves
    the table as it was, whole: InnoDB drops the half-built copy; run it again. The
    metadata lock is waited for as by ``migrate``: briefly, a few times."""
    with conn.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = %s", (MDL_WAIT_S,))
        cur.execute("SET SESSION max_statement_time = %s", (COMPRESS_LIMIT_S,))
        for table in pending:
            log.info("Compressing %s (about %s rows) ...", table.name, f"{table.rows:,}")
            started = time.monotonic()
            _execute_ddl(
                cur,
                Change(
                    f"compress table {table.name}",
                    f"ALTER TABLE {getattr(tables, table.attr)} PAGE_COMPRESSED=1,"
                    " ALGORITHM=INPLACE, LOCK=NONE",
                    table.name,
                ),
            )
            log.info("compressed table %s in %.0f s", table.name, time.monotonic() - started)
    conn.commit()
    return len(pending)


def _execute_ddl(cur: Any, change: Change) -> None:
    for attempt in range(1, MDL_TRIES + 1):
        try:
            cur.execute(change.sql)
            return
        except pymysql.err.OperationalError as exc:
            if exc.args[0] in TABLE_ACCESS_DENIED_CODES:
                raise DatabaseError(_denied(cur, change, str(exc.args[1]))) from None
            if exc.args[0] != LOCK_WAIT_TIMEOUT:
                raise
            if attempt < MDL_TRIES:
                log.info(
                    "Waiting for the table (%s): another session holds it; try %d of %d",
                    change.what,
                    attempt + 1,
                    MDL_TRIES,
                )
                time.sleep(MDL_PAUSE_S)
    raise DatabaseError(
        f"migrate could not {change.what}: {_blocker(cur)} kept the table for"
        f" {MDL_TRIES} tries of {MDL_WAIT_S} s; nothing else waited behind it longer;"
        " run migrate again when that session is done (a backup's transaction, a long"
        " report)"
    )


def _denied(cur: Any, change: Change, server_says: str) -> str:
    """The line for a change this database user may not make: the GRANT that lets it
    (a site that granted per table, as the README shows, has no grant on a table a
    later release adds)."""
    grant = _grant(cur, change.table, (*GRANTED, "CREATE", "ALTER"))
    return (
        f"migrate could not {change.what}: {server_says}; as the database's administrator,"
        f" run {grant} and migrate again (README: Database privileges); the changes"
        " before it are made, each complete"
    )


def _grant(cur: Any, table: str, privileges: tuple[str, ...]) -> str:
    """The GRANT of ``privileges`` on ``table`` to this session's account."""
    cur.execute("SELECT DATABASE(), CURRENT_USER()")
    database, account = cur.fetchone()
    user, _, host = str(account).rpartition("@")
    return f"GRANT {', '.join(privileges)} ON `{database}`.`{table}` TO '{user}'@'{host}'"


#: What the job does to each of its tables (run, prune, report, status), which ``check``
#: probes; the GRANT it suggests is the README's (``GRANTED``; ``migrate`` needs CREATE
#: and ALTER besides).
PRIVILEGES: dict[str, tuple[str, ...]] = {
    "heartbeat_log": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "evaluation_log": ("SELECT", "INSERT", "DELETE"),
    "event_log": ("SELECT", "INSERT", "DELETE"),
    "daily": ("SELECT", "INSERT", "UPDATE", "DELETE"),
}
GRANTED = ("SELECT", "INSERT", "UPDATE", "DELETE")
TABLE_ACCESS_DENIED_CODES = (1142, 1143)  # a table's, a column's privilege
NOT_THERE_CODES = (1146, 1054)  # no such table, no such column


def privilege_problems(conn: Any, tables: Tables) -> dict[str, str]:
    """Each of the job's tables this account may not use as the job does (its name ->
    the line, with the GRANT that fixes it): a statement of each kind that touches no row
    (``WHERE FALSE``) is refused only for want of the privilege; a table that is not
    there, or lacks a column, is left to ``missing_schema``. ``check`` runs this, and the
    role runs ``check`` as the job's user before it switches to a release: a table a
    release adds (made by migrate's own account) is not switched to without the job's
    grant on it."""
    problems = {}
    with conn.cursor() as cur:
        for attr, privileges in PRIVILEGES.items():
            table, name = getattr(tables, attr), tables.bare(getattr(tables, attr))
            column = f"`{sorted(WRITE_COLUMNS[attr])[0]}`"
            probes = {
                "SELECT": f"SELECT 1 FROM {table} WHERE FALSE",
                "INSERT": f"INSERT INTO {table} SELECT * FROM {table} WHERE FALSE",
                "UPDATE": f"UPDATE {table} SET {column} = {column} WHERE FALSE",
                "DELETE": f"DELETE FROM {table} WHERE FALSE",
            }
            refused = []
            for privilege in privileges:
                try:
                    cur.execute(probes[privilege])
                except pymysql.err.MySQLError as exc:
                    if exc.args[0] in NOT_THERE_CODES:
                        break
                    if exc.args[0] not in TABLE_ACCESS_DENIED_CODES:
                        raise
                    refused.append(privilege)
            if refused:
                problems[name] = (
                    f"this database user may not {', '.join(refused)} table {name}; as the"
                    f" database's administrator, run {_grant(cur, name, GRANTED)}"
                    " (README: Database privileges)"
                )
    conn.rollback()
    return problems


def _blocker(cur: Any) -> str:
    """The oldest open transaction of another session, in words (the likely holder of
    the metadata lock); without the PROCESS privilege the server shows none."""
    try:
        cur.execute(
            "SELECT t.trx_mysql_thread_id, p.USER, p.HOST,"
            " TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), LEFT(COALESCE(p.INFO, ''), 80)"
            " FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p"
            " ON p.ID = t.trx_mysql_thread_id WHERE p.ID <> CONNECTION_ID()"
            " ORDER BY t.trx_started LIMIT 1"
        )
        row = cur.fetchone()
    except pymysql.err.MySQLError:
        row = None
    if row is None:
        return "another session (grant PROCESS to the migrate account to see which)"
    doing = f", now: {row[4]}" if row[4] else ""
    return f"session {row[0]} ({row[1]}@{row[2]}, in a transaction for {row[3]} s{doing})"


def _past(what: str) -> str:
    """``add index x`` -> ``added index x``: what was done, for the log."""
    verb, rest = what.split(" ", 1)
    return {"create": "created", "add": "added", "widen": "widened"}[verb] + " " + rest


def _columns(cur: Any, name: str) -> dict[str, Optional[int]]:
    """Column -> character length (None for non-text) of table ``name``."""
    cur.execute(
        "SELECT COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
        (name,),
    )
    return {str(row[0]).lower(): row[1] for row in cur.fetchall()}


def _check_visible(cur: Any, name: str) -> None:
    """CREATE TABLE IF NOT EXISTS did nothing for a table whose columns this user
    cannot see (no SELECT on it): it exists already; never claim it was created."""
    if not _columns(cur, name):
        raise DatabaseError(
            f"table {name}: this database user cannot see its columns, so migrate cannot"
            " check or extend it; grant SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER on it"
            " (README: Database privileges)"
        )


def _widened_student_id(cur: Any, table: str) -> str:
    """The ``student_id`` definition as ``SHOW CREATE TABLE`` prints it, with the new
    length: every other attribute stays (an ALTER ... MODIFY drops what it omits)."""
    cur.execute(f"SHOW CREATE TABLE {table}")
    text = str(cur.fetchone()[1])
    for raw in text.splitlines():
        line = raw.strip().rstrip(",")
        if line.startswith("`student_id` "):
            return re.sub(
                r"^`student_id` varchar\(\d+\)",
                f"`student_id` varchar({STUDENT_ID_LENGTH})",
                line,
                flags=re.IGNORECASE,
            )
    raise DatabaseError(f"table {table}: no student_id in SHOW CREATE TABLE")  # pragma: no cover


def _indexes(cur: Any, name: str) -> list[tuple[bool, tuple[str, ...]]]:
    """(unique, columns in order) of every index of table ``name``."""
    cur.execute(
        "SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME"
        " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        (name,),
    )
    found: dict[str, tuple[bool, list[str]]] = {}
    for index, non_unique, _seq, column in cur.fetchall():
        entry = found.setdefault(str(index), (not int(non_unique), []))
        entry[1].append(str(column).lower())
    return [(unique, tuple(columns)) for unique, columns in found.values()]


def _serves(index: tuple[bool, tuple[str, ...]], wanted: tuple[str, ...], unique: bool) -> bool:
    """Whether an existing index does what ``wanted`` would: the same leading columns
    (exactly those columns, and unique, where uniqueness is the point)."""
    is_unique, columns = index
    if unique:
        return is_unique and columns == wanted
    return columns[: len(wanted)] == wanted


def schema_problems(conn: Any, tables: Tables) -> list[str]:
    """``missing_schema`` against the live database, and the unique indexes the job's
    promises rest on (one run per slot across servers, one row per run)."""
    denied = privilege_problems(conn, tables)
    problems = missing_schema(columns_of(conn, tables), tables, denied)
    if problems:
        return problems
    with conn.cursor() as cur:
        for attr, indexes in EXTRA_INDEXES.items():
            name = tables.bare(getattr(tables, attr))
            present = _indexes(cur, name)
            for index, columns in indexes.items():
                if index.startswith("uq_") and not any(
                    _serves(found, columns, unique=True) for found in present
                ):
                    problems.append(
                        f"table {name} has no unique index on {', '.join(columns)} (without"
                        f" it {UNIQUE_BECAUSE[index]}; run 'alt42-heartbeat migrate')"
                    )
    return problems or list(denied.values())
