"""Operations: the status check, prune, the metrics textfile and monitor pings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import pytest

from heartbeat import db, metrics, ping
from heartbeat.config import HeartbeatConfig
from heartbeat.status import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    History,
    RunRow,
    assess,
    critical_limit,
)
from tests.conftest import Monitor, Site, job_lines, run_cli

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)


def row(minutes_ago: int, status: str = "success", students: int = 8, errors: int = 0) -> RunRow:
    return RunRow(NOW - dt.timedelta(minutes=minutes_ago), status, students, errors, 1234.0)


@pytest.mark.parametrize(
    ("last", "completed", "busy", "state", "fragment"),
    [
        (row(5), row(5), True, OK, "last run 8 students, 0 errors, 1234 ms"),
        (row(69), row(69), True, OK, "HEARTBEAT OK"),  # 2 x 30 + 10 grace = 70 min
        (row(71), row(71), True, CRITICAL, "last completed run 71 min ago (limit 70 min)"),
        (None, None, True, CRITICAL, "no completed run recorded yet"),
        (row(5, "failed"), row(35), True, WARNING, "last run failed"),
        (row(5, "aborted"), row(35), True, WARNING, "last run aborted"),
        (row(5, "partial", errors=3), row(5, "partial", errors=3), True, WARNING, "3 failed"),
        (row(5, students=0), row(5, students=0), True, WARNING, "processed 0 students"),
        (row(5, students=0), row(5, students=0), False, OK, "HEARTBEAT OK"),
    ],
)
def test_status_assessment(
    last: Optional[RunRow], completed: Optional[RunRow], busy: bool, state: int, fragment: str
) -> None:
    limit = critical_limit(NOW, HeartbeatConfig(), 10)
    code, line = assess(History(last, completed), NOW, limit, busy)
    assert code == state
    assert fragment in line
    assert "\n" not in line
    if completed is not None:
        assert " | age=" in line  # perfdata


def test_status_command_against_the_database(demo_site: Site) -> None:
    before = demo_site.cli("status")
    assert before.returncode == CRITICAL
    assert before.stdout.startswith("HEARTBEAT CRITICAL - no completed run")
    assert demo_site.cli("run").returncode == 0
    after = demo_site.cli("status")
    assert after.returncode == OK, after.stdout
    assert "students=8 errors=0;0;" in after.stdout


def test_status_unknown_when_the_check_cannot_be_made(demo_site: Site, tmp_path: Path) -> None:
    assert run_cli("--config", str(tmp_path / "missing.ini"), "status").returncode == UNKNOWN
    ini = demo_site.write_ini()
    ini.write_text(ini.read_text().replace(demo_site.server.socket, str(tmp_path / "x.sock")))
    result = demo_site.cli("status")
    assert result.returncode == UNKNOWN
    assert result.stdout.startswith("HEARTBEAT UNKNOWN - database error while connecting")


def test_prune_deletes_old_rows_in_batches_and_keeps_recent_ones(demo_site: Site) -> None:
    assert demo_site.cli("run").returncode == 0
    old = "UTC_TIMESTAMP() - INTERVAL 100 DAY"
    demo_site.executemany(
        "INSERT INTO mdl_alt42_scenario_evaluation_log (scenario_id, student_id, rules_count,"
        " evaluation_mode, evaluation_result, evaluated_at)"
        f" VALUES (%s, %s, 0, 'x', '{{}}', {old})",
        [("S0", str(n)) for n in range(250)],
    )
    demo_site.executemany(
        "INSERT INTO mdl_alt42_event_processing_log (event_id, event_type, student_id,"
        f" status, created_at) VALUES (%s, 'x', %s, 'completed', {old})",
        [(f"e{n}", str(n)) for n in range(120)],
    )
    demo_site.execute(
        f"INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at) VALUES ({old}, {old})"
    )
    demo_site.write_ini()
    ini = demo_site.tmp / "heartbeat.ini"
    ini.write_text(ini.read_text() + "[retention]\ndays = 90\nbatch_size = 100\n")
    result = demo_site.cli("prune")
    assert result.returncode == 0, result.stderr
    assert "Pruned 250 row(s) from mdl_alt42_scenario_evaluation_log" in result.stdout
    assert "Pruned 120 row(s) from mdl_alt42_event_processing_log" in result.stdout
    assert "Pruned 1 row(s) from mdl_alt42_heartbeat_log" in result.stdout
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log") == 40
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 8
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1
    assert "0 row(s) deleted" in demo_site.cli("prune", "--days", "1").stdout


def test_prune_skips_while_another_server_prunes(demo_site: Site) -> None:
    """Every web server schedules prune at the same minute: the named lock lets one work."""
    old = "UTC_TIMESTAMP() - INTERVAL 500 DAY"  # past the run rows' 400 days
    demo_site.execute(
        f"INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at) VALUES ({old}, {old})"
    )
    name = db.lock_name(demo_site.config().database, "prune")
    with demo_site.conn() as other, other.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        assert cur.fetchone()[0] == 1
        held = demo_site.cli("prune")
        assert held.returncode == 0, held.stderr
        assert "Skipped: another server is pruning" in held.stdout
        assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1
    freed = demo_site.cli("prune")  # the lock went with the other session
    assert "Pruned 1 row(s) from mdl_alt42_heartbeat_log" in freed.stdout


def test_metrics_textfile_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "alt42_heartbeat.prom"
    content = metrics.render(
        metrics.Figures("success", 1800000000.5, 2500, students_found=812, students=812),
        1800000000.5,
    )
    metrics.write_atomically(str(path), content)
    text = path.read_text()
    assert "alt42_heartbeat_last_success_timestamp_seconds 1800000000.500" in text
    assert "alt42_heartbeat_last_duration_seconds 2.500" in text
    assert "alt42_heartbeat_students_processed 812" in text
    assert 'alt42_heartbeat_status{status="success"} 1' in text
    assert 'alt42_heartbeat_status{status="failed"} 0' in text
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert metrics.previous_success(str(path)) == pytest.approx(1800000000.5)
    failed = metrics.render(
        metrics.Figures("failed", 1800001800.0, 10), metrics.previous_success(str(path))
    )
    metrics.write_atomically(str(path), failed)
    assert "alt42_heartbeat_last_success_timestamp_seconds 1800000000.500" in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["alt42_heartbeat.prom"]  # no temp left
    assert metrics.previous_success(str(tmp_path / "none.prom")) is None


def test_ping_urls_and_retries(monitor: str) -> None:
    with job_lines() as said:
        assert ping.send(monitor, "start", "run-1", timeout=2, retries=0)
        assert ping.send(monitor, "success", "run-1", timeout=2, retries=0)
        assert ping.send(monitor, "3", "run-2", timeout=2, retries=0)
        assert Monitor.hits == [
            "/ping/abc-123/start?rid=run-1",
            "/ping/abc-123?rid=run-1",
            "/ping/abc-123/3?rid=run-2",
        ]
        Monitor.fail_first = 1
        assert ping.send(monitor, "fail", "run-3", timeout=2, retries=1)
        assert said == []
        assert ping.send(None, "start", "run-4") is False


def test_ping_to_a_dead_monitor_is_reported_not_raised() -> None:
    dead = "http://127.0.0.1:9/ping/x"  # discard port: connection refused at once
    with job_lines() as said:
        assert ping.send(dead, "start", "r", timeout=1, retries=1) is False
    assert len(said) == 1 and "Monitor ping 'start' failed" in said[0]
    assert "/ping/x" not in said[0]  # the check's URL can be a secret


@pytest.mark.parametrize(
    ("history", "state", "fragment"),
    [
        # the PHP job still scheduled: its rows never pass for this job's runs
        (History(None, None, php_rows=3), CRITICAL, "no completed run recorded yet; 3 row(s)"),
        (History(row(5), row(5), php_rows=2), WARNING, "HEARTBEAT WARNING - last run 8 students"),
        (History(row(71), row(71), php_rows=1), CRITICAL, "71 min ago"),
    ],
)
def test_status_names_the_php_job_still_writing(
    history: History, state: int, fragment: str
) -> None:
    code, line = assess(history, NOW, critical_limit(NOW, HeartbeatConfig(), 10), True)
    assert code == state
    assert fragment in line
    assert "of the PHP heartbeat job arrived meanwhile: it is still scheduled too" in line
