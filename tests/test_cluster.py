"""Operations of a run on a multi-server site: one run per slot, the database lock,
deadline and signals, stale run rows, statement time limits, pings and metrics."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest

from heartbeat import db
from heartbeat.errors import DatabaseError
from heartbeat.run import execute
from tests.conftest import Monitor, Site, job_lines, start_cli


def test_second_run_in_the_same_slot_is_skipped(demo_site: Site) -> None:
    first = demo_site.cli("run")
    assert first.returncode == 0
    second = demo_site.cli("run")
    assert second.returncode == 0
    assert "Skipped: this slot is taken by host" in second.stdout
    assert "(success)" in second.stdout
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 8
    forced = demo_site.cli("run", "--force")
    assert "Completed: 8 processed" in forced.stdout
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 2


def test_database_lock_held_elsewhere_means_skipped(demo_site: Site) -> None:
    """Another server's run holds the lock and renews its lease: this one skips. Once its
    lease has expired (the server died or froze: the database keeps its session and the
    lock), the next run takes over and marks the silent run failed."""
    with demo_site.conn() as other, other.cursor() as cur:
        name = db.lock_name(demo_site.config().database, "heartbeat")
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        assert cur.fetchone()[0] == 1
        cur.execute(
            "INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at, run_id, host,"
            " status, renewed_at) VALUES (UTC_TIMESTAMP(), UTC_TIMESTAMP(), 'r1', 'web2',"
            " 'running', UTC_TIMESTAMP())".replace("mdl_", demo_site.prefix)
        )
        other.commit()
        with job_lines() as said:
            summary = execute(demo_site.config())
        assert summary.status == "skipped" and summary.exit_code == 0
        assert any("a run on another server (host web2, its lease renewed" in s for s in said)
        cur.execute(
            "UPDATE mdl_alt42_heartbeat_log SET renewed_at = UTC_TIMESTAMP() - INTERVAL 91"
            " SECOND".replace("mdl_", demo_site.prefix)
        )
        other.commit()
        assert execute(demo_site.config()).status == "success"  # the lock still held
    assert demo_site.query("SELECT host, status FROM mdl_alt42_heartbeat_log ORDER BY id") == [
        ("web2", "failed"),
        (socket.gethostname(), "success"),
    ]


def test_servers_starting_together_give_one_run(demo_site: Site, tmp_path: Path) -> None:
    """Five 'servers' (own lock files, so no host lock in common) start at once."""
    processes = []
    for n in range(5):
        ini = demo_site.write_ini(lock_file=str(tmp_path / f"server{n}.lock"))
        copy = tmp_path / f"server{n}.ini"
        copy.write_text(ini.read_text())
        copy.chmod(0o600)
        processes.append(start_cli("--config", str(copy), "run"))
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 5, outputs
    ran = [out for out, _ in outputs if "Completed: 8 processed" in out]
    skipped = [out for out, _ in outputs if "Skipped:" in out]
    assert (len(ran), len(skipped)) == (1, 4), outputs
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 8


def test_deadline_stops_between_batches_and_records_aborted(demo_site: Site) -> None:
    summary = execute(demo_site.config(max_run_minutes=0, batch_size=3))
    assert (summary.status, summary.exit_code, summary.students_processed) == ("aborted", 4, 0)
    assert demo_site.query("SELECT status, exit_code FROM mdl_alt42_heartbeat_log") == [
        ("aborted", 4)
    ]


def test_sigterm_finishes_the_batch_in_hand_then_stops(demo_site: Site) -> None:
    sent = []

    def terminate_once(_line: str) -> None:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    with job_lines(student=terminate_once):
        summary = execute(demo_site.config(batch_size=3))
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored
    assert (summary.status, summary.exit_code, summary.students_processed) == ("aborted", 4, 3)
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 3
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log") == 15
    assert demo_site.query(
        "SELECT status, students_processed, exit_code FROM mdl_alt42_heartbeat_log"
    ) == [("aborted", 3, 4)]


def test_sigterm_to_a_real_process_exits_4(demo_site: Site) -> None:
    demo_site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(20000 + n),) for n in range(3000)],
    )
    ini = demo_site.write_ini(batch_size=1)
    process = start_cli("--config", str(ini), "run", "--verbose", stderr=None)
    assert process.stdout is not None
    for line in process.stdout:
        if "] student " in line:
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stdout.read()
    assert process.wait(timeout=60) == 4
    assert "Stopping early (SIGTERM received)" in rest
    processed, status = demo_site.query(
        "SELECT students_processed, status FROM mdl_alt42_heartbeat_log"
    )[0]
    assert status == "aborted" and 0 < processed < 3008
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == processed


def test_stale_running_rows_are_marked_failed(demo_site: Site) -> None:
    demo_site.execute(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at, status, run_id)"
        " VALUES (UTC_TIMESTAMP() - INTERVAL 3 HOUR, UTC_TIMESTAMP() - INTERVAL 3 HOUR,"
        " 'running', 'dead-run')"
    )
    assert execute(demo_site.config()).status == "success"
    assert (
        demo_site.scalar("SELECT status FROM mdl_alt42_heartbeat_log WHERE run_id = 'dead-run'")
        == "failed"
    )


def test_statement_time_limit(demo_site: Site) -> None:
    conn = db.connect(demo_site.config().database, statement_timeout=1)
    try:
        with (
            pytest.raises(DatabaseError, match="max_statement_time"),
            db.errors_as("waiting"),
            conn.cursor() as cur,
        ):
            cur.execute("SELECT SLEEP(3) FROM mdl_user LIMIT 1")
    finally:
        db.close_quietly(conn)


def test_pings_and_metrics_from_the_server_that_ran(
    demo_site: Site,
    monitor: str,
    tmp_path: Path,
) -> None:
    prom = tmp_path / "alt42.prom"
    ini = demo_site.write_ini()
    ini.write_text(
        ini.read_text()
        + f"[monitoring]\nping_url = {monitor}\nping_retries = 0\nmetrics_file = {prom}\n"
    )
    result = demo_site.cli("run", "--json")
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    assert Monitor.hits == [f"/ping/abc-123/start?rid={run_id}", f"/ping/abc-123?rid={run_id}"]
    text = prom.read_text()
    assert "alt42_heartbeat_students_processed 8" in text
    assert 'alt42_heartbeat_status{status="success"} 1' in text

    skipped = demo_site.cli("run")  # same slot: skipped, so no ping and no metrics
    assert "Skipped" in skipped.stdout
    assert len(Monitor.hits) == 2
    assert prom.read_text() == text

    demo_site.execute("DROP TABLE mdl_alt42_student_biometrics")
    failed = demo_site.cli("run", "--force")
    assert failed.returncode == 3
    assert Monitor.hits[-1] == "/ping/abc-123/3?rid="
    assert 'alt42_heartbeat_status{status="failed"} 1' in prom.read_text()
    assert "alt42_heartbeat_last_success_timestamp_seconds" in prom.read_text()


def test_dead_monitor_never_fails_the_run(demo_site: Site) -> None:
    ini = demo_site.write_ini()
    ini.write_text(
        ini.read_text()
        + "[monitoring]\nping_url = http://127.0.0.1:9/ping/x\nping_retries = 0\n"
        + "ping_timeout_seconds = 1\n"
    )
    result = demo_site.cli("run")
    assert result.returncode == 0
    assert "Completed: 8 processed" in result.stdout
    assert "Monitor ping 'start' failed" in result.stderr
