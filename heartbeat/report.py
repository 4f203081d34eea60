"""The seed manual's two monitoring views of ``heartbeat_log``.

* executions: each run in the last N hours (time, students processed, errors, duration);
* daily: per-day aggregates over N days (runs, average students, average duration,
  total errors).

Both read only the PHP job's original columns (plus ``status`` where present), so they
also show the history the PHP job wrote before the switch.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from heartbeat import db


def executions(
    conn: Any, tables: db.Tables, hours: int, now: dt.datetime, with_status: bool = True
) -> list[dict[str, Any]]:
    """Each run whose row was created within the last ``hours``, newest first.

    ``with_status`` is false on a table ``migrate`` has not extended yet (PHP history).
    """
    since = (now - dt.timedelta(hours=hours)).astimezone(dt.timezone.utc).replace(tzinfo=None)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT created_at, students_processed, errors, duration_ms,"
            f" {'status' if with_status else 'NULL'}"
            f" FROM {tables.heartbeat_log} WHERE created_at >= %s"
            " ORDER BY created_at DESC, id DESC",
            (since,),
        )
        return [
            {
                "time": _iso(row[0]),
                "students_processed": int(row[1] or 0),
                "errors": int(row[2] or 0),
                "duration_ms": float(row[3] or 0),
                "status": row[4] or "",
            }
            for row in cur.fetchall()
        ]


def daily(conn: Any, tables: db.Tables, days: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Per-day aggregates (UTC days) over the last ``days`` days, newest first."""
    first_day = (now.astimezone(dt.timezone.utc) - dt.timedelta(days=days - 1)).date()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DATE(created_at) AS day, COUNT(*), AVG(students_processed),"
            " AVG(duration_ms), SUM(errors)"
            f" FROM {tables.heartbeat_log} WHERE created_at >= %s"
            " GROUP BY DATE(created_at) ORDER BY day DESC",
            (dt.datetime.combine(first_day, dt.time()),),
        )
        return [
            {
                "day": str(row[0]),
                "executions": int(row[1]),
                "avg_students": round(float(row[2] or 0), 1),
                "avg_duration_ms": round(float(row[3] or 0), 2),
                "total_errors": int(row[4] or 0),
            }
            for row in cur.fetchall()
        ]


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def as_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain fixed-width table (header, rule, rows); ``(no runs)`` when empty."""
    if not rows:
        return "(no runs)"
    cells = [[title for _, title in columns]]
    cells += [[_cell(row[key]) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if not value.is_integer() else f"{value:.0f}"
    return str(value)


EXECUTION_COLUMNS = [
    ("time", "time (UTC)"),
    ("students_processed", "students"),
    ("errors", "errors"),
    ("duration_ms", "duration ms"),
    ("status", "status"),
]
DAILY_COLUMNS = [
    ("day", "day (UTC)"),
    ("executions", "runs"),
    ("avg_students", "avg students"),
    ("avg_duration_ms", "avg duration ms"),
    ("total_errors", "errors"),
]
