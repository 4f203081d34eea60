"""``run --dry-run --explain ID``: why a student did (or did not) get a rule.

The answer to the question teachers ask ("why did this student not get S3R2?"). It
reads exactly what a run reads for the students named (``read``, the database edge),
then goes through the same steps a run takes for them, keeping every intermediate
result (``explain``, pure): the state and where each field came from, the event and its
validation, every condition of every rule with the field's value, the operator, the
expected value and the outcome, each rule's verdict, the scenario mode's choice and the
routing. The verdicts are the compiled rules' own predicates and the choice is
``rules.evaluate`` itself, so an explanation cannot disagree with a run. Nothing is
written. ``text`` renders a document for a person; ``--format json`` prints it as is.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from heartbeat import db, events, rules, students
from heartbeat.config import Config
from heartbeat.errors import ConfigError
from heartbeat.run import check_schema

NOT_ACTIVE = (
    "not active now (no recent learning session): a run would not process this student;"
    " explained as if it did"
)


@dataclass(frozen=True)
class Reading:
    """What a run would read for one student: ``student_id`` as the run names it (the
    sessions' spelling when active), its state and where each field came from."""

    student_id: str
    active: bool
    state: dict[str, Any]
    sources: dict[str, str]


def read(config: Config, named: Sequence[str], now: dt.datetime) -> list[Reading]:
    """The students named, read as a run reads them; a ``ConfigError`` (exit 2) for an
    id that is neither active nor known to the site's student or user tables."""
    settings, tables = config.heartbeat, db.Tables(config.database.prefix)
    with db.session(
        config.database, settings.query_timeout_seconds, "reading student state"
    ) as conn:
        found, collations = check_schema(conn, tables)
        with db.errors_as("reading active students"):
            active = students.active_student_ids(
                conn, tables, now, settings.window_hours, settings.open_session_hours
            )
        same = students.id_key(collations.get(tables.bare(tables.sessions)))
        spelled = {same(sid): sid for sid in active}  # the database's own equality
        ids = list(dict.fromkeys(spelled.get(same(sid), sid) for sid in named))
        sources: dict[str, dict[str, str]] = {}
        states = students.load_states(
            conn,
            tables,
            ids,
            found[tables.bare(tables.profiles)],
            students.id_keys(collations, tables),
            sources,
        )
        conn.commit()
    is_active = set(active)
    unknown = [sid for sid in ids if sid not in is_active and len(states[sid]) == 1]
    if unknown:
        raise ConfigError(
            f"--explain: no such student: {', '.join(map(repr, unknown))} is not active and"
            f" has no row in {tables.bare(tables.students)} or {tables.bare(tables.user)}"
        )
    return [Reading(sid, sid in is_active, states[sid], sources[sid]) for sid in ids]


def explain(
    reading: Reading, book: rules.RuleBook, now: dt.datetime, interval_minutes: int
) -> dict[str, Any]:
    """The explanation document of one student (pure)."""
    state = reading.state
    event = events.build_event(reading.student_id, state, now, interval_minutes)
    doc: dict[str, Any] = {
        "student_id": reading.student_id,
        "active": reading.active,
        "note": None if reading.active else NOT_ACTIVE,
        "state": [
            {"field": name, "value": value, "source": reading.sources.get(name, "")}
            for name, value in state.items()
        ],
    }
    problem: Optional[str] = None
    try:
        events.validate_event(event)
    except events.EventError as exc:
        problem = str(exc)
    doc["event"] = {
        "type": event["type"],
        "topic": event["topic"],
        "interval_minutes": event["interval_minutes"],
        "timestamp": event["timestamp"],
        "valid": problem is None,
        "problem": problem,
    }
    if problem is not None:  # a run records the student as failed and evaluates nothing
        doc["outcome"] = f"failed: {problem}"
        doc["scenarios"], doc["routing"] = [], None
        return doc
    doc["outcome"] = "completed"
    doc["scenarios"] = [_scenario(scenario, state) for scenario in book.scenarios]
    chosen = events.route(event, now)
    doc["routing"] = {
        "checks": [
            {"strategy": name, "test": test, "holds": holds}
            for name, test, holds in events.route_checks(event, now)
        ],
        "strategy": chosen["strategy"],
        "agents": chosen["agent_ids"],
    }
    return doc


def _scenario(scenario: rules.Scenario, state: Mapping[str, Any]) -> dict[str, Any]:
    result = rules.evaluate(scenario, state)
    chosen = [match["rule_id"] for match in result["matched_rules"]]
    evaluated = result["rules_evaluated"]
    explained = []
    for position, rule in enumerate(scenario.rules):
        explained.append(
            {
                "rule_id": rule.rule_id,
                "priority": rule.priority,
                "evaluated": position < evaluated,
                "matches": rule.predicate(state),
                "conditions": [_condition(part, state) for part in rule.conditions],
            }
        )
    if scenario.mode == "priority_first":
        choice = (
            f"priority_first: the first rule in list order that matches: {chosen[0]}"
            if chosen
            else "priority_first: no rule matches"
        )
    else:
        choice = (
            f"all_matching: every rule that matches, highest priority first: {', '.join(chosen)}"
            if chosen
            else "all_matching: no rule matches"
        )
    return {
        "scenario_id": scenario.scenario_id,
        "name": scenario.name,
        "mode": scenario.mode,
        "rules": explained,
        "chosen": chosen,
        "choice": choice,
    }


def _condition(part: rules.Condition | rules.AnyOf, state: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(part, rules.AnyOf):
        return {
            "any_of": [_condition(member, state) for member in part.conditions],
            "result": part.predicate(state),
        }
    return {
        "field": part.field,
        "present": part.field in state,
        "value": state.get(part.field),
        "operator": part.operator,
        "expected": part.value,
        "result": part.predicate(state),
    }


# --------------------------------------------------------------------------- text


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _yes(flag: bool) -> str:
    return "true" if flag else "false"


def text(doc: Mapping[str, Any]) -> str:
    """One student's explanation for a person, as indented lines."""
    lines = [f"Student {doc['student_id']}" + ("" if doc["active"] else f": {doc['note']}")]
    lines.append("  State read:")
    width = max(len(item["field"]) for item in doc["state"])
    for item in doc["state"]:
        lines.append(f"    {item['field']:<{width}} = {_shown(item['value'])}  ({item['source']})")
    event = doc["event"]
    validity = "valid" if event["valid"] else f"INVALID: {event['problem']}"
    lines.append(
        f"  Event: {event['type']} {event['topic']}, every {event['interval_minutes']} min,"
        f" at {event['timestamp']}: {validity}"
    )
    if not event["valid"]:
        lines.append(f"  Outcome: {doc['outcome']} (a run records this student as failed)")
        return "\n".join(lines)
    for scenario in doc["scenarios"]:
        lines.append(
            f"  Scenario {scenario['scenario_id']} ({scenario['name']}, {scenario['mode']}):"
        )
        for rule in scenario["rules"]:
            verdict = "MATCHES" if rule["matches"] else "does not match"
            if not rule["evaluated"]:
                verdict += f" (not evaluated: {scenario['chosen'][0]} matched first)"
            lines.append(f"    {rule['rule_id']} (priority {rule['priority']}): {verdict}")
            lines += [f"      {line}" for part in rule["conditions"] for line in _lines(part)]
        lines.append(f"    Chosen: {scenario['choice']}")
    routing = doc["routing"]
    tried = "; ".join(
        f"{check['strategy']} ({check['test']}): {_yes(check['holds'])}"
        for check in routing["checks"]
    )
    lines.append(f"  Routing: {tried}")
    lines.append(
        f"    Chosen: {routing['strategy']} -> {', '.join(routing['agents'])}"
        + ("" if any(c["holds"] for c in routing["checks"]) else " (no route holds: the default)")
    )
    return "\n".join(lines)


def _lines(part: Mapping[str, Any]) -> list[str]:
    if "any_of" in part:
        head = f"any of: {_yes(part['result'])}"
        return [head] + [f"  {line}" for member in part["any_of"] for line in _lines(member)]
    value = _shown(part["value"]) if part["present"] else "(missing)"
    return [
        f"{part['field']} = {value}; {part['operator']} {_shown(part['expected'])}:"
        f" {_yes(part['result'])}"
    ]
