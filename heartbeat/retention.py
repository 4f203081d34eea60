"""``alt42-heartbeat prune``: delete old rows of the job's three tables, gently.

Deletes go in small batches (``DELETE ... ORDER BY id LIMIT n``, one short transaction
each) through the time indexes ``migrate`` creates, so a prune never holds a lock on a
whole table while Moodle's pages read it. A batch that loses a deadlock (or, on Galera,
a certification conflict with a prune on another node) is simply run again.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from heartbeat import db

log = logging.getLogger(__name__)

# table attribute of ``Tables`` -> the column that dates a row
DATED_COLUMNS = {
    "evaluation_log": "evaluated_at",
    "event_log": "created_at",
    "heartbeat_log": "created_at",
}


def prune(
    conn: Any,
    tables: db.Tables,
    older_than: dt.datetime,
    batch_size: int,
) -> dict[str, int]:
    """Delete rows dated before ``older_than`` (UTC); returns rows deleted per table."""
    cutoff = older_than.astimezone(dt.timezone.utc).replace(tzinfo=None)
    deleted: dict[str, int] = {}
    for attr, column in DATED_COLUMNS.items():
        table = getattr(tables, attr)
        total = 0
        statement = f"DELETE FROM {table} WHERE {column} < %s ORDER BY id LIMIT {int(batch_size)}"
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


def _delete_batch(conn: Any, statement: str, cutoff: dt.datetime) -> int:
    """One batch, committed: the unit that is run again after a deadlock."""
    with conn.cursor() as cur:
        count = int(cur.execute(statement, (cutoff,)))
    conn.commit()
    return count
