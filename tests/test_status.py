"""`alt42-heartbeat status`, the monitoring plugin: what it assesses from the run history
(pure), and the command against a real database, within its time limit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import pytest

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
from tests.conftest import Site, run_cli

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
