"""The rule book and the evaluator: every operator, null semantics, OR groups, modes,
every shipped rule, and the loader's validation (pure: no database)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from heartbeat.errors import ConfigError
from heartbeat.rules import RuleBook, evaluate, load_rule_book, parse_rule_book


def book_with(conditions: list[Any], mode: str = "priority_first") -> RuleBook:
    raw = {
        "version": 1,
        "scenarios": [{"id": "T", "name": "test", "mode": mode, "rules": ["R"]}],
        "rules": {
            "R": {
                "priority": 1,
                "confidence": 0.5,
                "action": ["a"],
                "rationale": "r",
                "conditions": conditions,
            }
        },
    }
    return parse_rule_book(json.dumps(raw), "test.json")


def matches(condition: dict[str, Any], state: dict[str, Any]) -> bool:
    return evaluate(book_with([condition]).scenarios[0], state)["rules_matched"] == 1


def cond(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


@pytest.mark.parametrize(
    ("operator", "value", "field_value", "expected"),
    [
        ("==", 5, 5.0, True),
        ("==", 5, "5", True),  # numeric strings compare as numbers
        ("==", 5, Decimal("5.00"), True),
        ("==", 5, 6, False),
        ("==", "불안", "불안", True),
        ("==", "불안", "우울", False),
        ("==", True, True, True),
        ("==", True, False, False),
        ("!=", 5, 6, True),
        ("!=", 5, "5.0", False),
        ("!=", "a", "b", True),
        ("<", 0.5, 0.49, True),
        ("<", 0.5, 0.5, False),
        ("<", 0.5, "0.1", True),
        ("<", 0.5, "abc", False),  # not a number: the comparison is false, not an error
        ("<=", 3, 3, True),
        ("<=", 3, 3.01, False),
        (">", 7, 8, True),
        (">", 7, 7, False),
        (">=", 8, 8, True),
        (">=", 8, Decimal("7.99"), False),
        ("in", ["불안", "좌절"], "좌절", True),
        ("in", ["불안", "좌절"], "분노", False),
        ("in", [1, 2], "2", True),
        ("not_in", ["불안", "좌절"], "분노", True),
        ("not_in", ["불안", "좌절"], "불안", False),
        ("contains", "수업", "첫 수업입니다", True),
        ("contains", "수업", "hello", False),
        ("not_contains", "첫 수업", "안녕하세요", True),
        ("not_contains", "첫 수업", "오늘 첫 수업", False),
        ("matches", "^[A-Z]{4}$", "INTJ", True),
        ("matches", "^[A-Z]{4}$", "intj", False),
    ],
)
def test_operators(operator: str, value: Any, field_value: Any, expected: bool) -> None:
    assert matches(cond("f", operator, value), {"f": field_value}) is expected


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("==", 1),
        ("!=", 1),
        ("<", 1),
        ("<=", 1),
        (">", 1),
        (">=", 1),
        ("in", [None, 1]),
        ("not_in", [1]),
        ("contains", "x"),
        ("not_contains", "x"),  # null does not "not contain": every comparison is false
        ("matches", ".*"),
    ],
)
@pytest.mark.parametrize("state", [{}, {"f": None}], ids=["missing", "null"])
def test_missing_or_null_field_makes_every_comparison_false(
    operator: str, value: Any, state: dict[str, Any]
) -> None:
    assert matches(cond("f", operator, value), state) is False


@pytest.mark.parametrize("state", [{}, {"f": None}], ids=["missing", "null"])
def test_null_equality_on_missing_or_null(state: dict[str, Any]) -> None:
    assert matches(cond("f", "==", None), state) is True
    assert matches(cond("f", "!=", None), state) is False


def test_null_equality_on_present_value() -> None:
    assert matches(cond("f", "==", None), {"f": 0}) is False
    assert matches(cond("f", "!=", None), {"f": ""}) is True


def test_or_group_and_conjunction() -> None:
    conditions = [
        cond("a", "==", None),
        {"OR": [cond("x", "==", True), cond("y", "==", True)]},
    ]
    scenario = book_with(conditions).scenarios[0]
    assert evaluate(scenario, {"x": True})["rules_matched"] == 1
    assert evaluate(scenario, {"y": True})["rules_matched"] == 1
    assert evaluate(scenario, {"x": False, "y": False})["rules_matched"] == 0
    assert evaluate(scenario, {"a": 1, "x": True})["rules_matched"] == 0


def _two_rule_book(mode: str) -> RuleBook:
    raw = {
        "version": 1,
        "scenarios": [{"id": "T", "name": "t", "mode": mode, "rules": ["low", "high", "never"]}],
        "rules": {
            "low": {
                "priority": 10,
                "confidence": 0.1,
                "action": [],
                "rationale": "",
                "conditions": [cond("v", ">=", 1)],
            },
            "high": {
                "priority": 90,
                "confidence": 0.9,
                "action": [],
                "rationale": "",
                "conditions": [cond("v", ">=", 2)],
            },
            "never": {
                "priority": 50,
                "confidence": 0.5,
                "action": [],
                "rationale": "",
                "conditions": [cond("v", "<", 0)],
            },
        },
    }
    return parse_rule_book(json.dumps(raw), "modes.json")


def test_priority_first_takes_first_match_in_list_order_not_highest_priority() -> None:
    result = evaluate(_two_rule_book("priority_first").scenarios[0], {"v": 5})
    assert [m["rule_id"] for m in result["matched_rules"]] == ["low"]
    assert result["rules_evaluated"] == 1
    assert result["rules_matched"] == 1


def test_all_matching_keeps_every_match_highest_priority_first() -> None:
    result = evaluate(_two_rule_book("all_matching").scenarios[0], {"v": 5})
    assert [m["rule_id"] for m in result["matched_rules"]] == ["high", "low"]
    assert result["rules_evaluated"] == 3
    assert result["evaluation_mode"] == "all_matching"


def test_result_document_shape() -> None:
    result = evaluate(_two_rule_book("all_matching").scenarios[0], {"v": 1})
    assert set(result) == {
        "scenario_id",
        "rules_evaluated",
        "rules_matched",
        "matched_rules",
        "evaluation_mode",
        "duration_ms",
    }
    assert result["matched_rules"] == [
        {"rule_id": "low", "priority": 10, "action": [], "confidence": 0.1, "rationale": ""}
    ]


# ------------------------------------------------------------- the shipped rule book

SHIPPED = load_rule_book()
NEW = {"new_student_flag": True}

# rule id -> (a state that matches, a state that does not)
RULE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "S0_R1_math_learning_style_collection": (
        {"profile_update_flag": True},
        {"math_learning_style": "visual", **NEW},
    ),
    "S0_R2_academy_info_collection": (
        {"academy_name": "A", "academy_grade": 3, **NEW},
        {"academy_name": "A", "academy_grade": 3, "academy_schedule": "mon"},
    ),
    "S0_R3_math_performance_quantification": ({**NEW}, {"math_recent_score": 80, **NEW}),
    "S0_R4_textbook_info_collection": ({"profile_update_flag": True}, {"textbooks": ["x"]}),
    "S0_R5_math_unit_mastery_collection": ({"student_grade": 10}, {}),
    "S0_R6_comprehensive_math_profile_verification": (
        {"user_message": "안녕하세요"},
        {"user_message": "오늘 첫 수업이에요"},
    ),
    "S1R1_emotion_based_reentry": (
        {"emotion_state": "우울", "engagement_score": 0.2},
        {"emotion_state": "우울", "engagement_score": 0.5},
    ),
    "S1R2_low_immersion_reentry": (
        {
            "immersion_level": 0.2,
            "detection_source": "agent13_learning_dropout",
            "current_activity_difficulty": 7,
        },
        {"immersion_level": 0.2, "detection_source": "other", "current_activity_difficulty": 9},
    ),
    "S1R3_emotion_based_reentry": (
        {"emotion_state": "피로", "mbti_type": "INTJ", "engagement_score": 0.3},
        {"emotion_state": "피로", "mbti_type": None, "engagement_score": 0.3},
    ),
    "S2R1_learning_management": (
        {"engagement_score": 0.4, "concentration_level": 4.9},
        {"engagement_score": 0.4, "concentration_level": 5},
    ),
    "S2R2_progress_tracking": ({"engagement_score": 0.5}, {"engagement_score": 0.49}),
    "S3R1_stress_management": ({"stress_level": 6}, {"stress_level": 8}),
    "S3R2_stress_intervention": ({"stress_level": 8}, {"stress_level": 7.99}),
    "S3R3_stress_recovery": (
        {"stress_level": 2.9, "concentration_level": 6},
        {"stress_level": 3, "concentration_level": 9},
    ),
    "S4R1_emotion_management": ({"emotion_state": "슬픔"}, {"emotion_state": "기쁨"}),
    "S4R2_confidence_boost": ({"math_confidence": 3.99}, {"math_confidence": 4}),
}


def test_shipped_book_has_the_specified_scenarios_rules_and_modes() -> None:
    layout = {s.scenario_id: (s.mode, [r.rule_id for r in s.rules]) for s in SHIPPED.scenarios}
    assert [s.scenario_id for s in SHIPPED.scenarios] == ["S0", "S1", "S2", "S3", "S4"]
    assert layout["S2"] == ("all_matching", ["S2R1_learning_management", "S2R2_progress_tracking"])
    assert layout["S1"][1] == [
        "S1R1_emotion_based_reentry",
        "S1R2_low_immersion_reentry",
        "S1R3_emotion_based_reentry",
    ]
    assert all(layout[s][0] == "priority_first" for s in ("S0", "S1", "S3", "S4"))
    assert sorted(r for _, ids in layout.values() for r in ids) == sorted(RULE_CASES)
    priorities = {r.rule_id: (r.priority, r.confidence) for s in SHIPPED.scenarios for r in s.rules}
    assert priorities["S0_R1_math_learning_style_collection"] == (99, 0.97)
    assert priorities["S3R2_stress_intervention"] == (95, 0.90)
    assert priorities["S4R2_confidence_boost"] == (75, 0.80)


@pytest.mark.parametrize("rule_id", sorted(RULE_CASES))
def test_each_shipped_rule_matches_and_does_not(rule_id: str) -> None:
    rule = next(r for s in SHIPPED.scenarios for r in s.rules if r.rule_id == rule_id)
    positive, negative = RULE_CASES[rule_id]
    assert rule.predicate(positive) is True
    assert rule.predicate(negative) is False
    assert rule.action and rule.rationale


def test_s3_priority_first_in_list_order() -> None:
    s3 = next(s for s in SHIPPED.scenarios if s.scenario_id == "S3")
    result = evaluate(s3, {"stress_level": 9, "concentration_level": 5})
    assert [m["rule_id"] for m in result["matched_rules"]] == ["S3R2_stress_intervention"]
    assert result["rules_evaluated"] == 2


# ------------------------------------------------------------- loader validation

GOOD_RULE = {
    "priority": 1,
    "confidence": 0.5,
    "action": ["a"],
    "rationale": "r",
    "conditions": [cond("f", "==", 1)],
}


def raw_book(rule: Any = None, scenarios: Any = None, **top: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "scenarios": scenarios
        if scenarios is not None
        else [{"id": "S", "name": "n", "mode": "priority_first", "rules": ["R"]}],
        "rules": {"R": rule if rule is not None else GOOD_RULE},
        **top,
    }


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (raw_book({**GOOD_RULE, "conditions": [cond("f", "~=", 1)]}), "unknown operator '~='"),
        (
            raw_book(
                {
                    **GOOD_RULE,
                    "conditions": [{"OR": [{"OR": [cond("f", "==", 1)] * 2}, cond("g", "==", 1)]}],
                }
            ),
            "OR group cannot contain another OR",
        ),
        (raw_book({**GOOD_RULE, "conditions": [{"OR": [cond("f", "==", 1)]}]}), "at least two"),
        (
            raw_book({**GOOD_RULE, "conditions": [{"field": "f", "operator": "=="}]}),
            "missing value",
        ),
        (raw_book({**GOOD_RULE, "conditions": [cond("f", "<", "high")]}), "needs a number"),
        (raw_book({**GOOD_RULE, "conditions": [cond("f", "in", "abc")]}), "needs a list"),
        (
            raw_book({**GOOD_RULE, "conditions": [cond("f", "matches", "(")]}),
            "invalid regular expression",
        ),
        (raw_book({**GOOD_RULE, "conditions": [cond("f", "<", None)]}), "null can only"),
        (raw_book({**GOOD_RULE, "conditions": []}), "non-empty list"),
        (raw_book({**GOOD_RULE, "priority": "high"}), "priority must be"),
        (raw_book({**GOOD_RULE, "confidence": 2}), "confidence must be"),
        (raw_book({**GOOD_RULE, "action": "a"}), "action must be"),
        (raw_book({k: v for k, v in GOOD_RULE.items() if k != "rationale"}), "missing rationale"),
        (
            raw_book(scenarios=[{"id": "S", "name": "n", "mode": "first", "rules": ["R"]}]),
            "mode must be",
        ),
        (
            raw_book(
                scenarios=[{"id": "S", "name": "n", "mode": "priority_first", "rules": ["X"]}]
            ),
            "unknown rule id(s) X",
        ),
        (
            raw_book(
                scenarios=[{"id": "S", "name": "n", "mode": "priority_first", "rules": ["R"]}] * 2
            ),
            "duplicate scenario id",
        ),
        (raw_book(scenarios=[]), "non-empty list"),
        ({**raw_book(), "version": 2}, "version"),
        ([], "expected an object"),
    ],
)
def test_broken_rule_books_are_refused_with_the_place(raw: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rule_book(json.dumps(raw), "/etc/alt42/rules.json")
    assert fragment in str(err.value)
    assert str(err.value).startswith("/etc/alt42/rules.json: ")
    assert err.value.exit_code == 2


def test_duplicate_rule_ids_and_bad_json_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'R'"):
        parse_rule_book('{"version": 1, "rules": {"R": {}, "R": {}}, "scenarios": []}', "x.json")
    with pytest.raises(ConfigError, match="not a valid rule book"):
        parse_rule_book("{version: 1", "x.json")


def test_operator_rule_book_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(raw_book()), encoding="utf-8")
    book = load_rule_book(str(path))
    assert book.source == str(path)
    assert [s.scenario_id for s in book.scenarios] == ["S"]
    with pytest.raises(ConfigError, match="rule book not found"):
        load_rule_book(str(tmp_path / "missing.json"))
