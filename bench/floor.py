"""The floor: how fast the same server takes the rows the job wrote, and nothing else.

The rows are read out of the job's tables first (the same JSON documents, the same
sizes), turned into ready-to-send payloads, and only then is the clock started: what
is timed is the server taking the rows into a second database migrated by the job's own
``migrate`` (identical tables, identical indexes), in one of two ways:

* ``insert``: multi-row ``INSERT ... VALUES (...), (...)`` statements of about 4 MB,
  pre-escaped, one transaction per table;
* ``load``: ``LOAD DATA LOCAL INFILE`` of pre-written tab-separated files, one
  transaction per table.

The faster of the two is the floor. ``INSERT ... SELECT`` is not used: it would skip
the client protocol, which the job cannot.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql.cursors

from heartbeat import schema

COLUMNS: dict[str, tuple[str, ...]] = {
    "alt42_scenario_evaluation_log": schema.EVALUATION_COLUMNS,
    "alt42_event_processing_log": schema.EVENT_COLUMNS,
    "alt42_heartbeat_log": (
        "execution_time",
        "students_processed",
        "errors",
        "duration_ms",
        "created_at",
        "run_id",
        "host",
        "status",
        "finished_at",
        "exit_code",
    ),
}
STATEMENT_BYTES = 4 * 1024 * 1024


@dataclass
class FloorTimes:
    insert_s: float
    load_s: float
    rows: int
    payload_bytes: int

    @property
    def best_s(self) -> float:
        return min(self.insert_s, self.load_s)

    @property
    def best_method(self) -> str:
        return "multi-row INSERT" if self.insert_s <= self.load_s else "LOAD DATA"


def read_rows(conn: Any, prefix: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the job wrote, in id order, without the ids (the server assigns them)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table, columns in COLUMNS.items():
        cursor = conn.cursor(pymysql.cursors.SSCursor)
        try:
            cursor.execute(f"SELECT {', '.join(columns)} FROM `{prefix}{table}` ORDER BY id")
            rows[table] = list(cursor)
        finally:
            cursor.close()
    return rows


def _statements(conn: Any, prefix: str, table: str, rows: list[tuple[Any, ...]]) -> list[bytes]:
    """Pre-escaped multi-row INSERTs of at most ``STATEMENT_BYTES``, UTF-8 encoded."""
    head = f"INSERT INTO `{prefix}{table}` ({', '.join(COLUMNS[table])}) VALUES ".encode()
    statements: list[bytes] = []
    parts: list[bytes] = []
    size = len(head)
    literal = conn.escape
    for row in rows:
        data = ("(" + ",".join([literal(value) for value in row]) + ")").encode()
        if parts and size + len(data) + 1 > STATEMENT_BYTES:
            statements.append(head + b",".join(parts))
            parts, size = [], len(head)
        parts.append(data)
        size += len(data) + 1
    if parts:
        statements.append(head + b",".join(parts))
    return statements


def _tsv_value(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


def _write_tsv(path: Path, rows: list[tuple[Any, ...]]) -> int:
    with open(path, "w", encoding="utf-8") as handle:
        chunk: list[str] = []
        for row in rows:
            chunk.append("\t".join([_tsv_value(value) for value in row]))
            if len(chunk) >= 20_000:
                handle.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            handle.write("\n".join(chunk) + "\n")
    return path.stat().st_size


def _truncate(conn: Any, prefix: str) -> None:
    with conn.cursor() as cur:
        for table in COLUMNS:
            cur.execute(f"TRUNCATE TABLE `{prefix}{table}`")
    conn.commit()


def measure(conn: Any, rows: dict[str, list[tuple[Any, ...]]], prefix: str = "mdl_") -> FloorTimes:
    """Time both bulk paths into the (migrated, empty) tables behind ``conn``.

    ``conn`` must be a non-autocommit connection opened with ``local_infile=True``.
    """
    total_rows = sum(len(r) for r in rows.values())
    # 1. multi-row INSERTs, pre-escaped
    statements = {
        table: _statements(conn, prefix, table, table_rows) for table, table_rows in rows.items()
    }
    payload = sum(len(s) for stmts in statements.values() for s in stmts)
    _truncate(conn, prefix)
    started = time.perf_counter()
    with conn.cursor() as cur:
        for stmts in statements.values():
            for statement in stmts:
                cur.execute(statement)
            conn.commit()
    insert_s = time.perf_counter() - started
    del statements
    # 2. LOAD DATA LOCAL INFILE, pre-written files
    workdir = Path(tempfile.mkdtemp(prefix="alt42-bench-floor-"))
    files = {}
    try:
        for table, table_rows in rows.items():
            files[table] = workdir / f"{table}.tsv"
            _write_tsv(files[table], table_rows)
        _truncate(conn, prefix)
        started = time.perf_counter()
        with conn.cursor() as cur:
            for table, path in files.items():
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE `{prefix}{table}`"
                    " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t'"
                    f" LINES TERMINATED BY '\\n' ({', '.join(COLUMNS[table])})",
                    (str(path),),
                )
                conn.commit()
        load_s = time.perf_counter() - started
    finally:
        for path in files.values():
            if path.exists():
                os.unlink(path)
        workdir.rmdir()
    return FloorTimes(insert_s, load_s, total_rows, payload)
