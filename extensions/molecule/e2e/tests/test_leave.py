"""The way back, last of all (file order: after test_e2e.py): state absent leaves the
PHP job retired and says the host has no heartbeat, or, asked, restores it, and cron
runs it again."""

from __future__ import annotations

import time

import alt42_expect as x
from test_adopt import MANUAL_LINE, MARKER, MOODLE_CRON


def test_absent_says_when_it_leaves_the_host_without_a_heartbeat(host):
    run = x.ansible_playbook(extra_vars={"alt42_heartbeat_state": "absent"})
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "runs no heartbeat now: the role's job is removed and no line" in " ".join(out.split())
    assert not host.file(x.CRON_FILE).exists
    root = host.check_output("crontab -l -u root")
    assert f"{MARKER}* * * * * {MANUAL_LINE} || echo" in root, "still retired"
    assert host.file("/etc/cron.d/alt42-heartbeat-manual").exists


def test_absent_with_restore_brings_the_php_job_back_and_cron_runs_it(host):
    run = x.ansible_playbook(
        extra_vars={"alt42_heartbeat_state": "absent", "alt42_heartbeat_restore_php": True}
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "runs no heartbeat" not in out
    root = host.check_output("crontab -l -u root").splitlines()
    assert f'* * * * * {MANUAL_LINE} || echo "Heartbeat failed at $(date)"' in "\n".join(root)
    assert not any(line.startswith(MARKER) for line in root)
    assert host.check_output("crontab -l -u www-data").splitlines() == [
        MOODLE_CRON,
        f"* * * * * {MANUAL_LINE}",
    ]
    manual = host.file("/etc/cron.d/alt42-heartbeat-manual").content_string
    assert f"* * * * * www-data {MANUAL_LINE}" in manual.splitlines()
    [[first]] = x.sql(host, f"SELECT COALESCE(MAX(id), 0) FROM {x.HEARTBEAT_LOG}")
    assert host.run("service cron start").rc == 0
    try:
        deadline = time.monotonic() + 80
        php = []
        while time.monotonic() < deadline and len(php) < 3:
            php = x.sql(
                host,
                f"SELECT id FROM {x.HEARTBEAT_LOG} WHERE id > {first} AND status IS NULL",
            )
            time.sleep(3)
    finally:
        host.run("service cron stop")
    assert len(php) >= 3, "the three restored lines run heartbeat.php again"
