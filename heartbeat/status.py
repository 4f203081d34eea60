"""``alt42-heartbeat status``: a Nagios/Icinga plugin over the run records.

One line ``HEARTBEAT <STATE> - <summary> | <perfdata>`` and the plugin exit codes
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The checks are pure functions of the last run
rows, so every branch is tested without a database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from heartbeat import db
from heartbeat.config import HeartbeatConfig

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
#: What the role found of the PHP job's cron lines on this host, next to the INI
#: (roles/alt42_heartbeat/vars/main.yml: __alt42_heartbeat_php_record).
PHP_RECORD = "php-schedules.json"
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
COMPLETED = ("success", "partial")


@dataclass(frozen=True)
class RunRow:
    """What the status check needs of one ``heartbeat_log`` row of this job."""

    created_at: dt.datetime  # UTC, aware
    status: str
    students_processed: int
    errors: int
    duration_ms: float
    version: Optional[str] = None  # the release that ran (the column exists from 0.2.0)

    @property
    def completed(self) -> bool:
        return self.status in COMPLETED


@dataclass(frozen=True)
class History:
    """The last runs of this job, and the PHP job's rows (``status`` NULL) lately."""

    last: Optional[RunRow]  # the newest finished run (any outcome)
    last_completed: Optional[RunRow]
    php_rows: int = 0  # rows the PHP job wrote since the limit began and after our first run
    php_last: Optional[dt.datetime] = None  # when the newest of them was written (UTC)


def history(conn: Any, tables: db.Tables, columns: set[str], since: dt.datetime) -> History:
    """Only runs of this job count (a row with ``status`` has one); a PHP job left
    scheduled during the switch keeps writing rows without, which must not pass for
    this job's runs (they are counted, to be named in the line)."""
    rows: list[Optional[RunRow]] = []
    with_status = "status" in columns
    version = "version" if "version" in columns else "NULL"
    with conn.cursor() as cur:
        for where in ("status <> 'running'", "status IN ('success', 'partial')"):
            if not with_status:  # not migrated: no run of this job yet
                rows.append(None)
                continue
            cur.execute(
                f"SELECT created_at, status, students_processed, errors, duration_ms, {version}"
                f" FROM {tables.heartbeat_log} WHERE {where} ORDER BY id DESC LIMIT 1"
            )
            row = cur.fetchone()
            rows.append(
                None
                if row is None
                else RunRow(
                    created_at=row[0].replace(tzinfo=dt.timezone.utc),
                    status=str(row[1]),
                    students_processed=int(row[2] or 0),
                    errors=int(row[3] or 0),
                    duration_ms=float(row[4] or 0),
                    version=None if row[5] is None else str(row[5]),
                )
            )
        # Only rows after this job's first run: rows of the PHP job written before the
        # switch are history, not a second job (they warned for 40 min after a deploy).
        php = (
            f"status IS NULL AND id > (SELECT COALESCE(MIN(id), 0) FROM {tables.heartbeat_log}"
            " WHERE status IS NOT NULL) AND "
            if with_status
            else ""
        )
        cur.execute(
            f"SELECT COUNT(*), MAX(created_at) FROM {tables.heartbeat_log}"
            f" WHERE {php}created_at >= %s",
            (since.astimezone(dt.timezone.utc).replace(tzinfo=None),),
        )
        count = cur.fetchone() or (0, None)
    newest = count[1] if isinstance(count[1], dt.datetime) else None
    return History(
        rows[0],
        rows[1],
        int(count[0] or 0),
        newest.replace(tzinfo=dt.timezone.utc) if newest else None,
    )


