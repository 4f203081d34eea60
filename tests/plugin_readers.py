"""The questions the ALT42 plugin's monitoring pages ask of the event table.

Written from the facts of ``api/monitoring/agent_status_api.php`` and
``agent_status_sse.php`` (esuai02/augmented_teacher; the plugin's SQL is not copied):
which rows each reads (an agent's rows match its id in ``event_type`` or
``routing_result`` by LIKE, or the JSON-encoded id by ``JSON_EXTRACT`` of ``agent_id``
or ``selected_agent``), over which window (1 hour, 24 hours, 7 days, 30 days, or the
newest rows whatever their age), what it counts, averages and lists. Used by the tests
that hold the readers' answers equal across a change of the tables, and by the footprint
benchmark (its dashboard figure).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

AGENTS = tuple(f"agent{number:02d}" for number in range(1, 23))

#: An agent's rows, as every per-agent question of the plugin selects them.
AGENT_ROWS = (
    "(event_type LIKE %s OR routing_result LIKE %s"
    " OR JSON_EXTRACT(routing_result, '$.agent_id') = %s"
    " OR JSON_EXTRACT(routing_result, '$.selected_agent') = %s)"
)
_DURATION = "TIMESTAMPDIFF(MICROSECOND, created_at, processed_at) / 1000"
_COUNTS = (
    "COUNT(*), SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END)"
)

#: The per-agent statistics of the dashboard: counts, average duration, last run, 7 days.
AGENT_STATS = (
    f"SELECT {_COUNTS}, AVG(CASE WHEN status = 'completed' AND processed_at IS NOT NULL"
    f" THEN {_DURATION} ELSE NULL END), MAX(created_at) FROM {{table}} WHERE {AGENT_ROWS}"
    " AND created_at >= DATE_SUB(NOW(), INTERVAL 7 DAY)"
)

#: (name, SQL with ``{table}``) of the questions asked once per agent. A name that says
#: "newest" reads the newest rows whatever their age (no window).
PER_AGENT = (
    ("stats 7 days", AGENT_STATS),
    (
        "newest error",
        "SELECT id, event_type, student_id, status, created_at, routing_result FROM {table}"
        f" WHERE {AGENT_ROWS} AND status = 'failed' ORDER BY created_at DESC LIMIT 1",
    ),
    (
        "log listing, newest 100",
        "SELECT id, event_id, event_type, student_id, status, created_at,"
        f" CASE WHEN processed_at IS NOT NULL THEN {_DURATION} ELSE NULL END"
        f" FROM {{table}} WHERE {AGENT_ROWS} ORDER BY created_at DESC LIMIT 100",
    ),
    (
        "per day, 7 days",
        f"SELECT DATE(created_at) AS day, {_COUNTS},"
        f" AVG(CASE WHEN status = 'completed' AND processed_at IS NOT NULL THEN {_DURATION}"
        f" ELSE NULL END), MAX(CASE WHEN status = 'completed' AND processed_at IS NOT NULL"
        f" THEN {_DURATION} ELSE NULL END) FROM {{table}} WHERE {AGENT_ROWS}"
        " AND created_at >= DATE_SUB(NOW(), INTERVAL 7 DAY) GROUP BY DATE(created_at)"
        " ORDER BY day DESC",
    ),
    (
        "errors, newest 20",
        "SELECT id, event_id, event_type, student_id, status, routing_result, created_at"
        f" FROM {{table}} WHERE {AGENT_ROWS} AND status = 'failed'"
        " ORDER BY created_at DESC LIMIT 20",
    ),
    (
        "events, newest 100",
        "SELECT id, event_id, event_type, student_id, scenarios_evaluated, status, created_at"
        f" FROM {{table}} WHERE {AGENT_ROWS} ORDER BY created_at DESC LIMIT 100",
    ),
    (
        "events with their results, newest 50",
        "SELECT id, event_id, event_type, student_id, scenarios_evaluated, scenario_results,"
        " routing_result, priority, status, created_at, processed_at"
        f" FROM {{table}} WHERE {AGENT_ROWS} ORDER BY created_at DESC LIMIT 50",
    ),
    (
        "live: new in the last hour",
        f"SELECT {_COUNTS}, MAX(created_at) FROM {{table}} WHERE {AGENT_ROWS} AND id > 0"
        " AND created_at >= DATE_SUB(NOW(), INTERVAL 1 HOUR)",
    ),
    ("live: the newest id", f"SELECT MAX(id) FROM {{table}} WHERE {AGENT_ROWS}"),
)

#: The windows of the statistics page (the longest any reader uses: 30 days).
WINDOWS = ("INTERVAL 1 HOUR", "INTERVAL 24 HOUR", "INTERVAL 7 DAY", "INTERVAL 30 DAY")

#: (name, SQL with ``{table}`` and ``{window}``) of the questions asked once per window.
PER_WINDOW = (
    (
        "totals",
        f"SELECT {_COUNTS}, AVG(CASE WHEN status = 'completed' THEN {_DURATION} ELSE NULL END)"
        " FROM {table} WHERE created_at >= DATE_SUB(NOW(), {window})",
    ),
    (
        "per event type",
        f"SELECT event_type, {_COUNTS} FROM {{table}}"
        " WHERE created_at >= DATE_SUB(NOW(), {window})"
        " GROUP BY event_type ORDER BY 2 DESC LIMIT 20",
    ),
)

#: The timeline (its hours are the page's choice: 1 and 24 here).
TIMELINE = (
    "SELECT id, event_id, event_type, student_id, status, priority, created_at FROM {table}"
    " WHERE created_at >= DATE_SUB(NOW(), INTERVAL %s HOUR) ORDER BY created_at DESC LIMIT 500"
)


def agent_params(agent: str) -> tuple[str, str, str, str]:
    """The four parameters of ``AGENT_ROWS``: the pattern twice, the JSON-encoded id twice
    (as PHP's ``json_encode`` gives it)."""
    return (f"%{agent}%", f"%{agent}%", f'"{agent}"', f'"{agent}"')


def questions(table: str) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
    """Every question the pages ask of ``table``: (what, SQL, parameters)."""
    for agent in AGENTS:
        for name, sql in PER_AGENT:
            yield f"{agent}: {name}", sql.format(table=table), agent_params(agent)
    for window in WINDOWS:
        for name, sql in PER_WINDOW:
            yield f"{name}, {window}", sql.format(table=table, window=window), ()
    for hours in (1, 24):
        yield f"timeline, {hours} h", TIMELINE.format(table=table), (hours,)


def answers(cursor: Any, table: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each question's answer: the rows the server returns, as a sorted list.

    The pages order by ``created_at`` alone, which every event of one run shares: the
    order within such a tie is the server's plan's (an index range on a big table, a
    filesort on a small one; a rebuilt table's statistics change it), not an answer. So
    the rows are compared as a set, and where a LIMIT cuts the oldest tie of a listing,
    which of its rows made it in is the plan's too: that tie counts by its time and size."""
    found = {}
    for what, sql, params in questions(table):
        cursor.execute(sql, params)
        rows = [tuple(row) for row in cursor.fetchall()]
        names = [str(column[0]).lower() for column in cursor.description or ()]
        if " LIMIT " in sql and "created_at" in names and rows:
            at = names.index("created_at")
            oldest = min(row[at] for row in rows)
            cut = [row for row in rows if row[at] == oldest]
            rows = [row for row in rows if row[at] != oldest] + [("tie", oldest, len(cut))]
        found[what] = sorted(rows, key=repr)
    return found
