"""Two servers on one database (issue 5): the exact cron command started on both at once
gives one run for the slot; only the server that ran pings its monitor and writes metrics;
`status` is OK on both."""

from __future__ import annotations

import os
import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import alt42_expect as x
import pytest
import testinfra

A = "alt42-molecule-cluster-a"
B = "alt42-molecule-cluster-b"
PING_PATH = "/ping/5d1c7f0e-2b6a-4c1e-9f3a-0a42c1a5e7b9"
PINGS_FILE = "/var/tmp/monitor-pings.log"
METRICS_FILE = "/var/lib/alt42-metrics/alt42_heartbeat.prom"
ACTIVE_STUDENTS = 8


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host(f"podman://{name}") for name in (A, B)}


def pings(host) -> list[str]:
    f = host.file(PINGS_FILE)
    return f.content_string.splitlines() if f.exists else []


@pytest.fixture(scope="module")
def race(hosts):
    """migrate once on a, then the exact cron command on both servers at the same time."""
    migrate = hosts[A].run(x.as_www_data(f"{x.CLI} --config {x.CONFIG_FILE} migrate"))
    assert migrate.rc == 0, migrate
    assert x.sql(hosts[A], f"SELECT COUNT(*) FROM {x.HEARTBEAT_LOG}") == [["0"]]
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
    rows = x.sql(
        hosts[A], f"SELECT status, host, students_processed, slot_start FROM {x.HEARTBEAT_LOG}"
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


def play_output(run) -> str:
    return run.stdout + run.stderr


def test_the_schema_is_migrated_once_for_the_site(hosts, race):
    """One site, two servers: the play migrates on the first server of the site only."""
    hosts[A].check_output(
        f"mariadb moodle -e {shlex.quote(f'ALTER TABLE {x.HEARTBEAT_LOG} DROP COLUMN version')}"
    )
    run = x.ansible_playbook()
    out = play_output(run)
    assert run.returncode == 0, out[-3000:]
    task = out.split("Migrate | Bring the site's schema to this release]", 1)[1].split("TASK [", 1)[
        0
    ]
    assert f"changed: [{A}]" in task, task
    assert f"skipping: [{B}]" in task, task
    columns = {row[0] for row in x.sql(hosts[A], f"SHOW COLUMNS FROM {x.HEARTBEAT_LOG}")}
    assert "version" in columns


def test_a_host_that_fails_its_deploy_stops_the_rollout(hosts, race):
    """playbooks/heartbeat.yml deploys one server after the other (serial 1 here, 50% by
    default) and stops at the first failure: a's deploy fails (a value its job refuses),
    so b is never touched, and both servers still have their job scheduled and running
    (a's configuration was not changed)."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    broken = inventory / "host_vars" / f"{A}.yml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text("alt42_heartbeat_monitoring_mail_to: ['not an address']\n", encoding="utf-8")
    before = hosts[A].file(x.CONFIG_FILE).sha256sum
    try:
        run = x.ansible_playbook(
            playbook="playbooks/heartbeat.yml",
            extra_vars={"alt42_heartbeat_hosts": "all", "alt42_heartbeat_serial": 1},
        )
    finally:
        broken.unlink()
    out = play_output(run)
    assert run.returncode != 0, out[-3000:]
    assert "'not an address' is not a mail address" in out
    assert hosts[A].file(x.CONFIG_FILE).sha256sum == before
    recap = out.split("PLAY RECAP", 1)[1]
    assert re.search(rf"^{re.escape(A)} +: .*failed=1", recap, re.MULTILINE), recap
    assert B not in recap, recap
    assert f"[{B}]" not in out, "the rollout went on to the next server"
    for name, host in hosts.items():
        assert x.cron_job(host).command == x.expected_command(), name
        result = host.run(x.as_www_data(x.expected_command()))
        assert result.rc == 0, (name, result)
