"""What the job's tables cost the site: their size now, their growth, their size to come.

The per-student rows are nearly all the bytes (docs/footprint.md): a site that keeps them
longer than it needs finds out when the disk fills. ``report`` shows these figures,
``check`` compares the projection with ``[retention] max_size``.

The projection is the table's steady state: the rows of the last day, at the table's
average bytes per row, times the days ``prune`` keeps them. It assumes tomorrow's runs
look like today's, and says nothing about a table that ``prune`` has never seen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

import pymysql

from heartbeat import db, retention
from heartbeat.config import RetentionConfig

DAY = dt.timedelta(days=1)
#: Below this a table's bytes are mostly its first pages (16 KiB per index, however few
#: rows): no per-row figure can be read from them (one run row "cost" 64 KiB).
MIN_BYTES_TO_ESTIMATE = 1024 * 1024


@dataclass(frozen=True)
class TableSize:
    """One of the job's tables, as the server reports it."""

    attr: str  # the ``Tables`` attribute
    name: str  # without the schema
    bytes: int  # data and indexes (information_schema, after the server's last estimate)
    rows: int  # the server's estimate (InnoDB's is approximate)
    rows_last_day: int  # counted on the table's time index
    keep_days: int  # what prune keeps

    @property
    def growth_per_day(self) -> Optional[float]:
        """Bytes a day adds, at the table's average row (None: too small to tell)."""
        if self.bytes < MIN_BYTES_TO_ESTIMATE or not self.rows:
            return None
        return self.rows_last_day * self.bytes / self.rows

    @property
    def projected(self) -> Optional[float]:
        """Bytes once prune keeps the table at its retention, at today's pace."""
        growth = self.growth_per_day
        return None if growth is None else growth * self.keep_days


def projected_total(found: list[TableSize]) -> float:
    """The tables' size to come; a table too small to tell counts as it is now."""
    return sum(size.bytes if size.projected is None else size.projected for size in found)


def on_disk(conn: Any, tables: db.Tables) -> dict[str, tuple[int, int]]:
    """Table name -> (bytes, rows) of the job's tables that exist: the bytes their files
    take on disk where the server shows them (MariaDB, with the PROCESS privilege: what
    page compression saves shows only there), else the pages' bytes (data and indexes,
    as information_schema says). Two short reads: cheap enough for every run."""
    names = [tables.bare(getattr(tables, attr)) for attr in retention.DATED_COLUMNS]
    marks = ", ".join(["%s"] * len(names))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, DATA_LENGTH + INDEX_LENGTH, TABLE_ROWS"
            " FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({marks})",
            names,
        )
        found = {str(row[0]): (int(row[1] or 0), int(row[2] or 0)) for row in cur.fetchall()}
        files = _allocated(cur, names)
    conn.commit()
    return {name: (files.get(name, size), rows) for name, (size, rows) in found.items()}


def _allocated(cur: Any, names: list[str]) -> dict[str, int]:
    """Table name -> bytes its file takes on disk, where the server shows it to us."""
    paths = ", ".join(["CONCAT(DATABASE(), '/', %s)"] * len(names))
    try:
        cur.execute(
            "SELECT SUBSTRING_INDEX(NAME, '/', -1), ALLOCATED_SIZE"
            f" FROM information_schema.INNODB_SYS_TABLESPACES WHERE NAME IN ({paths})",
            names,
        )
    except pymysql.err.MySQLError:  # no PROCESS privilege, or not MariaDB
        return {}
    return {str(row[0]): int(row[1]) for row in cur.fetchall() if row[1]}


def measure(
    conn: Any, tables: db.Tables, settings: RetentionConfig, now: dt.datetime
) -> list[TableSize]:
    """Each of the job's tables that exists, with its figures (its size, and one range
    count on its time index), kept as ``settings`` say prune keeps it."""
    keep = retention.keep_days(settings)
    since = (now - DAY).astimezone(dt.timezone.utc).replace(tzinfo=None)
    sizes = on_disk(conn, tables)
    found = []
    with conn.cursor() as cur:
        for attr, column in retention.DATED_COLUMNS.items():
            name = tables.bare(getattr(tables, attr))
            if name not in sizes:
                continue
            cur.execute(
                f"SELECT COUNT(*) FROM {getattr(tables, attr)} WHERE {column} >= %s", (since,)
            )
            last_day = int(cur.fetchone()[0])
            found.append(TableSize(attr, name, *sizes[name], last_day, keep[attr]))
    conn.commit()
    return found


def human(size: float) -> str:
    """Bytes as people read them: 1 decimal, powers of 1024 (as ``du -h``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def rows(found: list[TableSize]) -> list[dict[str, Any]]:
    """The figures as ``report`` prints them (and as its JSON holds them, in bytes)."""
    return [
        {
            "table": size.name,
            "bytes": size.bytes,
            "rows": size.rows,
            "rows_last_day": size.rows_last_day,
            "growth_bytes_per_day": _rounded(size.growth_per_day),
            "keep_days": size.keep_days,
            "projected_bytes": _rounded(size.projected),
        }
        for size in found
    ]


def _rounded(value: Optional[float]) -> Optional[int]:
    return None if value is None else round(value)


def over_budget(found: list[TableSize], budget: int) -> str:
    """A warning line when the projected total passes ``budget`` bytes, else ``""``."""
    total = projected_total(found)
    if total <= budget:
        return ""
    biggest = max(found, key=lambda size: size.projected or size.bytes)
    return (
        f"the job's tables will reach about {human(total)} at the retention settings,"
        f" more than [retention] max_size ({human(budget)}); most of it is {biggest.name}"
        f" ({human(biggest.projected or biggest.bytes)}, kept {biggest.keep_days} days):"
        " lower [retention] detail_days (the plugin's pages read 30 days at most) or raise"
        " max_size"
    )
