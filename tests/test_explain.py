"""``run --dry-run --explain ID`` on the demo site (real MariaDB, a real process): the
state and its sources, every condition of a crafted rule book (every operator, an OR
group, nulls, both modes), compared with what the run itself matched; unknown ids and
misuse are one line and exit 2; nothing is written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import Site


def cond(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def rule(priority: int, *conditions: Any) -> dict[str, Any]:
    return {
        "priority": priority,
        "confidence": 0.5,
        "action": ["a"],
        "rationale": "r",
        "conditions": list(conditions),
    }


# Student 1003 of the demo data: 불안, immersion 3, engagement 0.3, stress 4,
# concentration 3, mbti INFP, grade 10, class A. Each condition's expected outcome
# is written by hand next to it.
RULES = {
    "R_ne": rule(5, cond("emotion_state", "!=", "불안")),  # false
    "R_gt": rule(5, cond("stress_level", ">", 4), cond("concentration_level", ">=", 3)),
    "R_eq": rule(1, cond("emotion_state", "==", "불안"), cond("grade", "==", 10)),
    "R_lt": rule(2, cond("immersion_level", "<", 5), cond("engagement_score", "<=", 0.3)),
    "R_in": rule(5, cond("mbti", "in", ["INFP", "INTJ"]), cond("class", "not_in", ["B"])),
    "R_contains": rule(
        1, cond("emotion_state", "contains", "불"), cond("mbti", "not_contains", "X")
    ),
    "R_matches": rule(9, cond("mbti_type", "matches", "^IN")),
    "R_or": rule(
        3,
        {"OR": [cond("stress_level", ">", 8), cond("emotion_state", "==", "불안")]},
        cond("no_such_field", "==", None),
    ),
    "R_null": rule(4, cond("mbti", "!=", None), cond("no_such_field", ">", 1)),
}
EXPECTED_CONDITIONS = {
    "R_ne": [False],
    "R_gt": [False, True],
    "R_eq": [True, True],
    "R_lt": [True, True],
    "R_in": [True, True],
    "R_contains": [True, True],
    "R_matches": [True],
    "R_or": [(True, [False, True]), True],
    "R_null": [True, False],
}
BOOK = {
    "version": 1,
    "scenarios": [
        {"id": "P", "name": "first", "mode": "priority_first",
         "rules": ["R_ne", "R_gt", "R_eq", "R_lt"]},
        {"id": "A", "name": "all", "mode": "all_matching",
         "rules": ["R_lt", "R_in", "R_contains", "R_matches", "R_or", "R_null"]},
    ],
    "rules": RULES,
}  # fmt: skip


def crafted(site: Site) -> Path:
    path = site.tmp / "rules.json"
    path.write_text(json.dumps(BOOK, ensure_ascii=False), encoding="utf-8")
    site.write_ini(rules=str(path))
    return path


def written(site: Site) -> tuple[int, int, int]:
    return (
        site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log"),
        site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log"),
        site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log"),
    )


def outcomes(conditions: list[dict[str, Any]]) -> list[Any]:
    return [
        (c["result"], [m["result"] for m in c["any_of"]]) if "any_of" in c else c["result"]
        for c in conditions
    ]


def test_every_condition_is_explained_as_the_run_evaluates_it(demo_site: Site) -> None:
    crafted(demo_site)
    result = demo_site.cli("run", "--dry-run", "--explain", "1003", "--format", "json")
    assert result.returncode == 0, result.stderr
    (doc,) = json.loads(result.stdout)
    rules = {r["rule_id"]: r for s in doc["scenarios"] for r in s["rules"]}
    for rule_id, expected in EXPECTED_CONDITIONS.items():
        assert outcomes(rules[rule_id]["conditions"]) == expected, rule_id
        flat = [c[0] if isinstance(c, tuple) else c for c in expected]
        assert rules[rule_id]["matches"] is all(flat), rule_id
    first, every = doc["scenarios"]
    # priority_first stops at the first match in list order (R_eq, priority 1), R_lt unseen
    assert first["chosen"] == ["R_eq"]
    assert [r["evaluated"] for r in first["rules"]] == [True, True, True, False]
    # all_matching: every match, highest priority first
    assert every["chosen"] == ["R_matches", "R_in", "R_or", "R_lt", "R_contains"]
    condition = rules["R_or"]["conditions"][1]
    assert (condition["present"], condition["value"], condition["expected"]) == (False, None, None)
    assert rules["R_lt"]["conditions"][0] == {
        "field": "immersion_level",
        "present": True,
        "value": 3.0,
        "operator": "<",
        "expected": 5,
        "result": True,
    }

    # The run's own evaluator, on the same student: what it matched, in the same order.
    run = demo_site.cli("run", "--dry-run", "--verbose")
    assert run.returncode == 0, run.stderr
    line = re.search(r"student 1003: \d+ rule\(s\) matched \(([^)]*)\)", run.stdout)
    assert line, run.stdout
    assert line.group(1).split(", ") == first["chosen"] + every["chosen"]
    assert written(demo_site) == (0, 0, 0)


def test_the_state_says_where_each_field_came_from(demo_site: Site) -> None:
    """1001 has two profile and two biometrics rows: the latest of each, by id; 1007
    has neither: the defaults, said so; the shipped book's verdict and route."""
    result = demo_site.cli("run", "--dry-run", "--explain", "1001", "--explain", "1007")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    latest = demo_site.scalar(
        "SELECT id FROM mdl_alt42_student_biometrics WHERE student_id = '1001'"
        " ORDER BY created_at DESC LIMIT 1"
    )
    one, seven = text.split("\n\nStudent 1007")
    assert one.startswith("Student 1001\n"), text
    assert re.search(
        rf"stress_level\s+= 9\.0  \(mdl_alt42_student_biometrics row id {latest}, the latest", one
    ), one
    assert re.search(r"emotion_state\s+= \"분노\"  \(mdl_alt42_student_profiles row id \d+", one)
    assert re.search(r"grade\s+= 10  \(mdl_alt42_students row of student_id 1001\)", one)
    assert "S3R2_stress_intervention (priority" in one
    assert re.search(r"S3R2_stress_intervention \(priority \d+\): MATCHES", one), one
    assert "stress_level = 9.0; >= " in one
    assert "Chosen: high_stress -> agent08, agent19, agent20" in one
    assert re.search(
        r"stress_level\s+= 0\.0  \(default: no mdl_alt42_student_biometrics row\)", seven
    )
    assert re.search(r"mbti\s+= null  \(none: no mdl_alt42_students row\)", seven)
    assert written(demo_site) == (0, 0, 0)


