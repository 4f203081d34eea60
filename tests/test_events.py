"""Event building, validation and deterministic routing (pure: no database)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from heartbeat.events import EventError, build_event, route, validate_event

RUN_START = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)


def event(**changes: Any) -> dict[str, Any]:
    built = build_event("1001", {"student_id": "1001"}, RUN_START, 30)
    built.update(changes)
    return built


def test_event_fields() -> None:
    built = event()
    assert built["topic"] == built["type_name"] == "cron.heartbeat_30m"
    assert built["type"] == "periodic"
    assert built["interval_minutes"] == 30
    assert built["timestamp"] == "2026-11-27T12:00:00+00:00"
    assert built["student_state"] == {"student_id": "1001"}
    assert uuid.UUID(built["event_id"]).version == 4
    assert built["event_id"] != event()["event_id"]
    validate_event(built)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"type": "cron"}, "event type"),
        ({"interval_minutes": 0}, "interval_minutes"),
        ({"interval_minutes": "30"}, "interval_minutes"),
        ({"interval_minutes": True}, "interval_minutes"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"student_id": ""}, "student_id is empty"),
        ({"student_id": "   "}, "student_id is empty"),
        ({"student_id": 1001}, "student_id is empty"),
        ({"student_id": "x" * 33}, "longer than 32"),
    ],
)
def test_invalid_events(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(EventError, match=fragment):
        validate_event(event(**changes))


def test_manual_type_and_32_character_id_are_valid() -> None:
    validate_event(event(type="manual", student_id="x" * 32))


@pytest.mark.parametrize(
    ("state", "extra", "strategy", "agents"),
    [
        ({"stress_level": 8.0}, {}, "high_stress", [8, 19, 20]),
        ({"stress_level": 9.5, "activity_status": "dropped"}, {}, "high_stress", [8, 19, 20]),
        (
            {"stress_level": 7.9, "activity_status": "dropped"},
            {},
            "learning_dropout",
            [9, 16, 17, 19],
        ),
        ({"exam_date": "2026-11-29T09:00:00+00:00"}, {}, "exam_urgent", [3, 5, 12, 17]),
        ({"exam_date": "2026-12-05"}, {}, "heartbeat", [10, 12, 21]),
        ({"exam_date": "2026-11-20"}, {}, "heartbeat", [10, 12, 21]),
        ({}, {}, "heartbeat", [10, 12, 21]),
        ({}, {"type": "manual"}, "default", [4, 5, 10]),
    ],
)
def test_routing_first_strategy_that_holds(
    state: dict[str, Any], extra: dict[str, Any], strategy: str, agents: list[int]
) -> None:
    built = {**build_event("7", state, RUN_START, 30), **extra}
    names = [f"agent{agent:02d}" for agent in agents]
    assert route(built, RUN_START) == {
        "strategy": strategy,
        "agents": agents,
        "agent_ids": names,
        "selected_agent": names[0],
    }
    assert route(built, RUN_START) == route(built, RUN_START)  # deterministic
