"""The naive shape: the job's logic with the PHP job's database access pattern.

Per student: the state read by per-student queries (``students.load_states`` for a
batch of one: four indexed queries) and every row written by its own autocommitted
single-row INSERT (five evaluation rows, one event row). Evaluation, event building,
routing and JSON encoding are the job's own (``heartbeat.evaluate.evaluate_batch``), so
only the shape of the database access differs from the job.

This is kinder than the PHP job was: no 90 ms simulated-router sleep, no 17 failing
statements per student, and indexed state queries instead of a view that scanned.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from heartbeat import db, evaluate, rules, schema, store, students

EVALUATION_INSERT = (
    f"INSERT INTO {{table}} ({', '.join(schema.EVALUATION_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(schema.EVALUATION_COLUMNS))})"
)
EVENT_INSERT = (
    f"INSERT INTO {{table}} ({', '.join(schema.EVENT_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(schema.EVENT_COLUMNS))})"
)


def naive_run(conn: Any, prefix: str = "mdl_", interval_minutes: int = 30) -> int:
    """One run, student by student, on an autocommit connection; returns students processed."""
    tables = db.Tables(prefix)
    book = rules.load_rule_book()
    run_id = str(uuid.uuid4())
    run_start = dt.datetime.now(dt.timezone.utc)
    started = time.monotonic()
    stamp = run_start.astimezone(dt.timezone.utc).replace(tzinfo=None)
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {tables.heartbeat_log} (execution_time, students_processed, errors,"
            " duration_ms, created_at, run_id, status) VALUES (%s, 0, 0, 0, %s, %s, 'running')",
            (stamp, stamp, run_id),
        )
    ids = students.active_student_ids(conn, tables, run_start, 24, 24)
    keys = students.id_keys(db.collations_of(conn, tables), tables)
    profile_columns = db.columns_of(conn, tables)[tables.bare(tables.profiles)]
    processed = errors = 0
    evaluation_sql = EVALUATION_INSERT.format(table=tables.evaluation_log)
    event_sql = EVENT_INSERT.format(table=tables.event_log)
    cache = evaluate.DocumentCache(book)
    store.prepare(conn)
    with conn.cursor() as cur:
        for student_id in ids:
            states = students.load_states(conn, tables, [student_id], profile_columns, keys)
            rows = evaluate.evaluate_batch(
                [student_id],
                states,
                book,
                cache,
                run_id,
                run_start,
                interval_minutes,
                lambda: dt.datetime.now(dt.timezone.utc),
                run_start.date(),
            )
            for row in rows.evaluations:
                cur.execute(evaluation_sql, row)
            for row in rows.events:
                cur.execute(event_sql, row)
            processed += rows.processed
            errors += rows.failed
        cur.execute(
            f"UPDATE {tables.heartbeat_log} SET students_processed = %s, errors = %s,"
            " duration_ms = %s, status = 'success' WHERE run_id = %s",
            (processed, errors, round((time.monotonic() - started) * 1000, 2), run_id),
        )
    return processed
