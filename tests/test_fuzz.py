"""Property tests (hypothesis) for the loaders an operator feeds: the rule book, the INI
file and Moodle's config.php read from disk.

A loader may only ever accept the input or refuse it with ``ConfigError`` (one line,
exit 2); any other exception would reach cron as a traceback. Valid rule books, however
generated, must evaluate on any student state without raising, and the two evaluation
modes must agree with each other. (The config.php parser's own grammar fuzzing is in
``tests/test_moodle_config.py``; here it is fed raw bytes through the file reader.)
"""

from __future__ import annotations

import decimal
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from heartbeat.config import load_config
from heartbeat.errors import ConfigError
from heartbeat.moodle_config import read_moodle_config
from heartbeat.rules import OPERATORS, RuleBook, evaluate, parse_rule_book

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Numbers a JSON file can hold, including the awkward ones: beyond float range, NaN,
# infinities (Python's json accepts NaN and Infinity literals).
AWKWARD_NUMBERS = st.sampled_from(
    [10**400, -(10**400), 1e308, float("nan"), float("inf"), -0.0, 2**63, 0.1]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    AWKWARD_NUMBERS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(["stress_level", "emotion_state", "mbti_type", "x", "", "OR"])


def _parse(text: str) -> RuleBook | None:
    """Parse; a ConfigError is a fine answer and must be one line naming the source."""
    try:
        return parse_rule_book(text, "fuzz.json")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.json: ")
        assert "\n" not in message
        return None


# --------------------------------------------------------------------------- hostile input


@FUZZ
@given(st.text(max_size=300))
@example('{"version": 1, "scenarios": [], "rules": {"a": 1, "a": 2}}')
@example("[" * 5000)
@example('{"version": 1e999}')
@example("9" * 5000)  # beyond int's digit limit
def test_random_text_is_accepted_or_refused_with_config_error(text: str) -> None:
    assert _parse(text) is None  # no random text is a whole valid rule book


@FUZZ
@given(JSONISH)
def test_any_json_value_is_refused_with_config_error(raw: Any) -> None:
    assert _parse(json.dumps(raw)) is None  # refused, in one line naming the source


def _condition() -> st.SearchStrategy[Any]:
    """Mostly well-formed conditions with hostile values and operators mixed in."""
    single = st.fixed_dictionaries(
        {
            "field": st.one_of(FIELDS, SCALARS),
            "operator": st.one_of(st.sampled_from(OPERATORS), st.sampled_from(["=~", "IN", ""])),
            "value": st.one_of(
                SCALARS,
                st.lists(SCALARS, max_size=3),
                st.sampled_from(["(", "a{4294967296}", "(" * 3000 + ")" * 3000, "[z-a]"]),
            ),
        }
    )
    mangled = st.one_of(single, JSONISH, single.map(lambda c: {**c, "extra": 1}))
    return st.one_of(
        mangled,
        st.fixed_dictionaries({"OR": st.lists(mangled, max_size=3)}),
        st.fixed_dictionaries(
            {"OR": st.lists(st.fixed_dictionaries({"OR": st.lists(single)}), max_size=2)}
        ),
    )


def _rule() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "priority": st.one_of(st.integers(-5, 2000), SCALARS),
            "confidence": st.one_of(st.floats(-1, 2), SCALARS),
            "action": st.one_of(st.lists(st.text(max_size=5), max_size=2), SCALARS),
            "rationale": st.one_of(st.text(max_size=10), SCALARS),
            "conditions": st.one_of(st.lists(_condition(), max_size=3), SCALARS),
        },
        optional={"description": SCALARS, "unknown": SCALARS},
    )


@st.composite
def near_valid_books(draw: st.DrawFn) -> Any:
    """Rule books in the right shape with any part possibly wrong."""
    rules = draw(st.dictionaries(st.sampled_from(["r1", "r2", "r3"]), _rule(), max_size=3))
    ids = [*rules, "missing"]
    scenario = st.fixed_dictionaries(
        {
            "id": st.one_of(st.sampled_from(["S0", "S1", "S1", "x" * 11, ""]), SCALARS),
            "name": SCALARS,
            "mode": st.one_of(st.sampled_from(["priority_first", "all_matching", "any"]), JSONISH),
            "rules": st.one_of(st.lists(st.sampled_from(ids), max_size=4), SCALARS),
        }
    )
    return {
        "version": draw(st.one_of(st.just(1), SCALARS)),
        "scenarios": draw(st.one_of(st.lists(scenario, max_size=3), SCALARS)),
        "rules": rules,
    }


