"""The rule book: loading, validation, compilation and evaluation.

The rule book is data (``rulebook.json`` shipped in the package, or a file the operator
names). It is validated once when loaded and compiled into plain Python closures, so
that evaluating 5 scenarios for 100,000 students does no parsing, no dict look-ups of
operator names and no regex compilation on the hot path.

Null semantics (spec section 4): a missing or ``None`` field makes every comparison
false, except ``== null`` (true) and ``!= null`` (false).
"""

from __future__ import annotations

import json
import math
import operator
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Optional

from heartbeat.errors import ConfigError

Predicate = Callable[[Mapping[str, Any]], bool]

MODES = ("priority_first", "all_matching")
OPERATORS = (
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "matches",
)
SHIPPED_RULE_BOOK = "rulebook.json"
#: A rule's name in the daily summary is ``scenario/rule`` in 100 characters.
MAX_RULE_ID = 80


@dataclass(frozen=True)
class Condition:
    """One condition of a rule as written (for ``run --explain``), with its compiled
    predicate: the very function the rule's predicate is made of."""

    field: str
    operator: str
    value: Any
    predicate: Predicate


@dataclass(frozen=True)
class AnyOf:
    """An OR group: true when one of its conditions is."""

    conditions: tuple[Condition, ...]
    predicate: Predicate