def php_schedules_here(config_path: str) -> Optional[str]:
    """Where the PHP job is still scheduled on this host, as the role last recorded it
    (``PHP_RECORD`` next to the INI the role wrote: in the release's directory, which
    /etc/alt42/heartbeat.ini links to), in words; None without a record."""
    path = os.path.join(os.path.dirname(os.path.realpath(config_path)), PHP_RECORD)
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)["php_schedules"]
        active = [
            f"{entry['where']} ({entry['schedule']})"
            for entry in entries
            if entry["active"] and not entry["own"]
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if active:
        return "on this host, as the role found it: " + "; ".join(active)
    return (
        "not on this host at the last deploy: look at the site's other web servers"
        " (crontab -l -u root, crontab -l -u www-data, /etc/cron.d, /etc/crontab)"
    )


def critical_limit(now: dt.datetime, settings: HeartbeatConfig, grace_minutes: int) -> dt.timedelta:
    """How old the last completed run may be before CRITICAL: two missed starts + grace.

    With a schedule, the second-latest start at least ``grace_minutes`` ago must have
    run (for ``*/30`` and 10 min grace that is the old "2 intervals + grace" = 70 min);
    without one, 2 x ``interval_minutes`` + grace.
    """
    grace = dt.timedelta(minutes=grace_minutes)
    if settings.schedule is None:
        return 2 * dt.timedelta(minutes=settings.interval_minutes) + grace
    local = (now - grace).astimezone().replace(tzinfo=None)
    latest = settings.schedule.previous(local)
    before = settings.schedule.previous(latest - dt.timedelta(minutes=1))
    return now - before.astimezone()


def assess(
    found: History,
    now: dt.datetime,
    limit: dt.timedelta,
    sessions_exist: bool,
    php_where: Optional[str] = None,
) -> tuple[int, str]:
    """The plugin state and its one line (with perfdata); ``limit``: ``critical_limit``;
    ``php_where``: :func:`php_schedules_here`."""
    state, line = _assess(found.last, found.last_completed, now, limit, sessions_exist)
    if found.php_rows:
        newest = f", the last at {found.php_last:%H:%M} UTC" if found.php_last else ""
        where = php_where or "remove its cron line: the role's play retires it"
        note = (
            f"; {found.php_rows} row(s) of the PHP heartbeat job arrived meanwhile{newest}:"
            f" it is still scheduled too ({where})"
        )
        text, _, perf = line.partition(" | ")
        if state == OK:
            state, text = WARNING, text.replace("HEARTBEAT OK", "HEARTBEAT WARNING", 1)
        line = text + note + (f" | {perf}" if perf else "")
    return state, line


def _assess(
    last: Optional[RunRow],
    last_completed: Optional[RunRow],
    now: dt.datetime,
    limit: dt.timedelta,
    sessions_exist: bool,
) -> tuple[int, str]:
    """The state and line of the runs alone, before the PHP rows are weighed."""
    if last_completed is None:
        return CRITICAL, _line(CRITICAL, "no completed run recorded yet", None, limit)
    age = now - last_completed.created_at
    perf = _perfdata(age, limit, last)
    if age > limit:
        minutes = int(age.total_seconds() // 60)
        return CRITICAL, _line(
            CRITICAL,
            f"last completed run {minutes} min ago (limit {int(limit.total_seconds() // 60)} min)",
            perf,
            limit,
        )
    last = last or last_completed  # a completed run is also a finished one
    if not last.completed:
        return WARNING, _line(WARNING, f"last run {last.status}", perf, limit)
    if last.errors:
        return WARNING, _line(WARNING, f"last run had {last.errors} failed student(s)", perf, limit)
    if last.students_processed == 0 and sessions_exist:
        return WARNING, _line(
            WARNING, "last run processed 0 students while active sessions exist", perf, limit
        )
    release = f", release {last.version}" if last.version else ""
    return OK, _line(
        OK,
        f"last run {last.students_processed} students, 0 errors, {last.duration_ms:.0f} ms"
        f"{release}",
        perf,
        limit,
    )


def _perfdata(age: dt.timedelta, limit: dt.timedelta, last: Optional[RunRow]) -> str:
    seconds, critical = int(age.total_seconds()), int(limit.total_seconds())
    parts = [f"age={seconds}s;;{critical}"]
    if last is not None:
        parts += [
            f"students={last.students_processed}",
            f"errors={last.errors};0;",
            f"duration={last.duration_ms / 1000:.3f}s",
        ]
    return " ".join(parts)


def _line(state: int, summary: str, perf: Optional[str], limit: dt.timedelta) -> str:
    text = f"HEARTBEAT {STATE_NAMES[state]} - {summary}"
    return f"{text} | {perf}" if perf else text


def unknown(message: str) -> str:
    """The UNKNOWN line for a check that could not be made (config, database)."""
    return _line(UNKNOWN, message, None, dt.timedelta())