@FUZZ
@given(near_valid_books())
def test_near_valid_books_load_or_fail_with_config_error(raw: Any) -> None:
    book = _parse(json.dumps(raw))
    if book is not None:  # when accepted, it must evaluate on any state
        for scenario in book.scenarios:
            evaluate(scenario, {"stress_level": 10**400, "x": [1, None], "emotion_state": None})


@pytest.mark.parametrize(
    ("value", "operator", "fragment"),
    [
        (10**400, "<", "< needs a number"),  # was OverflowError from float()
        ("a{4294967296}", "matches", "invalid regular expression"),  # was OverflowError
        ("(" * 3000 + ")" * 3000, "matches", "invalid regular expression"),  # RecursionError
    ],
    ids=["huge-int", "huge-repeat", "deep-regex"],
)
def test_regressions_found_by_fuzzing(value: Any, operator: str, fragment: str) -> None:
    text = json.dumps(_book([[{"field": "x", "operator": operator, "value": value}]]))
    with pytest.raises(ConfigError, match=fragment):
        parse_rule_book(text, "fuzz.json")


def test_huge_integer_equality_is_exact_not_a_crash() -> None:
    book = parse_rule_book(
        json.dumps(_book([[{"field": "x", "operator": "==", "value": 10**400}]])), "b"
    )
    [scenario] = book.scenarios
    assert evaluate(scenario, {"x": 10**400})["rules_matched"] == 1
    assert evaluate(scenario, {"x": 1e308})["rules_matched"] == 0


# --------------------------------------------------------------------------- valid books


def _book(rule_conditions: list[list[Any]], mode: str = "priority_first") -> dict[str, Any]:
    rules = {
        f"r{index}": {
            "priority": (index * 37) % 100,
            "confidence": 0.5,
            "action": ["act"],
            "rationale": "generated",
            "conditions": conditions,
        }
        for index, conditions in enumerate(rule_conditions)
    }
    return {
        "version": 1,
        "scenarios": [{"id": "S", "name": "generated", "mode": mode, "rules": list(rules)}],
        "rules": rules,
    }


STATE_FIELDS = ["stress_level", "emotion_state", "engagement_score", "mbti_type", "grade"]
NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(min_value=-1000, max_value=1000, places=2),
)
TEXTS = st.one_of(st.text(max_size=8), st.sampled_from(["불안", "좌절", "😱", "3", " 3.0 ", "nan"]))
STATE_VALUES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS)


@st.composite
def valid_conditions(draw: st.DrawFn) -> Any:
    field = draw(st.sampled_from(STATE_FIELDS))
    operator = draw(st.sampled_from(OPERATORS))
    if operator in ("in", "not_in"):
        value: Any = draw(st.lists(st.one_of(st.integers(-10, 10), TEXTS), max_size=4))
    elif operator in ("<", "<=", ">", ">="):
        value = draw(st.one_of(st.integers(-10, 10), st.floats(-10, 10), st.just("5")))
    elif operator == "matches":
        value = draw(st.sampled_from(["^3", "불", ".*", "[0-9]+$", "(a|b)*c"]))
    elif operator in ("==", "!="):
        value = draw(st.one_of(st.none(), st.integers(-10, 10), TEXTS, st.booleans()))
    else:
        value = draw(st.one_of(TEXTS, st.integers(-10, 10)))
    return {"field": field, "operator": operator, "value": value}


CONDITION_LISTS = st.lists(
    st.one_of(
        valid_conditions(),
        st.fixed_dictionaries({"OR": st.lists(valid_conditions(), min_size=2, max_size=3)}),
    ),
    min_size=1,
    max_size=4,
)
STATES = st.dictionaries(st.sampled_from(STATE_FIELDS), STATE_VALUES, max_size=len(STATE_FIELDS))


@FUZZ
@given(st.lists(CONDITION_LISTS, min_size=1, max_size=5), STATES)
def test_valid_books_evaluate_and_the_modes_agree(
    rule_conditions: list[list[Any]], state: dict[str, Any]
) -> None:
    first = parse_rule_book(json.dumps(_book(rule_conditions, "priority_first")), "a")
    every = parse_rule_book(json.dumps(_book(rule_conditions, "all_matching")), "b")
    one = evaluate(first.scenarios[0], state)
    all_ = evaluate(every.scenarios[0], state)
    matched = [m["rule_id"] for m in all_["matched_rules"]]
    priorities = [m["priority"] for m in all_["matched_rules"]]
    assert priorities == sorted(priorities, reverse=True)
    assert all_["rules_evaluated"] == len(rule_conditions)
    assert all_["rules_matched"] == len(matched) <= len(rule_conditions)
    json.dumps(all_)  # the document must be storable in the JSON column
    # priority_first picks the first match in list order, and nothing when none matches
    in_list_order = [f"r{i}" for i in range(len(rule_conditions)) if f"r{i}" in matched]
    assert [m["rule_id"] for m in one["matched_rules"]] == in_list_order[:1]
    assert one["rules_evaluated"] == (
        int(in_list_order[0][1:]) + 1 if in_list_order else len(rule_conditions)
    )


