"""The job scheduled by systemd (alt42_heartbeat_scheduler: systemd, every minute here):
the units as the role wrote them, the sandbox's exposure as systemd rates it, and runs
the timer started, checked as cron's are: one per slot, the lock, the log (and the
journal), the metrics file."""

from __future__ import annotations

import re
import time

import alt42_expect as x
import pytest

UNITS = ("alt42-heartbeat", "alt42-heartbeat-prune")
UNIT_DIR = "/etc/systemd/system"
TEXTFILE = "/var/lib/prometheus/node-exporter/alt42_heartbeat.prom"
LOCK_DIR = "/var/lib/alt42-heartbeat"


def test_the_units_are_the_roles_and_systemd_reads_them(host):
    paths = [f"{UNIT_DIR}/{unit}.{kind}" for unit in UNITS for kind in ("service", "timer")]
    for path in paths:
        unit = host.file(path)
        assert unit.exists and unit.user == "root" and unit.mode == 0o644, path
    verified = host.run("systemd-analyze verify " + " ".join(paths))
    assert verified.rc == 0, verified.stdout + verified.stderr
    assert not host.file("/etc/cron.d/alt42-heartbeat").exists  # one schedule


def test_the_timers_follow_the_cron_schedules(host):
    for unit, calendar in (("alt42-heartbeat", "*-*-* *:*:00"), ("alt42-heartbeat-prune",
                                                                 "*-*-* 03:17:00")):  # fmt: skip
        timer = host.service(f"{unit}.timer")
        assert timer.is_enabled and timer.is_running, unit
        shown = host.check_output(f"systemctl show -p TimersCalendar --value {unit}.timer")
        assert f"OnCalendar={calendar} " in shown, shown
        assert "Persistent=yes" in host.check_output(f"systemctl show -p Persistent {unit}.timer")


@pytest.mark.parametrize("unit", UNITS)
def test_the_sandbox_rates_ok(host, unit):
    """`systemd-analyze security`: "OK" is an exposure below 4 (0 = fully locked down)."""
    out = host.check_output(f"systemd-analyze security --no-pager {unit}.service")
    level = re.search(rf"Overall exposure level for {unit}\.service: ([0-9.]+) (\S+)", out)
    assert level, out[-500:]
    assert float(level.group(1)) < 4.0 and level.group(2) == "OK", level.group(0)


@pytest.fixture(scope="module")
def timer_run(host):
    """The newest finished run the timer started (it fires every minute since converge;
    if none finished yet, one comes within a minute). Only the timer's runs write to the
    service's journal, so finding the run's id there proves the journal half."""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        journal = host.check_output("journalctl -u alt42-heartbeat.service --no-pager -o cat")
        rows = x.sql(host, (
            f"SELECT run_id, status, slot_start, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:00'),"
            f" UNIX_TIMESTAMP(created_at), exit_code FROM {x.HEARTBEAT_LOG}"
            " WHERE status <> 'running' ORDER BY id DESC"))  # fmt: skip
        by_timer = [row for row in rows if row[0] in journal]
        if by_timer:
            return by_timer[0]
        time.sleep(5)
    pytest.fail(
        "the timer started no run in 150 s: "
        + host.run(
            "systemctl status --no-pager alt42-heartbeat.timer alt42-heartbeat.service"
        ).stdout
    )


def test_the_timer_runs_the_job_for_its_slot(host, timer_run):
    _run_id, status, slot, started_minute, _started, exit_code = timer_run
    assert (status, exit_code) == ("success", "0"), timer_run
    assert slot == started_minute  # every minute: the slot is the minute it fired in


def test_the_run_wrote_the_log_and_the_journal(host, timer_run):
    run_id = timer_run[0]
    log = host.file(x.LOG_FILE)
    assert log.user == "www-data"
    assert run_id in log.content_string
    # and the journal (the fixture found the run there)


def test_the_run_took_the_host_lock_and_wrote_the_metrics(host, timer_run):
    locks = host.check_output(f"find {LOCK_DIR} -maxdepth 1 -type f -user www-data")
    assert locks.strip(), f"no lock file of www-data in {LOCK_DIR}"
    started = float(timer_run[4])
    journal = host.check_output("journalctl -u alt42-heartbeat.service --no-pager -o cat")
    assert "cannot write metrics file" not in journal  # the sandbox lets every run write it
    assert "ERROR" not in journal
    metrics = host.file(TEXTFILE)
    assert metrics.exists and metrics.user == "www-data"
    success = re.search(
        r"^alt42_heartbeat_last_success_timestamp_seconds (\S+)$", metrics.content_string, re.M
    )
    assert success and float(success.group(1)) >= started


def test_the_service_runs_as_www_data_inside_its_sandbox(host, timer_run):
    shown = host.check_output(
        "systemctl show -p User -p ProtectSystem -p NoNewPrivileges -p MemoryMax"
        " -p TimeoutStartUSec alt42-heartbeat.service"
    )
    assert "User=www-data" in shown and "ProtectSystem=strict" in shown
    assert "NoNewPrivileges=yes" in shown
    assert "MemoryMax=536870912" in shown
    assert "TimeoutStartUSec=6min" in shown  # max_run_minutes (1 for a minute) + 5
