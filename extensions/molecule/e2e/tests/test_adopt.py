"""Adoption: the server came from the seed manual (prepare.yml: heartbeat.php in root's
crontab with its mail suffix, in www-data's crontab beside Moodle's cron, in
/etc/cron.d/alt42-heartbeat, every minute; the log root's). cron has run since prepare,
through converge: now exactly one heartbeat runs per slot, the role's.

These tests run before test_e2e.py (file order) and stop cron at the end, which the
others expect."""

from __future__ import annotations

import json
import time

import alt42_expect as x
import pytest

MARKER = "#alt42-heartbeat retired# "
MANUAL_LINE = f"/usr/bin/php {x.PHP_SCRIPT} >> {x.LOG_FILE} 2>&1"
MOODLE_CRON = "* * * * * /usr/bin/php /var/www/moodle/admin/cli/cron.php >/dev/null 2>&1"


@pytest.fixture(scope="module", autouse=True)
def cron_runs_until_the_end(host):
    """cron runs since prepare; the tests after these expect it stopped."""
    yield
    host.run("service cron stop")


def crontab(host, user: str) -> list[str]:
    return host.check_output(f"crontab -l -u {user}").splitlines()


def test_every_schedule_of_the_php_job_is_retired_and_nothing_else_changed(host):
    root = crontab(host, "root")
    assert f"{MARKER}* * * * * {MANUAL_LINE} || echo" in "\n".join(root)
    assert [line for line in root if "heartbeat.php" in line and not line.startswith(MARKER)] == []
    www = crontab(host, "www-data")
    assert www == [MOODLE_CRON, f"{MARKER}* * * * * {MANUAL_LINE}"]  # Moodle's line as it was
    manual = host.file("/etc/cron.d/alt42-heartbeat-manual")
    assert (manual.user, manual.mode) == ("root", 0o644)
    assert manual.content_string.splitlines() == [
        "SHELL=/bin/bash",
        "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
        f"{MARKER}* * * * * www-data {MANUAL_LINE}",
    ]
    # the role's own file, with the adopted schedule
    assert x.cron_job(host).schedule == "* * * * *"
    record = json.loads(host.check_output(f"cat {x.CURRENT}/php-schedules.json"))
    entries = record["php_schedules"]
    assert len(entries) == 3 and not any(e["active"] for e in entries), entries


def _rows_after(host, first_id: int) -> list[list[str]]:
    return x.sql(
        host,
        f"SELECT id, status, slot_start, finished_at FROM {x.HEARTBEAT_LOG}"
        f" WHERE id > {first_id} ORDER BY id",
    )


def test_exactly_one_heartbeat_runs_per_slot(host):
    """Two cron minutes: the role's job once in each, the PHP job never (it ran every
    minute before: prepare waited for its rows)."""
    [[first]] = x.sql(host, f"SELECT COALESCE(MAX(id), 0) FROM {x.HEARTBEAT_LOG}")
    deadline = time.monotonic() + 160
    rows = _rows_after(host, int(first))
    while time.monotonic() < deadline:
        rows = _rows_after(host, int(first))
        finished = [r for r in rows if r[3] != "NULL"]
        if len(finished) >= 2:
            break
        time.sleep(3)
    assert len([r for r in rows if r[3] != "NULL"]) >= 2, rows
    assert [r for r in rows if r[1] == "NULL"] == [], "a PHP-era row: the PHP job still runs"
    assert {r[1] for r in rows} <= {"success", "running"}, rows
    slots = [r[2] for r in rows]
    assert len(slots) == len(set(slots)), f"two runs in one slot: {rows}"


def test_the_php_eras_rows_are_still_reported(host):
    out = host.check_output(
        x.as_www_data(f"{x.CLI} --config {x.CONFIG_FILE} report --hours 1 --format json")
    )
    runs = json.loads(out)["executions"]
    assert len([r for r in runs if r["status"] == ""]) >= 1, runs
    assert len([r for r in runs if r["status"] == "success"]) >= 2, runs


def test_status_is_ok_right_after_the_switch(host):
    """The PHP job's rows before the switch are history, not a second job."""
    result = host.run(x.as_www_data(f"{x.CLI} --config {x.CONFIG_FILE} status"))
    assert result.rc == 0, result.stdout
    assert result.stdout.startswith("HEARTBEAT OK - last run 8 students"), result.stdout


def test_the_log_is_the_jobs_and_a_root_owned_one_costs_a_run_only_its_log(host):
    log = host.file(x.LOG_FILE)
    assert (log.user, log.group, log.mode) == ("www-data", "www-data", 0o644)
    assert "Completed: 8 processed, 0 errors" in log.content_string
    # What the root line did after every rotation: the file is root's again.
    command = x.cron_job(host).command + " --force"
    [[before]] = x.sql(host, f"SELECT COUNT(*) FROM {x.HEARTBEAT_LOG}")
    host.check_output(f"chown root:root {x.LOG_FILE}")
    try:
        result = host.run(x.as_www_data(command))
    finally:
        host.check_output(f"chown www-data:www-data {x.LOG_FILE}")
    assert result.rc == 1, result
    assert f"ERROR: cannot append to the log {x.LOG_FILE}: Permission denied" in result.stderr
    assert "(owner root:root, mode 0644; this job runs as www-data)" in result.stderr
    assert "Completed: 8 processed, 0 errors" in result.stdout
    [[after]] = x.sql(host, f"SELECT COUNT(*) FROM {x.HEARTBEAT_LOG}")
    assert int(after) >= int(before) + 1
    [[status]] = x.sql(host, f"SELECT status FROM {x.HEARTBEAT_LOG} ORDER BY id DESC LIMIT 1")
    assert status == "success"
    # and the admin hears of it (failure mail to ops, molecule.yml): then an empty mailbox
    # for the mail tests of test_e2e.py
    mailbox = "/var/mail/ops"
    deadline = time.monotonic() + 30
    while "could not be opened" not in host.run(f"cat {mailbox}").stdout:
        assert time.monotonic() < deadline, "no failure mail about the log"
        time.sleep(1)
    host.check_output(f": > {mailbox}")
