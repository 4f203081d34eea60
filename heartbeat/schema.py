"""The tables: what the job needs to read, and ``migrate`` for the ones it writes.

``migrate`` only ever creates missing tables, adds missing nullable columns and
indexes, and widens ``student_id`` to 32 characters: it never drops, renames or
rewrites what an existing installation (the PHP job's migration) already has, so the
seed's monitoring queries keep working.
"""

from __future__ import annotations

import logging
from typing import Any

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
            KEY idx_created_at (created_at),
            UNIQUE KEY uq_run_id (run_id),
            UNIQUE KEY uq_slot (slot_start)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
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
            KEY idx_student (student_id),
            KEY idx_event (event_id),
            KEY idx_evaluated_at (evaluated_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
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
            KEY idx_event (event_id),
            KEY idx_student (student_id),
            KEY idx_created_at (created_at),
            KEY idx_run (run_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
}

EXTRA_COLUMNS: dict[str, dict[str, str]] = {
    "heartbeat_log": {
        "run_id": "CHAR(36) NULL DEFAULT NULL",
        "host": "VARCHAR(255) NULL DEFAULT NULL",
        "status": "VARCHAR(16) NULL DEFAULT NULL",
        "finished_at": "TIMESTAMP NULL DEFAULT NULL",
        "exit_code": "TINYINT UNSIGNED NULL DEFAULT NULL",
        # the schedule slot a run claimed: unique, so one run per slot across servers
        "slot_start": "DATETIME NULL DEFAULT NULL",
    },
    "evaluation_log": {},
    "event_log": {"run_id": "CHAR(36) NULL DEFAULT NULL"},
}

EXTRA_INDEXES: dict[str, dict[str, str]] = {
    "heartbeat_log": {
        "idx_created_at": "(created_at)",
        "uq_run_id": "(run_id)",
        "uq_slot": "(slot_start)",
    },
    "evaluation_log": {"idx_evaluated_at": "(evaluated_at)", "idx_event": "(event_id)"},
    "event_log": {"idx_created_at": "(created_at)", "idx_run": "(run_id)"},
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
}


def missing_schema(found: dict[str, set[str]], tables: Tables) -> list[str]:
    """Problems with the schema, one sentence each (empty when all is there)."""
    problems = []
    for attr, needed in {**READ_COLUMNS, **WRITE_COLUMNS}.items():
        name = tables.bare(getattr(tables, attr))
        fix = (
            "run 'alt42-heartbeat migrate'" if attr in WRITE_COLUMNS else "check [database] prefix"
        )
        if name not in found:
            problems.append(f"table {name} is missing ({fix})")
            continue
        lacking = sorted(needed - found[name])
        if lacking:
            problems.append(f"table {name} lacks column(s) {', '.join(lacking)} ({fix})")
    return problems


def migrate(conn: Any, tables: Tables) -> int:
    """Create or extend the job's tables; returns the number of changes made."""
    changes = 0
    with conn.cursor() as cur:
        for attr, create in CREATE.items():
            table = getattr(tables, attr)
            name = tables.bare(table)
            cur.execute(
                "SELECT COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE"
                " FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                (name,),
            )
            columns = {str(row[0]).lower(): row for row in cur.fetchall()}
            if not columns:
                cur.execute(create.format(table=table))
                # IF NOT EXISTS: a table whose columns this user cannot see (no SELECT
                # on it) exists already; do not claim it was created and left as is.
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.COLUMNS"
                    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                    (name,),
                )
                row = cur.fetchone()
                if not row or not row[0]:
                    raise DatabaseError(
                        f"table {name}: this database user cannot see its columns, so"
                        " migrate cannot check or extend it; grant SELECT, INSERT, UPDATE,"
                        " DELETE, CREATE, ALTER on it (README: Database privileges)"
                    )
                log.info(f"created table {name}")
                changes += 1
                continue
            for column, definition in EXTRA_COLUMNS[attr].items():
                if column not in columns:
                    cur.execute(f"ALTER TABLE {table} ADD COLUMN `{column}` {definition}")
                    log.info(f"added column {name}.{column}")
                    changes += 1
            student = columns.get("student_id")
            if student is not None and (student[1] or 0) < STUDENT_ID_LENGTH:
                null = "NULL" if student[2] == "YES" else "NOT NULL"
                cur.execute(
                    f"ALTER TABLE {table} MODIFY `student_id` VARCHAR({STUDENT_ID_LENGTH}) {null}"
                )
                log.info(f"widened {name}.student_id to {STUDENT_ID_LENGTH} characters")
                changes += 1
            cur.execute(
                "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                (name,),
            )
            indexes = {str(row[0]) for row in cur.fetchall()}
            for index, columns_sql in EXTRA_INDEXES[attr].items():
                if index not in indexes:
                    kind = "UNIQUE INDEX" if index.startswith("uq_") else "INDEX"
                    cur.execute(f"ALTER TABLE {table} ADD {kind} `{index}` {columns_sql}")
                    log.info(f"added index {name}.{index}")
                    changes += 1
    conn.commit()
    return changes


def schema_problems(conn: Any, tables: Tables) -> list[str]:
    """``missing_schema`` against the live database."""
    return missing_schema(columns_of(conn, tables), tables)
