"""Evaluating one batch: the students' states in, the rows of the two log tables out.

Pure: no database and no output; the clock is passed in. Each student gets a heartbeat
event (``events``), five scenario evaluations (``rules``) and a route; one student whose
data or event is wrong is recorded as a ``failed`` event row and counted, and the batch
goes on. The rows are tuples in the column order of ``schema.EVALUATION_COLUMNS`` and
``schema.EVENT_COLUMNS``, for the storing module's ``executemany``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from heartbeat import daily, events, rules

PRIORITY = 2
log = logging.getLogger(__name__)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def db_time(moment: dt.datetime) -> str:
    """A UTC moment as the text a TIMESTAMP column takes (sessions run at +00:00)."""
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")


@dataclass
class BatchRows:
    """The rows one batch writes, and its counts."""

    evaluations: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    daily: list[tuple[Any, ...]] = field(default_factory=list)  # the day's summary counts
    processed: int = 0
    failed: int = 0
    sent: int = 0  # length of the SQL that wrote them, once written

    @property
    def row_count(self) -> int:
        return len(self.evaluations) + len(self.events)


class Json:
    """A JSON text in pieces: the even pieces repeat from student to student, the odd
    ones are numbers (``duration_ms``, then closing braces). ``text`` is the document;
    the pieces let the storing module escape what repeats once per run. Equal only to
    itself (each document is written once; the storing module keys nothing by text)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Json({self.text!r})"


#: What a scenario's evaluation came to: (its position, rules evaluated, ids of the
#: rules matched). The documents are cached by it and the daily summary counts it.
Outcome = tuple[int, int, tuple[str, ...]]


def outcome(position: int, result: dict[str, Any]) -> Outcome:
    return (
        position,
        result["rules_evaluated"],
        tuple([match["rule_id"] for match in result["matched_rules"]]),
    )


class DocumentCache:
    """The JSON texts of the documents, built once per run where they repeat.

    An ``evaluation_result`` differs between students only in the rules evaluated and
    matched and in ``duration_ms``, its last key: its text up to ``"duration_ms":`` is
    kept per (scenario, rules evaluated, rules matched) and the duration appended as
    ``json.dumps`` writes a float. Routing documents (a handful per run) are kept whole,
    as text: the storing module escapes a repeating text once.
    The text is exactly ``json.dumps`` of each document (bench: about 2 s of the 100,000
    students' run without it).
    """

    _TAIL = '"duration_ms":0.0}'

    def __init__(self, book: rules.RuleBook) -> None:
        # scenario position -> ('{"S0":' or ',"S1":'), as in scenario_results
        self._keys = [
            ("{" if index == 0 else ",") + to_json(scenario.scenario_id) + ":"
            for index, scenario in enumerate(book.scenarios)
        ]
        self._heads: dict[Outcome, Optional[tuple[str, str]]] = {}
        self._routes: dict[tuple[str, tuple[int, ...]], str] = {}

    def result(self, key: Outcome, result: dict[str, Any]) -> tuple[Json, tuple[str, str]]:
        """The ``evaluation_result`` of the scenario whose outcome is ``key``, and its
        piece of the event's ``scenario_results``: (its key and the same head, the tail)."""
        position = key[0]
        if key not in self._heads:
            text = to_json({**result, "duration_ms": 0.0})
            # Only when duration_ms is the last key (it is, see rules.evaluate).
            head = text[: -len("0.0}")] if text.endswith(self._TAIL) else None
            self._heads[key] = None if head is None else (head, self._keys[position] + head)
        cached = self._heads[key]
        if cached is None:
            text = to_json(result)
            return Json(text), (self._keys[position] + text, "")
        tail = f"{result['duration_ms']!r}}}"
        return Json(cached[0], tail), (cached[1], tail)

    @staticmethod
    def results(pieces: list[tuple[str, str]]) -> Json:
        """The event's ``scenario_results`` from the pieces ``result`` returned."""
        parts = [part for piece in pieces for part in piece]
        parts[-1] += "}"
        return Json(*parts)

    def routing(self, routing: dict[str, Any]) -> str:
        key = (routing["strategy"], tuple(routing["agents"]))
        text = self._routes.get(key)
        if text is None:
            text = self._routes[key] = to_json(routing)
        return text


def evaluate_batch(
    student_ids: Sequence[str],
    states: dict[str, dict[str, Any]],
    book: rules.RuleBook,
    cache: DocumentCache,
    run_id: str,
    run_start: dt.datetime,
    interval_minutes: int,
    clock: Callable[[], dt.datetime],
    day: dt.date,
) -> BatchRows:
    """Evaluate every student of a batch; one student's failure never stops the others.

    Each event is created at the run's start (its ``timestamp``) and processed when its
    student is evaluated, so ``processed_at - created_at`` says how long the run took
    to reach that student. The batch's counts go to the summary of ``day`` (``daily``).
    """
    created = db_time(run_start)
    rows = BatchRows()
    tally = daily.Tally()
    verbose = log.isEnabledFor(logging.DEBUG)
    for student_id in student_ids:
        state = states.get(student_id, {"student_id": student_id})
        event = events.build_event(student_id, state, run_start, interval_minutes)
        event_id = event["event_id"]
        now = clock()
        stamp = db_time(now)
        try:
            events.validate_event(event)
            results = [rules.evaluate(scenario, state) for scenario in book.scenarios]
            routing = events.route(event, now)
        # One student's failure (invalid event, unexpected data) must not stop the
        # batch: it is recorded as a failed event row and counted as an error.
        except Exception as exc:  # noqa: BLE001
            rows.failed += 1
            message = f"{type(exc).__name__}: {exc}"
            rows.events.append(
                (event_id, events.EVENT_TOPIC, student_id[: events.MAX_STUDENT_ID], 0,
                 to_json({"error": message}), None, PRIORITY, "failed", stamp, created, run_id)
            )  # fmt: skip
            tally.statuses["failed"] += 1
            if verbose:
                log.debug("student %s: FAILED: %s", student_id, message)
            continue
        pieces = []
        for position, (scenario, result) in enumerate(zip(book.scenarios, results)):
            key = outcome(position, result)
            tally.outcomes[key] += 1
            document, piece = cache.result(key, result)
            rows.evaluations.append(
                (event_id, scenario.scenario_id, student_id, len(scenario.rules), scenario.mode,
                 document, stamp)
            )  # fmt: skip
            pieces.append(piece)
        rows.events.append(
            (event_id, events.EVENT_TOPIC, student_id, len(book.scenarios),
             cache.results(pieces), cache.routing(routing), PRIORITY, "completed",
             stamp, created, run_id)
        )  # fmt: skip
        tally.routes[tuple(routing["agents"])] += 1
        tally.statuses["completed"] += 1
        rows.processed += 1
        if verbose:
            matched = [m["rule_id"] for r in results for m in r["matched_rules"]]
            log.debug(
                "student %s: %d rule(s) matched (%s), route %s",
                student_id,
                len(matched),
                ", ".join(matched) or "none",
                routing["strategy"],
            )
    rows.daily = daily.rows(book, tally, day)
    return rows
