"""The heartbeat event of one student, its validation, and deterministic routing.

Pure functions: no database, no clock (the run start is passed in), so every branch is
testable on plain dicts. The PHP router slept 10-50 ms per simulated agent and drew
random confidences; routing here is a fixed table evaluated in order.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Mapping
from typing import Any, Callable, Optional

EVENT_TOPIC = "cron.heartbeat_30m"
EVENT_TYPES = ("periodic", "manual")
MAX_STUDENT_ID = 32


class EventError(ValueError):
    """The event of one student is invalid: that student counts as an error."""


def build_event(
    student_id: str, state: Mapping[str, Any], run_start: dt.datetime, interval_minutes: int
) -> dict[str, Any]:
    """The heartbeat event for one student (spec section 3.3), with a fresh event id."""
    return {
        "event_id": str(uuid.uuid4()),
        "topic": EVENT_TOPIC,
        "type_name": EVENT_TOPIC,
        "type": "periodic",
        "student_id": student_id,
        "interval_minutes": interval_minutes,
        "timestamp": run_start.astimezone(dt.timezone.utc).isoformat(),
        "student_state": state,
    }


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise ``EventError`` naming the first field that is wrong."""
    if event.get("type") not in EVENT_TYPES:
        raise EventError(f"event type {event.get('type')!r} is not one of {', '.join(EVENT_TYPES)}")
    interval = event.get("interval_minutes")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise EventError(f"interval_minutes {interval!r} is not a whole number >= 1")
    try:
        dt.datetime.fromisoformat(str(event.get("timestamp")))
    except ValueError:
        raise EventError(f"timestamp {event.get('timestamp')!r} is not ISO 8601") from None
    student_id = event.get("student_id")
    if not isinstance(student_id, str) or not student_id.strip():
        raise EventError("student_id is empty")
    if len(student_id) > MAX_STUDENT_ID:
        raise EventError(f"student_id is longer than {MAX_STUDENT_ID} characters")


def _fact_number(value: Any) -> Optional[float]:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _exam_within(days: int) -> Callable[[Mapping[str, Any], dt.datetime], bool]:
    def check(facts: Mapping[str, Any], now: dt.datetime) -> bool:
        raw = facts.get("exam_date")
        if raw is None:
            return False
        try:
            exam = dt.datetime.fromisoformat(str(raw))
        except ValueError:
            return False
        if exam.tzinfo is None:
            exam = exam.replace(tzinfo=dt.timezone.utc)
        return dt.timedelta(0) <= exam - now <= dt.timedelta(days=days)

    return check


# (strategy, what it tests, the test on event facts + state, agents): the first that
# holds wins.
ROUTES: tuple[
    tuple[str, str, Callable[[Mapping[str, Any], dt.datetime], bool], tuple[int, ...]], ...
] = (
    ("high_stress", "stress_level >= 8",
     lambda f, _: (_fact_number(f.get("stress_level")) or 0.0) >= 8, (8, 19, 20)),
    ("learning_dropout", "activity_status == dropped",
     lambda f, _: f.get("activity_status") == "dropped", (9, 16, 17, 19)),
    ("exam_urgent", "exam_date within 3 days", _exam_within(3), (3, 5, 12, 17)),
    ("heartbeat", "type == periodic", lambda f, _: f.get("type") == "periodic", (10, 12, 21)),
)  # fmt: skip
DEFAULT_ROUTE = ("default", (4, 5, 10))


def route_checks(event: Mapping[str, Any], now: dt.datetime) -> list[tuple[str, str, bool]]:
    """Each route's test on this event, in order: (strategy, what it tests, holds)."""
    facts = {**event, **event.get("student_state", {})}
    return [(name, what, bool(holds(facts, now))) for name, what, holds, _ in ROUTES]


def route(event: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The routing document for the event plus the student's state (spec section 3.5).

    ``strategy`` and ``agents`` (numbers) as the spec says, and the agents as the ALT42
    plugin's monitoring API counts them: ``agent_ids`` (``"agent08"``; its
    ``routing_result LIKE '%agent08%'``) and ``selected_agent``, the first of them (its
    ``JSON_EXTRACT(routing_result, '$.selected_agent')``).
    """
    facts = {**event, **event.get("student_state", {})}
    strategy, agents = next(
        ((name, chosen) for name, _, holds, chosen in ROUTES if holds(facts, now)),
        DEFAULT_ROUTE,
    )
    return routing_document(strategy, agents)


def agent_name(number: int) -> str:
    """``8`` -> ``agent08``: how the plugin names its agents (agent01 .. agent22)."""
    return f"agent{number:02d}"


@functools.cache
def routing_document(strategy: str, agents: tuple[int, ...]) -> dict[str, Any]:
    """The routing document of a route: a handful exist, each built once and shared
    (read-only: nothing changes a routing result once made)."""
    names = [agent_name(agent) for agent in agents]
    return {
        "strategy": strategy,
        "agents": list(agents),
        "agent_ids": names,
        "selected_agent": names[0],
    }
