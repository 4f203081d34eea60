"""The command line as cron runs it: real processes, output format, every exit code,
the lock, and no secret or traceback in any output."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from heartbeat import db
from heartbeat.errors import DatabaseError
from heartbeat.run import execute
from tests.conftest import DB_PASSWORD, ROOT, Site, cli_env, job_lines, run_cli
from tests.test_schema import PHP_TABLES

PHP_HEARTBEAT_LOG = PHP_TABLES[0]  # the run table as the PHP job's migration made it

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \S")


def assert_one_clean_error(
    result: subprocess.CompletedProcess[str], code: int, fragment: str
) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1, result.stderr
    assert fragment in errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert DB_PASSWORD not in result.stderr + result.stdout


def test_run_output_lines(demo_site: Site) -> None:
    result = demo_site.cli("run")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert "Starting heartbeat run" in lines[0]
    assert lines[1].endswith("Found 8 active students")
    assert re.search(r"Completed: 8 processed, 0 errors, \d+ ms$", lines[-1])
    assert len(lines) == 3  # no per-student lines without --verbose


def test_verbose_adds_one_line_per_student(demo_site: Site) -> None:
    result = demo_site.cli("run", "--verbose")
    assert result.returncode == 0
    students = [line for line in result.stdout.splitlines() if "] student " in line]
    assert len(students) == 8
    assert any("student 1001: 3 rule(s) matched" in line for line in students)


def test_json_summary(demo_site: Site) -> None:
    result = demo_site.cli("run", "--json")
    assert result.returncode == 0
    summary = json.loads(result.stdout)
    assert set(summary) == {
        "run_id",
        "status",
        "students_processed",
        "errors",
        "duration_ms",
        "pacing_waits",
        "pacing_wait_ms",
    }
    assert (summary["status"], summary["students_processed"], summary["errors"]) == (
        "success",
        8,
        0,
    )
    assert (
        demo_site.scalar(
            "SELECT status FROM mdl_alt42_heartbeat_log WHERE run_id = %s", (summary["run_id"],)
        )
        == "success"
    )


def test_dry_run_cli_writes_nothing(demo_site: Site) -> None:
    result = demo_site.cli("run", "--dry-run")
    assert result.returncode == 0
    assert "dry run" in result.stdout
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 0


def test_exit_1_when_a_student_fails(demo_site: Site) -> None:
    demo_site.execute(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES ('', UNIX_TIMESTAMP())"
    )
    result = demo_site.cli("run", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"] == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((), "the following arguments are required"),
        (("frobnicate",), "invalid choice"),
        (("run", "--fast"), "unrecognized arguments"),
        (("report", "--hours", "3", "--days", "2"), "not allowed with argument"),
        (("report", "--hours", "zero"), "not a whole number"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], fragment: str) -> None:
    assert_one_clean_error(run_cli(*args), 2, fragment)


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ini"
    assert_one_clean_error(run_cli("--config", str(missing), "run"), 2, str(missing))


def test_config_from_environment_variable(demo_site: Site) -> None:
    ini = demo_site.write_ini()
    result = run_cli("check", env={"ALT42_HEARTBEAT_CONFIG": str(ini)})
    assert result.returncode == 0, result.stderr
    assert f"OK config {ini}" in result.stdout


def test_bad_config_key_exits_2(demo_site: Site) -> None:
    ini = demo_site.write_ini(batchsize=10)
    assert_one_clean_error(demo_site.cli("run"), 2, str(ini))


def test_unreachable_database_exits_3(demo_site: Site, tmp_path: Path) -> None:
    ini = demo_site.write_ini()
    ini.write_text(ini.read_text().replace(demo_site.server.socket, str(tmp_path / "no.sock")))
    assert_one_clean_error(demo_site.cli("run"), 3, "database error while connecting")


def test_wrong_password_exits_3_without_showing_it(demo_site: Site) -> None:
    demo_site.write_ini(password="not-" + DB_PASSWORD)
    result = demo_site.cli("run")
    assert_one_clean_error(result, 3, "Access denied")
    assert "not-" + DB_PASSWORD not in result.stderr + result.stdout


def test_password_from_environment(demo_site: Site) -> None:
    demo_site.write_ini(password=None)
    assert demo_site.cli("run").returncode == 3
    assert demo_site.cli("run", env={"ALT42_DB_PASSWORD": DB_PASSWORD}).returncode == 0


def test_missing_tables_exit_3_and_name_the_fix(site: Site) -> None:
    result = site.cli("run")
    assert_one_clean_error(result, 3, "mdl_alt42_heartbeat_log is missing")
    assert "alt42-heartbeat migrate" in result.stderr
    site.execute("DROP TABLE mdl_alt42_student_biometrics")
    site.migrate()
    assert_one_clean_error(site.cli("check"), 3, "mdl_alt42_student_biometrics is missing")


def test_check_reports_each_part(demo_site: Site) -> None:
    result = demo_site.cli("check")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "OK config" in out and "OK rule book" in out and "5 scenarios, 16 rules" in out
    assert f"database '{demo_site.name}' as 'alt42'" in out
    assert "OK tables with prefix 'mdl_' present" in out
    assert DB_PASSWORD not in out


def test_check_config_only_never_touches_the_database(site: Site, tmp_path: Path) -> None:
    """What the role's validate: runs: the files are judged, the database is not asked."""
    ini = site.write_ini()
    ini.write_text(ini.read_text().replace(site.server.socket, str(tmp_path / "no.sock")))
    result = site.cli("check", "--config-only")
    assert result.returncode == 0, result.stderr
    assert "OK config" in result.stdout and "OK rule book" in result.stdout
    assert "connected" not in result.stdout
    assert_one_clean_error(site.cli("check"), 3, "while connecting")
    ini.write_text(ini.read_text() + "[monitoring]\nmail_to = ops at example.org\n")
    assert_one_clean_error(site.cli("check", "--config-only"), 2, "mail_to: 'ops at example")


