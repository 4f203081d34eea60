"""The ALT42 plugin's own tables and readers, and data as real sites hold it.

The plugin's migration 005 creates the three log tables itself (column comments in
Korean, its own index names, student_id VARCHAR(20), utf8mb4_unicode_ci); its
monitoring API (api/monitoring/agent_status_api.php) counts each agent's events with
three kinds of condition and averages processed_at - created_at. The DDL below is
written from those facts for these tests (the plugin's SQL is not copied).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from heartbeat.run import execute
from tests.conftest import Site, make_site, run_cli
from tests.mariadb_server import MariaDBServer

# The log tables as the plugin's migration 005 leaves them.
PLUGIN_LOG_TABLES = [
    """CREATE TABLE mdl_alt42_heartbeat_log (
        id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
        execution_time TIMESTAMP NOT NULL COMMENT '실행 시간',
        students_processed INT UNSIGNED DEFAULT 0 COMMENT '처리된 학생 수',
        errors INT UNSIGNED DEFAULT 0 COMMENT '에러 발생 수',
        duration_ms DECIMAL(10,2) COMMENT '실행 시간 (밀리초)',
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT '생성 시간',
        INDEX idx_execution_time (execution_time),
        INDEX idx_created_at (created_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE mdl_alt42_event_processing_log (
        id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
        event_id VARCHAR(36) NOT NULL COMMENT '이벤트 ID (UUID)',
        event_type VARCHAR(100) NOT NULL COMMENT '이벤트 타입',
        student_id VARCHAR(20) COMMENT '학생 ID',
        scenarios_evaluated INT UNSIGNED DEFAULT 0 COMMENT '평가된 시나리오 수',
        scenario_results JSON COMMENT '시나리오 평가 결과',
        routing_result JSON COMMENT '라우팅 결과',
        priority TINYINT UNSIGNED DEFAULT 5 COMMENT '우선순위 (1-10)',
        status ENUM('pending', 'processing', 'completed', 'failed') DEFAULT 'pending',
        processed_at TIMESTAMP NULL COMMENT '처리 완료 시간',
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT '생성 시간',
        INDEX idx_event_id (event_id),
        INDEX idx_student_id (student_id),
        INDEX idx_created_at (created_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE mdl_alt42_scenario_evaluation_log (
        id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
        event_id VARCHAR(36) COMMENT '이벤트 ID',
        scenario_id VARCHAR(10) NOT NULL COMMENT '시나리오 ID (S0, S1, etc.)',
        student_id VARCHAR(20) COMMENT '학생 ID',
        rules_count INT UNSIGNED DEFAULT 0 COMMENT '평가된 룰 수',
        evaluation_mode VARCHAR(20) DEFAULT 'priority_first' COMMENT '평가 모드',
        evaluation_result JSON COMMENT '평가 결과',
        evaluated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT '평가 시간',
        INDEX idx_event_id (event_id),
        INDEX idx_student_id (student_id),
        INDEX idx_evaluated_at (evaluated_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
]


@pytest.fixture
def plugin_site(mariadb: MariaDBServer, tmp_path: Path) -> Iterator[Site]:
    """The demo population, with the log tables the plugin's migration made."""
    created = make_site(mariadb, tmp_path, demo=True)
    for statement in PLUGIN_LOG_TABLES:
        created.execute(statement)
    yield created
    mariadb.drop_database(created.name)


def column(site: Site, table: str, name: str) -> tuple[object, ...]:
    return site.query(
        "SELECT CHARACTER_MAXIMUM_LENGTH, COLUMN_COMMENT, COLLATION_NAME, IS_NULLABLE,"
        " COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = %s AND COLUMN_NAME = %s",
        (table, name),
    )[0]


def indexes_on(site: Site, table: str, name: str) -> list[str]:
    rows = site.query(
        "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = %s AND COLUMN_NAME = %s AND SEQ_IN_INDEX = 1",
        (table, name),
    )
    return sorted(str(row[0]) for row in rows)


def test_migrate_extends_the_plugin_tables_and_rewrites_nothing(plugin_site: Site) -> None:
    before = {
        table: column(plugin_site, table, "student_id")
        for table in ("mdl_alt42_event_processing_log", "mdl_alt42_scenario_evaluation_log")
    }
    assert {value[0] for value in before.values()} == {20}
    first = plugin_site.cli("migrate")
    assert first.returncode == 0, first.stderr
    for table, (_length, comment, collation, nullable, default) in before.items():
        # widened, every other attribute as the plugin made it
        assert column(plugin_site, table, "student_id") == (
            32,
            comment,
            collation,
            nullable,
            default,
        )
        assert comment == "학생 ID"
    # the plugin's idx_event_id already serves lookups by event_id: no second index
    assert indexes_on(plugin_site, "mdl_alt42_scenario_evaluation_log", "event_id") == [
        "idx_event_id"
    ]
    assert column(plugin_site, "mdl_alt42_heartbeat_log", "execution_time")[1] == "실행 시간"
    again = plugin_site.cli("migrate")
    assert again.returncode == 0
    assert "Schema is up to date (no change)" in again.stdout
    assert execute(plugin_site.config()).status == "success"


def agent_rows(site: Site, agent: str) -> int:
    """The plugin monitoring API's own condition for one agent's events."""
    pattern, quoted = f"%{agent}%", json.dumps(agent)
    return int(
        site.scalar(
            "SELECT COUNT(*) FROM mdl_alt42_event_processing_log WHERE ("
            " event_type LIKE %s OR routing_result LIKE %s"
            " OR JSON_EXTRACT(routing_result, '$.agent_id') = %s"
            " OR JSON_EXTRACT(routing_result, '$.selected_agent') = %s)"
            " AND created_at >= DATE_SUB(NOW(), INTERVAL 7 DAY)",
            (pattern, pattern, quoted, quoted),
        )
    )


def selected(site: Site, agent: str) -> int:
    """Events whose first agent is ``agent``. (The API's own ``JSON_EXTRACT(...) =
    '"agent08"'`` never holds on MariaDB 10.11, which compares JSON_EXTRACT's result as
    JSON, i.e. unquoted: its counts come from the LIKE condition.)"""
    return int(
        site.scalar(
            "SELECT COUNT(*) FROM mdl_alt42_event_processing_log"
            " WHERE JSON_UNQUOTE(JSON_EXTRACT(routing_result, '$.selected_agent')) = %s",
            (agent,),
        )
    )


def test_the_plugins_agent_dashboard_counts_the_jobs_events(plugin_site: Site) -> None:
    plugin_site.migrate()
    assert execute(plugin_site.config()).status == "success"
    # demo: 1001 high_stress (agents 8, 19, 20); the 7 others periodic (10, 12, 21)
    assert agent_rows(plugin_site, "agent08") == 1
    assert selected(plugin_site, "agent08") == 1
    assert agent_rows(plugin_site, "agent19") == 1
    assert agent_rows(plugin_site, "agent10") == 7
    assert selected(plugin_site, "agent10") == 7
    assert agent_rows(plugin_site, "agent12") == 7
    assert agent_rows(plugin_site, "agent04") == 0  # the default route was not taken
    # and the API's average time from event to processing means something
    average = plugin_site.scalar(
        "SELECT AVG(TIMESTAMPDIFF(MICROSECOND, created_at, processed_at) / 1000)"
        " FROM mdl_alt42_event_processing_log WHERE status = 'completed'"
    )
    assert average is not None and float(average) >= 0
    run_start = plugin_site.scalar("SELECT MIN(created_at) FROM mdl_alt42_heartbeat_log")
    assert (
        plugin_site.scalar("SELECT COUNT(DISTINCT created_at) FROM mdl_alt42_event_processing_log")
        == 1
    )  # every event of the run was created at its start
    assert plugin_site.scalar("SELECT MIN(created_at) FROM mdl_alt42_event_processing_log") == (
        run_start
    )


def test_a_missing_plugin_column_names_the_migration_that_adds_it(demo_site: Site) -> None:
    demo_site.execute("ALTER TABLE mdl_alt42_learning_sessions DROP COLUMN session_end")
    result = demo_site.cli("run")
    assert result.returncode == 3
    line = result.stderr.strip()
    assert "table mdl_alt42_learning_sessions lacks column session_end (the ALT42 plugin's" in line
    assert "migration 006_create_heartbeat_views.sql adds it" in line
    assert "prefix" not in line


# --------------------------------------------------------------------------- odd data


def states_of(site: Site) -> dict[str, dict[str, object]]:
    """The routing and the scenario results per student of the last run."""
    rows = site.query(
        "SELECT student_id, routing_result, status FROM mdl_alt42_event_processing_log"
    )
    return {
        str(sid): {"route": json.loads(route or "null"), "status": st} for sid, route, st in rows
    }


def test_zero_dates_count_as_missing(demo_site: Site) -> None:
    """Under a lax sql_mode MariaDB stores 0000-00-00; PyMySQL returns it as a string,
    which stopped every run of the site (a TypeError comparing it with a datetime)."""
    with demo_site.conn() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(
            "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state,"
            " updated_at) VALUES (1002, '1002', '불안', '0000-00-00 00:00:00')"
        )
        cur.execute(
            "UPDATE mdl_alt42_student_biometrics SET created_at = '0000-00-00 00:00:00'"
            " WHERE student_id = '1003'"
        )
        cur.execute(
            "UPDATE mdl_alt42_learning_sessions SET session_end = '0000-00-00 00:00:00'"
            " WHERE student_id = '1005'"
        )
        conn.commit()
    summary = execute(demo_site.config())
    assert (summary.status, summary.students_processed, summary.errors) == ("success", 8, 0)
    assert "1005" in states_of(demo_site)  # a zero session end is no end: still open


def test_ids_are_matched_as_the_database_compares_them(demo_site: Site) -> None:
    """The session says 'k0001', the plugin's tables 'K0001 ' (case-insensitive, PAD
    SPACE collations): the database returns those rows for 'k0001', so they are that
    student's state (stress 9: high_stress), not an empty state (periodic)."""
    demo_site.execute(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES ('k0001', UNIX_TIMESTAMP() - 60)"
    )
    demo_site.execute(
        "INSERT INTO mdl_alt42_students (student_id, userid, grade, class, mbti)"
        " VALUES ('K0001 ', NULL, 10, 'A', 'ENFP')"
    )
    demo_site.execute(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state)"
        " VALUES (0, 'K0001', 'neutral')"
    )
    demo_site.execute(
        "INSERT INTO mdl_alt42_student_biometrics (student_id, stress_level, concentration_level)"
        " VALUES ('K0001  ', 9.00, 4.00)"
    )
    assert execute(demo_site.config()).errors == 0
    student = states_of(demo_site)["k0001"]
    assert student["route"]["strategy"] == "high_stress"  # type: ignore[index]


def test_text_and_nulls_in_number_columns_count_as_missing(demo_site: Site) -> None:
    demo_site.execute(
        "ALTER TABLE mdl_alt42_student_profiles MODIFY immersion_level VARCHAR(10) NULL,"
        " MODIFY emotion_state VARCHAR(20) NULL"
    )
    demo_site.execute(
        "UPDATE mdl_alt42_student_profiles SET immersion_level = 'n/a', emotion_state = ''"
        " WHERE student_id = '1005'"
    )
    demo_site.execute(
        "UPDATE mdl_alt42_student_profiles SET immersion_level = NULL, emotion_state = NULL"
        " WHERE student_id = '1006'"
    )
    demo_site.execute("UPDATE mdl_alt42_students SET mbti = '', class = NULL, grade = NULL")
    summary = execute(demo_site.config())
    assert (summary.status, summary.students_processed, summary.errors) == ("success", 8, 0)


# --------------------------------------------------------------------------- status and report


def test_status_does_not_take_the_php_jobs_rows_for_runs(demo_site: Site) -> None:
    """heartbeat.php still scheduled after the switch keeps writing rows (status NULL):
    they kept status OK while the new job was dead."""
    demo_site.execute(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, students_processed, errors,"
        " duration_ms, created_at) VALUES (NOW(), 8, 0, 379000, NOW() - INTERVAL 5 MINUTE)"
    )
    result = demo_site.cli("status")
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith("HEARTBEAT CRITICAL - no completed run recorded yet; 1 row")
    assert "of the PHP heartbeat job arrived meanwhile" in result.stdout


def test_report_days_are_the_sites_days(demo_site: Site) -> None:
    """A Korean site: a run at 23:30 UTC is on the next day in Seoul."""
    now = dt.datetime.now(dt.timezone.utc)
    seoul = dt.timezone(dt.timedelta(hours=9))
    today = now.astimezone(seoul).date()
    # 00:30 today in Seoul is 15:30 yesterday in UTC
    moment = dt.datetime.combine(today, dt.time(0, 30), seoul).astimezone(dt.timezone.utc)
    demo_site.execute(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, students_processed, errors,"
        " duration_ms, created_at, status) VALUES (%s, 8, 0, 10, %s, 'success')",
        (moment.replace(tzinfo=None), moment.replace(tzinfo=None)),
    )
    ini = demo_site.write_ini()
    ini.write_text(ini.read_text() + "[report]\ntime_zone = Asia/Seoul\n")
    result = run_cli("--config", str(ini), "report", "--days", "2", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["time_zone"] == "Asia/Seoul"
    assert data["daily"][0]["day"] == str(today)
    table = run_cli("--config", str(ini), "report", "--days", "2")
    assert "days in Asia/Seoul" in table.stdout
