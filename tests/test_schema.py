"""``migrate`` on a fresh database and on the tables the PHP job's migration made."""

from __future__ import annotations

from tests.conftest import Site

PHP_TABLES = [
    "CREATE TABLE mdl_alt42_heartbeat_log (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,"
    " execution_time TIMESTAMP NULL, students_processed INT UNSIGNED, errors INT UNSIGNED,"
    " duration_ms DECIMAL(10,2), created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE mdl_alt42_scenario_evaluation_log (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,"
    " event_id VARCHAR(36) NULL, scenario_id VARCHAR(10), student_id VARCHAR(20),"
    " rules_count INT UNSIGNED, evaluation_mode VARCHAR(20), evaluation_result JSON,"
    " evaluated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE mdl_alt42_event_processing_log (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,"
    " event_id VARCHAR(36), event_type VARCHAR(100), student_id VARCHAR(20),"
    " scenarios_evaluated INT UNSIGNED, scenario_results JSON, routing_result JSON,"
    " priority TINYINT UNSIGNED, status ENUM('pending','processing','completed','failed'),"
    " processed_at TIMESTAMP NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
]


def column_length(site: Site, table: str, column: str) -> int:
    return int(
        site.scalar(
            "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
            (table, column),
        )
    )


def test_migrate_extends_php_tables_and_keeps_their_rows(site: Site) -> None:
    for statement in PHP_TABLES:
        site.execute(statement)
    site.execute(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, students_processed, errors,"
        " duration_ms) VALUES (UTC_TIMESTAMP(), 1000, 17, 379000.5)"
    )
    site.execute(
        "INSERT INTO mdl_alt42_scenario_evaluation_log (scenario_id, student_id, rules_count,"
        " evaluation_mode, evaluation_result) VALUES ('S1', '12345678901234567890', 0,"
        " 'priority_first', '{}')"
    )
    result = site.cli("migrate")
    assert result.returncode == 0, result.stderr
    assert "added column mdl_alt42_heartbeat_log.run_id" in result.stdout
    assert "widened mdl_alt42_scenario_evaluation_log.student_id to 32" in result.stdout
    assert "widened mdl_alt42_event_processing_log.student_id to 32" in result.stdout
    assert column_length(site, "mdl_alt42_scenario_evaluation_log", "student_id") == 32
    assert site.query(
        "SELECT students_processed, errors, duration_ms, status FROM mdl_alt42_heartbeat_log"
    ) == [(1000, 17, site.query("SELECT CAST(379000.5 AS DECIMAL(10,2))")[0][0], None)]
    assert site.scalar("SELECT student_id FROM mdl_alt42_scenario_evaluation_log") == (
        "12345678901234567890"
    )
    assert "(no change)" in site.cli("migrate").stdout
    # the seed manual's monitoring query still works
    assert (
        site.query(
            "SELECT COUNT(*), AVG(students_processed), SUM(errors) FROM mdl_alt42_heartbeat_log"
            " WHERE created_at >= DATE_SUB(NOW(), INTERVAL 24 HOUR)"
        )[0][0]
        == 1
    )


def test_fresh_migrate_creates_the_three_tables_with_32_character_ids(site: Site) -> None:
    site.migrate()
    for table in ("scenario_evaluation_log", "event_processing_log"):
        assert column_length(site, f"mdl_alt42_{table}", "student_id") == 32
    assert site.cli("check").returncode == 0