def test_under_the_systemd_timer_the_lines_go_to_the_journal_as_well(
    site: Site, tmp_path: Path
) -> None:
    """systemd names the journal stream a service's stderr is (JOURNAL_STREAM): then the
    lines go there as well as to --log-file. A process that only inherited the variable
    (a job cron started, cron itself run by systemd) writes its log alone, as before."""
    ini = site.write_ini()
    log = tmp_path / "job.log"
    for journal in (False, True):
        with (tmp_path / "stderr").open("w+") as err:
            found = os.fstat(err.fileno())
            inode = found.st_ino if journal else found.st_ino + 1
            result = subprocess.run(
                [sys.executable, "-m", "heartbeat", "--config", str(ini), "--log-file",
                 str(log), "check", "--config-only"],
                stdout=subprocess.PIPE, stderr=err, text=True, timeout=300, check=False,
                env=cli_env({"JOURNAL_STREAM": f"{found.st_dev}:{inode}"}),
            )  # fmt: skip
        assert result.returncode == 0
        assert ("OK config" in result.stdout) is journal, result.stdout
    assert log.read_text(encoding="utf-8").count("OK config") == 2


def test_broken_rule_book_stops_the_run_with_exit_2(demo_site: Site, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"version": 1, "scenarios": [], "rules": {}}', encoding="utf-8")
    demo_site.write_ini(rules=str(rules))
    assert_one_clean_error(demo_site.cli("run"), 2, str(rules))
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0


