"""A whole run against the real MariaDB: rows written, failures, batches, dry run,
prefix, and the set-based shape (statements do not grow with the students)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from heartbeat.run import execute
from tests.conftest import Site, make_site
from tests.mariadb_server import MariaDBServer

ACTIVE = ["1001", "1002", "1003", "1004", "1005", "1006", "1007", "guest-77"]


def matched(site: Site, student: str) -> dict[str, list[str]]:
    rows = site.query(
        "SELECT scenario_id, evaluation_result FROM mdl_alt42_scenario_evaluation_log"
        " WHERE student_id = %s ORDER BY scenario_id",
        (student,),
    )
    return {sid: [m["rule_id"] for m in json.loads(doc)["matched_rules"]] for sid, doc in rows}


def test_demo_run_writes_the_three_tables(demo_site: Site) -> None:
    summary = execute(demo_site.config())
    assert (summary.status, summary.students_processed, summary.errors) == ("success", 8, 0)
    assert summary.exit_code == 0

    log = demo_site.query(
        "SELECT execution_time, students_processed, errors, duration_ms, created_at, run_id,"
        " status, exit_code, finished_at FROM mdl_alt42_heartbeat_log"
    )
    assert len(log) == 1
    execution_time, processed, errors, duration, created, run_id, status, code, finished = log[0]
    assert (processed, errors, run_id, status, code) == (8, 0, summary.run_id, "success", 0)
    assert execution_time == created and finished >= execution_time
    assert float(duration) == pytest.approx(summary.duration_ms, abs=0.01)

    evaluations = demo_site.query(
        "SELECT student_id, scenario_id, rules_count, evaluation_mode, event_id"
        " FROM mdl_alt42_scenario_evaluation_log ORDER BY id"
    )
    assert len(evaluations) == 5 * 8
    assert [r[1] for r in evaluations[:5]] == ["S0", "S1", "S2", "S3", "S4"]
    assert [r[2] for r in evaluations[:5]] == [6, 3, 2, 3, 2]
    assert evaluations[2][3] == "all_matching"
    assert sorted({r[0] for r in evaluations}) == sorted(ACTIVE)

    events = demo_site.query(
        "SELECT event_id, event_type, student_id, scenarios_evaluated, scenario_results,"
        " routing_result, priority, status, processed_at, run_id"
        " FROM mdl_alt42_event_processing_log ORDER BY id"
    )
    assert [e[2] for e in events] == ACTIVE  # numeric ids in numeric order, then the rest
    first = events[0]
    assert first[1] == "cron.heartbeat_30m" and first[3] == 5 and first[6] == 2
    assert first[7] == "completed" and first[8] is not None and first[9] == summary.run_id
    assert json.loads(first[5]) == {
        "strategy": "high_stress",
        "agents": [8, 19, 20],
        "agent_ids": ["agent08", "agent19", "agent20"],
        "selected_agent": "agent08",
    }
    assert set(json.loads(first[4])) == {"S0", "S1", "S2", "S3", "S4"}
    # the evaluation rows of a student carry the event id of its event row
    assert {r[4] for r in evaluations if r[0] == "1001"} == {first[0]}


@pytest.mark.parametrize(
    ("student", "expected"),
    [
        (
            "1001",
            {
                "S2": ["S2R2_progress_tracking"],
                "S3": ["S3R2_stress_intervention"],
                "S4": ["S4R1_emotion_management"],
            },
        ),
        ("1002", {"S2": ["S2R2_progress_tracking"], "S3": ["S3R1_stress_management"]}),
        (
            "1003",
            {
                "S1": ["S1R1_emotion_based_reentry"],
                "S2": ["S2R1_learning_management"],
                "S4": ["S4R1_emotion_management"],
            },
        ),
        ("1004", {"S1": ["S1R3_emotion_based_reentry"]}),
        ("1005", {"S2": ["S2R2_progress_tracking"], "S4": ["S4R2_confidence_boost"]}),
        ("1006", {"S2": ["S2R2_progress_tracking"], "S3": ["S3R3_stress_recovery"]}),
        ("1007", {}),
        ("guest-77", {}),
    ],
)
def test_demo_students_match_the_expected_rules(
    demo_site: Site, student: str, expected: dict[str, list[str]]
) -> None:
    execute(demo_site.config())
    found = {k: v for k, v in matched(demo_site, student).items() if v}
    assert found == expected


def test_dry_run_writes_nothing(demo_site: Site) -> None:
    summary = execute(demo_site.config(), dry_run=True)
    assert (summary.status, summary.students_processed) == ("dry_run", 8)
    for table in ("heartbeat_log", "scenario_evaluation_log", "event_processing_log"):
        assert demo_site.scalar(f"SELECT COUNT(*) FROM mdl_alt42_{table}") == 0


def test_batches_give_the_same_result_as_one_batch(demo_site: Site) -> None:
    execute(demo_site.config(batch_size=3))
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log") == 40
    assert [
        r[0]
        for r in demo_site.query(
            "SELECT student_id FROM mdl_alt42_event_processing_log ORDER BY id"
        )
    ] == ACTIVE
    assert matched(demo_site, "1003")["S1"] == ["S1R1_emotion_based_reentry"]


def test_failing_student_is_recorded_and_others_go_on(demo_site: Site) -> None:
    # An empty student id passes the column but fails event validation.
    demo_site.execute(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES ('', UNIX_TIMESTAMP() - 60)"
    )
    summary = execute(demo_site.config())
    assert (summary.status, summary.students_processed, summary.errors) == ("partial", 8, 1)
    assert summary.exit_code == 1
    failed = demo_site.query(
        "SELECT student_id, status, scenario_results FROM mdl_alt42_event_processing_log"
        " WHERE status = 'failed'"
    )
    assert len(failed) == 1 and failed[0][0] == ""
    assert "student_id is empty" in json.loads(failed[0][2])["error"]
    assert demo_site.query(
        "SELECT students_processed, errors, status, exit_code FROM mdl_alt42_heartbeat_log"
    ) == [(8, 1, "partial", 1)]


def test_other_prefix(mariadb: MariaDBServer, tmp_path: Path) -> None:
    site = make_site(mariadb, tmp_path, prefix="moodle42_", demo=True)
    site.migrate()
    summary = execute(site.config())
    assert summary.students_processed == 8
    assert site.scalar("SELECT COUNT(*) FROM moodle42_alt42_scenario_evaluation_log") == 40
    tables = {r[0] for r in site.query("SHOW TABLES")}
    assert not any(t.startswith("mdl_") for t in tables)


def _statements(server: MariaDBServer) -> dict[str, int]:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN"
            " ('Com_select', 'Com_insert', 'Com_update', 'Com_commit')"
        )
        return {name: int(value) for name, value in cur.fetchall()}


def _run_counting(site: Site, server: MariaDBServer, students: int) -> dict[str, int]:
    site.execute("DELETE FROM mdl_alt42_learning_sessions")
    site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(5000 + n),) for n in range(students)],
    )
    # known to Moodle, so that all four state queries run for every batch
    site.execute("DELETE FROM mdl_user WHERE id >= 5000")
    site.executemany(
        "INSERT INTO mdl_user (id, username) VALUES (%s, %s)",
        [(5000 + n, f"u{n}") for n in range(students)],
    )
    before = _statements(server)
    summary = execute(site.config(batch_size=500), force=True)
    assert summary.students_processed == students
    after = _statements(server)
    return {key: after[key] - before[key] for key in before}


def test_statements_grow_with_batches_not_students(demo_site: Site, mariadb: MariaDBServer) -> None:
    small = _run_counting(demo_site, mariadb, 40)
    large = _run_counting(demo_site, mariadb, 480)  # 12x the students, still one batch
    assert large["Com_select"] == small["Com_select"]
    assert large["Com_insert"] <= small["Com_insert"] + 2  # multi-row INSERTs, ~1 MB each
    two_batches = _run_counting(demo_site, mariadb, 900)
    # per batch: 4 state queries, and the fence (the run still holds its claim)
    assert two_batches["Com_select"] == small["Com_select"] + 5
    assert two_batches["Com_insert"] < 20
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 40 + 480 + 900


def test_every_json_document_is_valid(demo_site: Site) -> None:
    execute(demo_site.config())
    assert (
        demo_site.scalar(
            "SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log"
            " WHERE JSON_VALID(evaluation_result)"
        )
        == 40
    )
    docs: list[Any] = demo_site.query(
        "SELECT JSON_EXTRACT(scenario_results, '$.S3.matched_rules[0].rule_id')"
        " FROM mdl_alt42_event_processing_log WHERE student_id = '1001'"
    )
    assert json.loads(docs[0][0]) == "S3R2_stress_intervention"
