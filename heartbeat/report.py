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
import re
import zoneinfo
from decimal import Decimal
from typing import Any, Optional

from heartbeat import db, sizes


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


def server_zone(conn: Any) -> tuple[dt.tzinfo, str]:
    """The database server's time zone now, and how to name it: the zone the seed
    manual's ``GROUP BY DATE(created_at)`` counted days in (its session's zone)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT @@global.time_zone, @@system_time_zone, TIMESTAMPDIFF(MINUTE,"
            " UTC_TIMESTAMP(), CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', @@global.time_zone))"
        )
        row = cur.fetchone()
    setting, system, minutes = str(row[0]), str(row[1]), int(row[2] or 0)
    offset = dt.timedelta(minutes=minutes)
    sign, rest = ("-" if minutes < 0 else "+"), abs(minutes)
    utc = f"UTC{sign}{rest // 60:02d}:{rest % 60:02d}"
    name = f"{system}, {utc}" if setting == "SYSTEM" else f"{setting}, {utc}"
    return dt.timezone(offset), f"the database server's time zone ({name})"


def zone(conn: Any, setting: Optional[str]) -> tuple[dt.tzinfo, str]:
    """The zone the days are counted in, and how to name it: ``[report] time_zone``
    when set, else the database server's (``report`` and the daily summary alike)."""
    return zone_of(setting) if setting else server_zone(conn)


def zone_of(setting: str) -> tuple[dt.tzinfo, str]:
    """``[report] time_zone`` (an IANA name or +HH:MM), and how to name it."""
    match = re.fullmatch(r"([+-])([0-9]{2}):([0-9]{2})", setting)
    if match:
        minutes = int(match.group(2)) * 60 + int(match.group(3))
        sign = -1 if match.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(minutes=minutes)), f"UTC{setting}"
    return zoneinfo.ZoneInfo(setting), setting


def daily(
    conn: Any, tables: db.Tables, days: int, now: dt.datetime, zone: dt.tzinfo
) -> list[dict[str, Any]]:
    """Per-day aggregates over the last ``days`` days of ``zone``, newest first.

    The rows are read in UTC and counted by their day in ``zone`` here (a named zone
    needs no time zone tables on the database server)."""
    local_today = now.astimezone(zone).date()
    first = dt.datetime.combine(local_today - dt.timedelta(days=days - 1), dt.time(), zone)
    since = first.astimezone(dt.timezone.utc).replace(tzinfo=None)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT created_at, students_processed, duration_ms, errors"
            f" FROM {tables.heartbeat_log} WHERE created_at >= %s",
            (since,),
        )
        rows = cur.fetchall()
    per_day: dict[dt.date, list[tuple[Any, ...]]] = {}
    for created, *counts in rows:
        if not isinstance(created, dt.datetime):  # a zero date: no day to count it in
            continue
        day = created.replace(tzinfo=dt.timezone.utc).astimezone(zone).date()
        per_day.setdefault(day, []).append(tuple(counts))
    return [
        {
            "day": str(day),
            "executions": len(runs),
            "avg_students": round(sum(float(r[0] or 0) for r in runs) / len(runs), 1),
            "avg_duration_ms": round(sum(float(r[1] or 0) for r in runs) / len(runs), 2),
            "total_errors": sum(int(r[2] or 0) for r in runs),
        }
        for day, runs in sorted(per_day.items(), reverse=True)
    ]


def as_text(data: dict[str, Any]) -> str:
    """``report``'s sections as tables, each under its title, in the order read."""
    sections: list[tuple[str, str]] = []
    if "executions" in data:
        title = f"Runs in the last {data['hours']} hour(s):"
        sections.append((title, as_table(data["executions"], EXECUTION_COLUMNS)))
    if "daily" in data:
        title = f"Per day over the last {data['days']} day(s), days in {data['time_zone']}:"
        sections.append((title, as_table(data["daily"], DAILY_COLUMNS)))
    if "trends" in data:
        title = f"Per day over the last {data['days']} day(s), days in {data['time_zone']}"
        title += " (the daily summary; % = matches of events):"
        sections.append((title, trends_table(data["trends"])))
    if "tables" in data:
        title = "The job's tables (the server's estimates; size to come: the last day's pace"
        title += " over the days kept; -: too small yet to tell):"
        sections.append((title, tables_table(data["tables"])))
    return "\n\n".join(f"{title}\n{table}" for title, table in sections)


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
TABLE_COLUMNS = [
    ("table", "table"),
    ("size", "size"),
    ("rows", "rows"),
    ("growth", "per day"),
    ("keep_days", "kept (days)"),
    ("projected", "size to come"),
]


def tables_table(tables: list[dict[str, Any]]) -> str:
    """``report``'s table of the job's tables, sizes as people read them."""
    shown = [
        {
            **row,
            "size": sizes.human(row["bytes"]),
            "rows": f"{row['rows']:,}",
            "growth": _size_or_dash(row["growth_bytes_per_day"]),
            "projected": _size_or_dash(row["projected_bytes"]),
        }
        for row in tables
    ]
    return as_table(shown, TABLE_COLUMNS) if shown else "(no tables: run 'alt42-heartbeat migrate')"


def _size_or_dash(value: Any) -> str:
    """A size, or "-" where the table is too small yet to tell (sizes.MIN_BYTES_TO_ESTIMATE)."""
    return "-" if value is None else sizes.human(value)


DAILY_COLUMNS = [
    ("day", "day"),
    ("executions", "runs"),
    ("avg_students", "avg students"),
    ("avg_duration_ms", "avg duration ms"),
    ("total_errors", "errors"),
]


TREND_COLUMNS = [
    ("day", "day"),
    ("kind", "kind"),
    ("name", "name"),
    ("events", "events"),
    ("matches", "matches"),
    ("share", "%"),
]


def trends_table(rows: list[dict[str, Any]]) -> str:
    """``report --trends``: the daily summary's rows, each with its share of matches."""
    if not rows:
        return "(no summary rows: the job has not run in these days)"
    shown = [
        {
            **row,
            "share": f"{100 * row['matches'] / row['events']:.1f}"
            if row["events"] and row["kind"] != "status"
            else "",
        }
        for row in rows
    ]
    return as_table(shown, TREND_COLUMNS)