def test_lock_held_means_skipped_with_exit_0(demo_site: Site) -> None:
    with open(demo_site.lock_file, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = demo_site.cli("run")
    assert result.returncode == 0
    assert "Skipped: another heartbeat run holds the lock" in result.stdout
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0
    assert demo_site.cli("run").returncode == 0  # released: the next run goes ahead
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1


def test_killed_run_leaves_no_lock_behind(demo_site: Site) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from heartbeat.coordinate import HostLock;"
            " assert HostLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)",
            demo_site.lock_file,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    assert "Skipped" in demo_site.cli("run").stdout
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    result = demo_site.cli("run")
    assert "Skipped" not in result.stdout
    assert "Completed: 8 processed" in result.stdout


def test_migrate_is_idempotent(site: Site) -> None:
    first = site.cli("migrate")
    assert first.returncode == 0 and "created table mdl_alt42_heartbeat_log" in first.stdout
    second = site.cli("migrate")
    assert second.returncode == 0 and "(no change)" in second.stdout


def test_connection_lost_mid_run_exits_3_and_records_the_failure(demo_site: Site) -> None:
    killed = []

    def kill_job_connection(_line: str) -> None:
        if killed:
            return
        with demo_site.server.connect() as root, root.cursor() as cur:
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'alt42' AND DB = %s",
                (demo_site.name,),
            )
            for (thread,) in cur.fetchall():
                cur.execute(f"KILL {int(thread)}")
                killed.append(thread)

    with pytest.raises(DatabaseError) as err, job_lines(student=kill_job_connection):
        execute(demo_site.config())
    assert err.value.exit_code == 3
    assert "while writing results" in str(err.value)
    assert killed
    assert demo_site.query("SELECT status, exit_code FROM mdl_alt42_heartbeat_log") == [
        ("failed", 3)
    ]
    # the batch in hand was not half-written
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log") == 0
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 0
    # and the next run processes everyone
    again = execute(demo_site.config(), force=True)
    assert again.students_processed == 8


def test_version_and_module_entry_point() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"alt42-heartbeat \d+\.\d+\.\d+\n", result.stdout)


def test_report_views(demo_site: Site) -> None:
    for _ in range(2):
        assert demo_site.cli("run", "--force").returncode == 0
    demo_site.execute(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, students_processed, errors,"
        " duration_ms, created_at) VALUES"
        " (UTC_TIMESTAMP() - INTERVAL 3 DAY, 100, 4, 2000, UTC_TIMESTAMP() - INTERVAL 3 DAY),"
        " (UTC_TIMESTAMP() - INTERVAL 3 DAY, 50, 2, 1000, UTC_TIMESTAMP() - INTERVAL 3 DAY),"
        " (UTC_TIMESTAMP() - INTERVAL 9 DAY, 7, 7, 7, UTC_TIMESTAMP() - INTERVAL 9 DAY)"
    )
    table = demo_site.cli("report")
    assert table.returncode == 0, table.stderr
    assert "Runs in the last 24 hour(s):" in table.stdout
    assert (
        "Per day over the last 7 day(s), days in the database server's time zone (UTC, UTC+00:00):"
        in table.stdout
    )

    hours = json.loads(demo_site.cli("report", "--hours", "24", "--format", "json").stdout)
    assert set(hours) == {"hours", "executions"}
    assert [(r["students_processed"], r["errors"], r["status"]) for r in hours["executions"]] == [
        (8, 0, "success"),
        (8, 0, "success"),
    ]
    days = json.loads(demo_site.cli("report", "--days", "7", "--format", "json").stdout)
    assert set(days) == {"days", "daily", "time_zone"}
    today, three_days_ago = days["daily"]  # newest first; 9 days ago is outside the view
    assert (today["executions"], today["avg_students"], today["total_errors"]) == (2, 8.0, 0)
    assert (three_days_ago["executions"], three_days_ago["avg_students"]) == (2, 75.0)
    assert (three_days_ago["avg_duration_ms"], three_days_ago["total_errors"]) == (1500.0, 6)


def test_report_on_a_table_the_php_job_created(site: Site) -> None:
    site.execute(PHP_HEARTBEAT_LOG)
    site.execute(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, students_processed, errors,"
        " duration_ms) VALUES (UTC_TIMESTAMP(), 1000, 0, 379000)"
    )
    result = site.cli("report", "--hours", "1", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["executions"][0]["students_processed"] == 1000


def test_database_closed_connection_message_is_one_line(demo_site: Site) -> None:
    conn = db.connect(demo_site.config().database, 30)
    conn.close()
    with pytest.raises(DatabaseError) as err, db.errors_as("testing"):
        conn.cursor().execute("SELECT 1")
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("database error while testing")
