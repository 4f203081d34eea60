"""Two servers on one database (issue 5): the exact cron command started on both at once
gives one run for the slot; only the server that ran pings its monitor and writes metrics;
`status` is OK on both."""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor

import alt42_expect as x
import pytest
import testinfra

A = "alt42-molecule-cluster-a"
B = "alt42-molecule-cluster-b"
PING_PATH = "/ping/5d1c7f0e-2b6a-4c1e-9f3a-0a42c1a5e7b9"
PINGS_FILE = "/var/tmp/monitor-pings.log"
METRICS_FILE = "/var/lib/alt42-metrics/alt42_heartbeat.prom"
HEARTBEAT_LOG = "mdl_alt42_heartbeat_log"
ACTIVE_STUDENTS = 8


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host(f"podman://{name}") for name in (A, B)}


def sql(host, query: str) -> list[list[str]]:
    out = host.check_output(f"mariadb -N -B moodle -e {shlex.quote(query)}")
    return [line.split("\t") for line in out.splitlines() if line]


def pings(host) -> list[str]:
    f = host.file(PINGS_FILE)
    return f.content_string.splitlines() if f.exists else []


@pytest.fixture(scope="module")
def race(hosts):
    """migrate once on a, then the exact cron command on both servers at the same time."""
    migrate = hosts[A].run(x.as_www_data(f"{x.CLI} --config {x.CONFIG_FILE} migrate"))
    assert migrate.rc == 0, migrate
    assert sql(hosts[A], f"SELECT COUNT(*) FROM {HEARTBEAT_LOG}") == [["0"]]
    commands = {}
    for name, host in hosts.items():
        job = x.cron_job(host)
        assert job.command == x.expected_command()
        assert job.user == "www-data"
        assert pings(host) == [], "no ping before the runs"
        assert not host.file(METRICS_FILE).exists
        commands[name] = x.as_www_data(f"timeout 120 sh -c {shlex.quote(job.command)}")
    # Both runs must fall in one 30-minute slot: keep clear of a slot boundary.
    to_boundary = 1800 - time.time() % 1800
    if to_boundary < 15:
        time.sleep(to_boundary + 2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(hosts[n].run, c) for n, c in commands.items()}
        results = {n: f.result() for n, f in futures.items()}
    logs = {n: hosts[n].file(x.LOG_FILE).content_string for n in hosts}
    for name, result in results.items():
        assert result.rc == 0, (name, result, logs[name])
    skipped = [n for n in hosts if "Skipped: " in logs[n]]
    assert len(skipped) == 1, logs
    loser = skipped[0]
    winner = B if loser == A else A
    return winner, loser, logs


def test_one_run_for_the_slot(hosts, race):
    winner, loser, logs = race
    rows = sql(
        hosts[A], f"SELECT status, host, students_processed, slot_start FROM {HEARTBEAT_LOG}"
    )
    assert len(rows) == 1, rows
    status, host, processed, _ = rows[0]
    assert status == "success"
    assert host == hosts[winner].check_output("hostname")
    assert int(processed) == ACTIVE_STUDENTS
    assert sum("] Skipped: " in line for line in logs[loser].splitlines()) == 1, logs[loser]
    assert "Skipped: " not in logs[winner], logs[winner]


def test_only_the_server_that_ran_pings(hosts, race):
    winner, loser, _ = race
    sent = pings(hosts[winner])
    assert any(p.startswith(f"{PING_PATH}/start?rid=") for p in sent), sent
    assert any(p.startswith(f"{PING_PATH}?rid=") for p in sent), sent
    assert not any(p.startswith(f"{PING_PATH}/fail") for p in sent), sent
    assert pings(hosts[loser]) == []


def test_metrics_textfile_on_the_server_that_ran(hosts, race):
    winner, loser, _ = race
    metrics = hosts[winner].file(METRICS_FILE)
    assert metrics.exists
    assert metrics.mode == 0o644
    lines = metrics.content_string.splitlines()
    assert f"alt42_heartbeat_students_processed {ACTIVE_STUDENTS}" in lines, lines
    assert not hosts[loser].file(METRICS_FILE).exists


@pytest.mark.parametrize("name", [A, B])
def test_status_ok_on_both(hosts, race, name):
    result = hosts[name].run(x.as_www_data(f"{x.CLI} --config {x.CONFIG_FILE} status"))
    assert result.rc == 0, result
    assert any(line.startswith("HEARTBEAT OK") for line in result.stdout.splitlines()), result