def test_ids_as_the_database_compares_them_and_inactive_students(demo_site: Site) -> None:
    """GUEST-77 is the active guest-77 (case-insensitive collation), known to no table:
    its state is the id alone; 1009 is known but not active: explained, with a note."""
    result = demo_site.cli(
        "run", "--dry-run", "--explain", "GUEST-77", "--explain", "1009", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    guest, inactive = json.loads(result.stdout)
    assert (guest["student_id"], guest["active"], guest["note"]) == ("guest-77", True, None)
    assert [item["field"] for item in guest["state"]] == ["student_id"]
    assert (
        "no mdl_alt42_students row and no (non-deleted) mdl_user row" in guest["state"][0]["source"]
    )
    assert all(not s["chosen"] for s in guest["scenarios"])
    assert guest["routing"]["strategy"] == "heartbeat"
    assert (inactive["student_id"], inactive["active"]) == ("1009", False)
    assert "not active now" in inactive["note"]


def test_an_unknown_student_and_misuse_are_one_line_and_exit_2(demo_site: Site) -> None:
    for args, message in [
        (("--explain", "nobody", "--explain", "1001"), "no such student: 'nobody' is not active"),
        (("--explain", "9999"), "no such student: '9999'"),
    ]:
        result = demo_site.cli("run", "--dry-run", *args)
        assert result.returncode == 2, result
        assert message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    for args, message in [
        (("run", "--explain", "1001"), "--explain needs --dry-run"),
        (("run", "--dry-run", "--explain", "1001", "--json"), "--format json"),
        (("run", "--dry-run", "--format", "json"), "--format is for --explain"),
        (("run", "--dry-run", "--explain", "1001", "--format", "yaml"), "invalid choice"),
    ]:
        result = demo_site.cli(*args)
        assert result.returncode == 2, result
        assert message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert written(demo_site) == (0, 0, 0)