def _holds_when_all_null(condition: dict[str, Any]) -> bool:
    """Spec: with a missing or null field only ``== null`` holds."""
    if "OR" in condition:
        return any(_holds_when_all_null(member) for member in condition["OR"])
    return condition["operator"] == "==" and condition["value"] is None


@FUZZ
@given(st.lists(CONDITION_LISTS, min_size=1, max_size=5), st.booleans())
def test_null_semantics_on_an_empty_or_all_null_state(
    rule_conditions: list[list[Any]], empty: bool
) -> None:
    book = parse_rule_book(json.dumps(_book(rule_conditions, "all_matching")), "b")
    state: dict[str, Any] = {} if empty else dict.fromkeys(STATE_FIELDS)
    matched = {m["rule_id"] for m in evaluate(book.scenarios[0], state)["matched_rules"]}
    expected = {
        f"r{index}"
        for index, conditions in enumerate(rule_conditions)
        if all(_holds_when_all_null(c) for c in conditions)
    }
    assert matched == expected


def test_decimal_state_values_from_the_database_compare_as_numbers() -> None:
    book = parse_rule_book(
        json.dumps(_book([[{"field": "stress_level", "operator": ">=", "value": 8}]])), "b"
    )
    for value, hit in [(decimal.Decimal("8.00"), 1), (decimal.Decimal("7.99"), 0)]:
        assert evaluate(book.scenarios[0], {"stress_level": value})["rules_matched"] == hit
    # a signalling NaN cannot become a float: no match, no exception
    assert (
        evaluate(book.scenarios[0], {"stress_level": decimal.Decimal("sNaN")})["rules_matched"] == 0
    )


# --------------------------------------------------------------------------- INI and config.php


_TMP = Path(tempfile.mkdtemp(prefix="alt42-fuzz-"))


@FUZZ
@given(st.text(max_size=200))
@example("[database]\npassword = x\n  continued\n")
@example("[heartbeat]\nbatch_size = 99999999999999999999999\n")
@example("[database]\nport = ٣٣٠٦\n")  # Arabic-Indic digits: int() would accept them
@example("\ufeff[database]\n%(x)s = 1\n")
def test_any_ini_text_loads_or_fails_with_config_error(text: str) -> None:
    path = _TMP / "fuzz.ini"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    try:
        config = load_config(str(path), environ={})
    except ConfigError as exc:
        assert str(exc).startswith(str(path)) or "ALT42_" in str(exc) or "config.php" in str(exc)
        assert "\n" not in str(exc)
        return
    assert 1 <= config.database.port <= 65535
    assert config.heartbeat.batch_size >= 1


@FUZZ
@given(st.binary(max_size=300))
@example(b"<?php\n$CFG->dbtype = 'pgsql';\n")
@example(b"<?php\n$CFG->dbpass = '\xff\xfe';\n")
@example(b"\xef\xbb\xbf<?php $CFG->dboptions = array('dbport' => ")
def test_any_bytes_as_config_php_load_or_fail_with_config_error(data: bytes) -> None:
    path = _TMP / "config.php"
    path.write_bytes(data)
    try:
        settings_read = read_moodle_config(str(path))
    except ConfigError as exc:
        assert str(exc).startswith(str(path))
        assert "\n" not in str(exc)
        return
    # what it read is a value of the key's type, or a one-line problem naming the file
    for key in ("dbtype", "host", "name", "user", "password", "prefix", "port", "socket"):
        if key in settings_read.problems:
            with pytest.raises(ConfigError) as problem:
                settings_read.require(key)
            assert str(problem.value).startswith(str(path)) and "\n" not in str(problem.value)
        else:
            value = settings_read.require(key)
            assert value is None or isinstance(value, int if key == "port" else str), key


def teardown_module() -> None:
    for child in _TMP.iterdir():
        child.unlink()
    os.rmdir(_TMP)