@dataclass(frozen=True)
class Rule:
    """One compiled rule: its metadata and the predicate over a student's state (all of
    ``conditions``, compiled into one function)."""

    rule_id: str
    priority: int
    confidence: float
    action: tuple[str, ...]
    rationale: str
    predicate: Predicate
    conditions: tuple[Condition | AnyOf, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The ``matched_rules`` entry written to the evaluation log."""
        return {
            "rule_id": self.rule_id,
            "priority": self.priority,
            "action": list(self.action),
            "confidence": self.confidence,
            "rationale": self.rationale,
        }


@dataclass(frozen=True)
class Scenario:
    """A scenario: its rules in evaluation order and how matches are picked."""

    scenario_id: str
    name: str
    mode: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class RuleBook:
    """The whole compiled rule book; ``source`` names the file it came from."""

    source: str
    scenarios: tuple[Scenario, ...]


# --------------------------------------------------------------------------- operators


def _numeric(value: Any) -> Optional[float]:
    """A float for numbers and numeric strings; None for anything else (bools included)."""
    kind = type(value)
    if kind is float:  # the hot path: state values are floats
        return value  # type: ignore[no-any-return]
    if kind is str:
        return _string_number(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _parse_number(value)
    try:  # int, float, decimal.Decimal; an int beyond float's range is no usable number
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _parse_number(text: str) -> Optional[float]:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# Text values repeat across students ("neutral", "불안", ...) and float() of a word
# raises, which is slow: remember the answers (bounded).
_TEXT_NUMBERS: dict[str, Optional[float]] = {}
_TEXT_NUMBERS_MAX = 10_000


def _string_number(text: str) -> Optional[float]:
    try:
        return _TEXT_NUMBERS[text]
    except KeyError:
        pass
    number = _parse_number(text)
    if len(_TEXT_NUMBERS) >= _TEXT_NUMBERS_MAX:
        _TEXT_NUMBERS.clear()
    _TEXT_NUMBERS[text] = number
    return number


def _equal(left: Any, right: Any) -> bool:
    """Equality that treats 3, 3.0, "3" and Decimal("3.00") alike, as the PHP job did."""
    left_number, right_number = _numeric(left), _numeric(right)
    if left_number is not None and right_number is not None:
        return left_number == right_number
    return bool(left == right)


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, (list, tuple)):
        return any(_equal(item, right) for item in left)
    return str(right) in str(left)


def _all_of(parts: Sequence[Predicate]) -> Predicate:
    """``all(part(state) for part in parts)`` without a generator per call."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda state: bool(first(state) and second(state))
    if len(parts) == 3:
        first, second, third = parts
        return lambda state: bool(first(state) and second(state) and third(state))
    return lambda state: all(part(state) for part in parts)


def _any_of(parts: Sequence[Predicate]) -> Predicate:
    """``any(part(state) for part in parts)`` without a generator per call."""
    if len(parts) == 2:
        first, second = parts
        return lambda state: bool(first(state) or second(state))
    return lambda state: any(part(state) for part in parts)


_ORDER: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare_to(field: str, op: str, value: Any) -> Predicate:
    """A comparison with a constant (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``), the
    constant's number worked out once: equality as ``_equal`` says it, an order between
    two numbers only; a missing or null field is false."""
    right = _numeric(value)
    if op in _ORDER:
        compare = _ORDER[op]

        def ordered(state: Mapping[str, Any]) -> bool:
            left = state.get(field)
            if left is None or right is None:
                return False
            number = _numeric(left)
            return number is not None and compare(number, right)

        return ordered

    def equal(left: Any) -> bool:  # _equal(left, value)
        if right is not None:
            number = _numeric(left)
            if number is not None:
                return number == right
        return bool(left == value)

    if op == "==":
        return lambda state: (left := state.get(field)) is not None and equal(left)
    return lambda state: (left := state.get(field)) is not None and not equal(left)


def _member_of(items: tuple[Any, ...]) -> Callable[[Any], bool]:
    """``any(_equal(left, item) for item in items)``; a set look-up for text in words."""
    if all(type(item) is str and _numeric(item) is None for item in items):
        words = frozenset(items)

        def member(left: Any) -> bool:
            if type(left) is str:  # _equal falls back to ==, and == on str is set membership
                return left in words
            return any(_equal(left, item) for item in items)

        return member
    return lambda left: any(_equal(left, item) for item in items)


# --------------------------------------------------------------------------- loading


class _Loader:
    """Validates the raw JSON and compiles it; every error names the file and the place."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {problem}")

    def condition(self, raw: Any, where: str, allow_or: bool = True) -> Condition | AnyOf:
        if not isinstance(raw, dict):
            raise self.fail(where, "a condition must be an object with field, operator, value")
        if "OR" in raw:
            if not allow_or:
                raise self.fail(where, "an OR group cannot contain another OR group")
            if set(raw) != {"OR"}:
                raise self.fail(where, "an OR group holds only the key 'OR'")
            members = raw["OR"]
            if not isinstance(members, list) or len(members) < 2:
                raise self.fail(where, "'OR' must list at least two conditions")
            parts = tuple(
                self.condition(member, f"{where}.OR[{index}]", allow_or=False)
                for index, member in enumerate(members)
            )
            singles = tuple(part for part in parts if isinstance(part, Condition))
            return AnyOf(singles, _any_of([part.predicate for part in singles]))
        missing = {"field", "operator", "value"} - set(raw)
        if missing:
            raise self.fail(where, f"missing {', '.join(sorted(missing))}")
        extra = set(raw) - {"field", "operator", "value"}
        if extra:
            raise self.fail(where, f"unknown key(s) {', '.join(sorted(extra))}")
        field, operator, value = raw["field"], raw["operator"], raw["value"]
        if not isinstance(field, str) or not field:
            raise self.fail(where, "'field' must be a non-empty string")
        if operator not in OPERATORS:
            raise self.fail(
                where, f"unknown operator {operator!r}; use one of {', '.join(OPERATORS)}"
            )
        return Condition(field, operator, value, self._compile(field, operator, value, where))

    def _compile(  # noqa: PLR0911 - one compiled form per kind of operator
        self, field: str, operator: str, value: Any, where: str
    ) -> Predicate:
        if value is None:
            if operator not in ("==", "!="):
                raise self.fail(where, f"null can only be compared with == or !=, not {operator}")
            if operator == "==":
                return lambda state: state.get(field) is None
            return lambda state: state.get(field) is not None
        if operator in ("in", "not_in"):
            if not isinstance(value, list):
                raise self.fail(where, f"{operator} needs a list value")
            member = _member_of(tuple(value))
            if operator == "in":
                return lambda state: (left := state.get(field)) is not None and member(left)
            return lambda state: (left := state.get(field)) is not None and not member(left)
        if operator == "matches":
            if not isinstance(value, str):
                raise self.fail(where, "matches needs a regular expression string")
            try:
                pattern = re.compile(value)
            except (re.error, OverflowError, RecursionError) as exc:  # e.g. a{9999999999}
                raise self.fail(where, f"invalid regular expression {value!r}: {exc}") from None
            return lambda state: (
                (left := state.get(field)) is not None and pattern.search(str(left)) is not None
            )
        if operator in ("<", "<=", ">", ">=") and _numeric(value) is None:
            raise self.fail(where, f"{operator} needs a number, not {value!r}")
        if isinstance(value, (dict, list)):
            raise self.fail(where, f"{operator} needs a single value, not {type(value).__name__}")
        if operator in ("==", "!=", "<", "<=", ">", ">="):
            return _compare_to(field, operator, value)
        wanted = operator == "contains"  # else not_contains
        return lambda state: (
            (left := state.get(field)) is not None and _contains(left, value) is wanted
        )

    def rule(self, rule_id: str, raw: Any) -> Rule:
        where = f"rules.{rule_id}"
        if not 0 < len(rule_id) <= MAX_RULE_ID:
            raise self.fail(where, f"a rule id is 1 to {MAX_RULE_ID} characters")
        if not isinstance(raw, dict):
            raise self.fail(where, "a rule must be an object")
        required = {"priority", "confidence", "action", "rationale", "conditions"}
        missing = required - set(raw)
        if missing:
            raise self.fail(where, f"missing {', '.join(sorted(missing))}")
        extra = set(raw) - required - {"description"}
        if extra:
            raise self.fail(where, f"unknown key(s) {', '.join(sorted(extra))}")
        priority, confidence = raw["priority"], raw["confidence"]
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
            raise self.fail(where, "priority must be a whole number from 0 to 1000")
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, (int, float))
            or not 0 <= confidence <= 1
        ):
            raise self.fail(where, "confidence must be a number from 0 to 1")
        action = raw["action"]
        if not isinstance(action, list) or not all(isinstance(a, str) for a in action):
            raise self.fail(where, "action must be a list of strings")
        if not isinstance(raw["rationale"], str):
            raise self.fail(where, "rationale must be a string")
        conditions = raw["conditions"]
        if not isinstance(conditions, list) or not conditions:
            raise self.fail(where, "conditions must be a non-empty list")
        parts = tuple(
            self.condition(item, f"{where}.conditions[{index}]")
            for index, item in enumerate(conditions)
        )
        return Rule(
            rule_id=rule_id,
            priority=priority,
            confidence=float(confidence),
            action=tuple(action),
            rationale=raw["rationale"],
            predicate=_all_of([part.predicate for part in parts]),
            conditions=parts,
        )

    def book(self, raw: Any) -> RuleBook:
        if not isinstance(raw, dict) or set(raw) - {"version", "scenarios", "rules"}:
            raise self.fail("top level", "expected an object with version, scenarios and rules")
        if raw.get("version") != 1:
            raise self.fail("version", "must be 1")
        raw_rules, raw_scenarios = raw.get("rules"), raw.get("scenarios")
        if not isinstance(raw_rules, dict) or not raw_rules:
            raise self.fail("rules", "must be a non-empty object of rule id -> rule")
        if not isinstance(raw_scenarios, list) or not raw_scenarios:
            raise self.fail("scenarios", "must be a non-empty list")
        rules = {rule_id: self.rule(rule_id, body) for rule_id, body in raw_rules.items()}
        scenarios, seen = [], set()
        for index, item in enumerate(raw_scenarios):
            where = f"scenarios[{index}]"
            if not isinstance(item, dict) or set(item) != {"id", "name", "mode", "rules"}:
                raise self.fail(where, "a scenario needs exactly id, name, mode and rules")
            scenario_id = item["id"]
            if not isinstance(scenario_id, str) or not 0 < len(scenario_id) <= 10:
                raise self.fail(where, "id must be a string of 1 to 10 characters")
            if scenario_id in seen:
                raise self.fail(where, f"duplicate scenario id {scenario_id!r}")
            seen.add(scenario_id)
            if item["mode"] not in MODES:
                raise self.fail(where, f"mode must be one of {', '.join(MODES)}")
            ids = item["rules"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise self.fail(where, "rules must be a list of rule ids")
            unknown = [i for i in ids if i not in rules]
            if unknown:
                raise self.fail(where, f"unknown rule id(s) {', '.join(unknown)}")
            if len(set(ids)) != len(ids):
                raise self.fail(where, "a rule id is listed twice")
            scenarios.append(
                Scenario(scenario_id, str(item["name"]), item["mode"], tuple(rules[i] for i in ids))
            )
        return RuleBook(self.source, tuple(scenarios))


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_rule_book(text: str, source: str) -> RuleBook:
    """Validate and compile rule-book JSON text; ``source`` names it in errors."""
    try:
        raw = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{source}: not a valid rule book (JSON): {exc}") from None
    return _Loader(source).book(raw)


def load_rule_book(path: Optional[str] = None) -> RuleBook:
    """Load the operator's rule book at ``path``, or the one shipped with the package."""
    if path is None:
        shipped = resources.files("heartbeat").joinpath(SHIPPED_RULE_BOOK)
        return parse_rule_book(
            shipped.read_text(encoding="utf-8"), f"(shipped) {SHIPPED_RULE_BOOK}"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(4 * 1024 * 1024 + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: rule book not found; fix [heartbeat] rules") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read rule book: {exc}") from None
    if len(text) > 4 * 1024 * 1024:
        raise ConfigError(f"{path}: rule book larger than 4 MiB; is it the right file?")
    return parse_rule_book(text, path)


# --------------------------------------------------------------------------- evaluation


def evaluate(scenario: Scenario, state: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one scenario on one student's state: the ``evaluation_result`` document.

    ``priority_first`` stops at the first matching rule in list order;
    ``all_matching`` keeps every match, highest priority first (stable for ties).
    """
    started = time.perf_counter()
    matched: list[Rule] = []
    evaluated = 0
    for rule in scenario.rules:
        evaluated += 1
        if rule.predicate(state):
            matched.append(rule)
            if scenario.mode == "priority_first":
                break
    if scenario.mode == "all_matching":
        matched.sort(key=lambda rule: -rule.priority)
    return {
        "scenario_id": scenario.scenario_id,
        "rules_evaluated": evaluated,
        "rules_matched": len(matched),
        "matched_rules": [rule.summary() for rule in matched],
        "evaluation_mode": scenario.mode,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }


def rule_ids(book: RuleBook) -> Sequence[str]:
    """Every rule id referenced by a scenario, in order (used by ``check``)."""
    return [rule.rule_id for scenario in book.scenarios for rule in scenario.rules]
