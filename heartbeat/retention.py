"""``alt42-heartbeat prune``: delete old rows of the job's tables, gently.

Deletes go in small batches (``DELETE ... WHERE t < cutoff ORDER BY t LIMIT n``, one
short transaction each) along the time indexes ``migrate`` creates, in the index's own
order: a batch reads its ``n`` rows and stops, so it costs the same whatever the backlog
(``ORDER BY id`` sorted the whole old range for every batch: 37 s per batch at 400,000
old rows, and a backlog that grew past the statement time limit never drained). A prune
never holds a lock on a whole table while Moodle's pages read it. A batch that loses a
deadlock (or, on Galera, a certification conflict with a prune on another node) is
simply run again.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping
from typing import Any

from heartbeat import db
from heartbeat.config import RetentionConfig

log = logging.getLogger(__name__)

# table attribute of ``Tables`` -> the column that dates a row
DATED_COLUMNS = {
    "evaluation_log": "evaluated_at",
    "event_log": "created_at",
    "heartbeat_log": "created_at",
    "daily": "day",
}
#: The per-student rows, kept ``[retention] detail_days``; the run rows and the daily
#: summary ``days``.
DETAIL_TABLES = ("evaluation_log", "event_log")
#: Tables dated by a day (a DATE): a day goes once all of it is older than the cutoff.
DAY_TABLES = ("daily",)


def keep_days(retention: RetentionConfig) -> dict[str, int]:
    """Table attribute -> the days its rows are kept."""
    return {
        attr: retention.detail_days if attr in DETAIL_TABLES else retention.days
        for attr in DATED_COLUMNS
    }


def prune(
    conn: Any,
    tables: db.Tables,
    older_than: Mapping[str, dt.datetime],
    batch_size: int,
) -> dict[str, int]:
    """Delete the rows of each table dated before its moment in ``older_than`` (table
    attribute -> a moment); returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for attr in DATED_COLUMNS:
        cutoff = older_than[attr].astimezone(dt.timezone.utc).replace(tzinfo=None)
        if attr in DAY_TABLES:  # a day stays while any of it is within the retention
            cutoff = dt.datetime.combine(cutoff.date() - dt.timedelta(days=1), dt.time())
        table = getattr(tables, attr)
        total = 0
        statement = batch_statement(tables, attr, batch_size)
        delete_batch = functools.partial(_delete_batch, conn, statement, cutoff)
        while True:
            count = db.retry_deadlocks(conn, delete_batch)
            total += count
            if count < batch_size:
                break
        deleted[tables.bare(table)] = total
        log.info(
            "Pruned %d row(s) from %s older than %s",
            total,
            tables.bare(table),
            f"{cutoff:%Y-%m-%d %H:%M}",
        )
    return deleted


def batch_statement(tables: db.Tables, attr: str, batch_size: int) -> str:
    """One batch's DELETE: the oldest rows first, along the table's time index."""
    column = DATED_COLUMNS[attr]
    return (
        f"DELETE FROM {getattr(tables, attr)} WHERE {column} < %s"
        f" ORDER BY {column} LIMIT {int(batch_size)}"
    )


def _delete_batch(conn: Any, statement: str, cutoff: dt.datetime) -> int:
    """One batch, committed: the unit that is run again after a deadlock."""
    with conn.cursor() as cur:
        count = int(cur.execute(statement, (cutoff,)))
    conn.commit()
    return count
