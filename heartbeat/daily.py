"""The daily summary: per day, what each scenario, rule and agent saw, outliving the detail.

The per-student rows are kept ``[retention] detail_days`` (35 by default: what the
plugin's pages read); the months of trends an admin asks about (how often did rule R
match in March?) are kept here, ``[retention] days`` (400), in a few dozen rows a day
whatever the number of students. Each batch adds its counts to the day's rows in the
batch's own transaction (``store.batch_statements``: one more statement per batch), so a
day's summary is exactly what its detail rows say, also for a run that stopped half way
or a batch that was rolled back.

One row per (day, kind, name); ``events`` and ``matches`` mean, by kind:

* ``scenario``, its id: students evaluated (its evaluation rows); of them, those with a
  rule matched;
* ``rule``, ``scenario/rule``: times the rule was evaluated; times it matched;
* ``agent``, ``agent08``: completed events routed to it (as the plugin counts them,
  ``routing_result LIKE '%agent08%'``); of them, those where it was the selected agent;
* ``status``, ``completed`` or ``failed``: event rows with that status; 0.

The day is the run's start in the report's time zone (``[report] time_zone``, else the
database server's), so that ``report --trends`` counts the days ``report`` counts runs in.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from heartbeat import db, events, rules

#: The columns of the summary's upsert, in the order of :func:`rows`' tuples.
COLUMNS = ("day", "kind", "name", "events", "matches")
KINDS = ("scenario", "rule", "agent", "status")


@dataclass
class Tally:
    """One batch's counts, kept as cheaply as a student allows (one Counter step per
    scenario and one per event); :func:`rows` spells them out once per batch."""

    #: (scenario position, rules evaluated, ids of the rules matched) -> students
    outcomes: Counter[tuple[int, int, tuple[str, ...]]] = field(default_factory=Counter)
    #: the agents of a completed event's route -> events
    routes: Counter[tuple[int, ...]] = field(default_factory=Counter)
    #: event status -> events
    statuses: Counter[str] = field(default_factory=Counter)


def rows(book: rules.RuleBook, tally: Tally, day: dt.date) -> list[tuple[Any, ...]]:
    """The summary rows a batch adds to ``day``, in the column order of ``COLUMNS``."""
    counts: dict[tuple[str, str], list[int]] = {}

    def add(kind: str, name: str, seen: int, matched: int) -> None:
        pair = counts.setdefault((kind, name), [0, 0])
        pair[0] += seen
        pair[1] += matched

    for (position, evaluated, matched), students in tally.outcomes.items():
        scenario = book.scenarios[position]
        add("scenario", scenario.scenario_id, students, students if matched else 0)
        hits = set(matched)
        for rule in scenario.rules[:evaluated]:
            add("rule", rule_name(scenario.scenario_id, rule.rule_id), students,
                students if rule.rule_id in hits else 0)  # fmt: skip
    for agents, routed in tally.routes.items():
        for index, agent in enumerate(agents):
            add("agent", events.agent_name(agent), routed, routed if index == 0 else 0)
    for status, count in tally.statuses.items():
        add("status", status, count, 0)
    return [(day, kind, name, seen, matched) for (kind, name), (seen, matched) in counts.items()]


def rule_name(scenario_id: str, rule_id: str) -> str:
    """How a rule is named in the summary: a rule may serve several scenarios."""
    return f"{scenario_id}/{rule_id}"


def upsert_statement(tables: db.Tables) -> str:
    """The batch's statement: the counts added to the day's rows, created as needed."""
    return (
        f"INSERT INTO {tables.daily} ({', '.join(COLUMNS)})"
        f" VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        " ON DUPLICATE KEY UPDATE events = events + VALUES(events),"
        " matches = matches + VALUES(matches)"
    )


def read(conn: Any, tables: db.Tables, first: dt.date) -> list[dict[str, Any]]:
    """The summary's rows from day ``first`` on: newest day first, then by kind (in
    ``KINDS`` order) and name."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT day, kind, name, events, matches FROM {tables.daily} WHERE day >= %s",
            (first,),
        )
        found = cur.fetchall()
    conn.commit()
    order = {kind: index for index, kind in enumerate(KINDS)}
    found = sorted(found, key=lambda row: (-row[0].toordinal(), order.get(row[1], 9), row[2]))
    return [
        {
            "day": str(day),
            "kind": kind,
            "name": name,
            "events": int(seen),
            "matches": int(matched),
        }
        for day, kind, name, seen, matched in found
    ]
