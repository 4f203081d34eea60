"""Upgrades that cannot half-happen: release 0.1.0 (installed by its own role) upgraded
by this role, rolled back and upgraded again while cron and a loop keep starting the
job; a failed upgrade that leaves the running release alone; a venv whose interpreter
is gone, rebuilt."""

from __future__ import annotations

import os
import shlex
import time

import alt42_expect as x

OLD = os.environ.get("ALT42_TEST_FROM_VERSION", "0.1.0")
LEGACY = f"{x.INSTALL_DIR}/releases/{OLD}-legacy"
CODES = "/var/tmp/alt42-loop.codes"
FLAG = "/var/tmp/alt42-loop.on"


def current(host) -> str:
    return host.file(x.CURRENT).linked_to


def play(host, **extra_vars):
    run = x.ansible_playbook(extra_vars=extra_vars)
    return run, run.stdout + run.stderr


def tail(text: str) -> str:
    return "\n".join(text.splitlines()[-40:])


def test_the_upgrade_installed_the_release_beside_the_old_one(host):
    release = current(host)
    assert release.startswith(f"{x.INSTALL_DIR}/releases/{x.project_version()}-"), release
    assert release.endswith("-py3.11")
    # 0.1.0's venv stays where runs of it may still be going on, listed as a release
    assert host.file(f"{LEGACY}/venv").linked_to == f"{x.INSTALL_DIR}/venv"
    assert x.cron_job(host).command == x.expected_command()
    # the new release's schema, migrated by migrate's own account before the switch
    columns = {r[0] for r in x.sql(host, f"SHOW COLUMNS FROM {x.HEARTBEAT_LOG}")}
    assert "version" in columns
    assert f"schedule = {x.schedule()}" in host.file(x.CONFIG_FILE).content_string
    # the INI 0.1.0 ran with moved into its directory, beside its venv (a roll back gets
    # its own INI; /etc/alt42/heartbeat.ini links to the current release's)
    kept = host.file(f"{LEGACY}/heartbeat.ini")
    assert (kept.user, kept.group, kept.mode) == ("root", "www-data", 0o640)
    assert "schedule =" not in kept.content_string and "[database]" in kept.content_string
    assert host.file(x.CONFIG_FILE).linked_to == f"{release}/heartbeat.ini"
    assert not host.file("/etc/alt42/php-schedules.json").exists  # beside the release's INI now


def start_loop(host):
    """Start what cron starts (the job's line of the cron file, read anew each time: its
    form follows the release) every 2 s as www-data, its exit codes into CODES."""
    line = f"sed -n 's/^[^#]* www-data \\(.* run\\b.*\\)$/\\1/p' {x.CRON_FILE} | head -n 1"
    command = f'runuser -u www-data -- sh -c "$({line})"'
    loop = (
        f"touch {FLAG}; : > {CODES};"
        f" while [ -e {FLAG} ]; do {command}; echo $? >> {CODES}; sleep 2; done"
    )
    host.check_output(f"setsid nohup sh -c {shlex.quote(loop)} > /dev/null 2>&1 &")


def stop_loop(host) -> list[int]:
    host.check_output(f"rm -f {FLAG}")
    time.sleep(5)  # the iteration in flight ends
    return [int(code) for code in host.file(CODES).content_string.split()]


def test_upgrades_and_rollbacks_while_the_job_keeps_starting(host):
    new = current(host)
    rows_before = int(x.sql(host, f"SELECT COUNT(*) FROM {x.HEARTBEAT_LOG}")[0][0])
    start_loop(host)
    try:
        # once here: the next two tests roll back and upgrade again (their history)
        run, out = play(host, alt42_heartbeat_version=OLD)
        assert run.returncode == 0, tail(out)
        assert current(host) == LEGACY
        assert host.check_output(f"{x.CLI} --version").split()[-1] == OLD
        assert "schedule =" not in host.file(x.CONFIG_FILE).content_string  # 0.1.0's INI
        assert x.cron_job(host).command.endswith(f" run >> {x.LOG_FILE} 2>&1")  # its line
        time.sleep(8)  # the loop runs the old release a few times
        run, out = play(host, alt42_heartbeat_version="")
        assert run.returncode == 0, tail(out)
        assert current(host) == new
        time.sleep(8)
        # a change of settings alone: the current release's INI, replaced in one rename
        run, out = play(host, alt42_heartbeat_settings={"heartbeat": {"batch_size": 250}})
        assert run.returncode == 0, tail(out)
        assert current(host) == new
        assert "batch_size = 250" in host.file(x.CONFIG_FILE).content_string
        time.sleep(6)
    finally:
        codes = stop_loop(host)
    assert len(codes) >= 10, codes
    assert set(codes) == {0}, codes  # ran or skipped, never failed
    log = host.file(x.LOG_FILE).content_string
    assert "Traceback" not in log
    assert "ERROR" not in log
    statuses = x.sql(host, f"SELECT status, COUNT(*) FROM {x.HEARTBEAT_LOG} GROUP BY status")
    assert {row[0] for row in statuses} <= {"success", "NULL"}, statuses
    versions = {
        r[0] for r in x.sql(host, f"SELECT DISTINCT IFNULL(version, 'none') FROM {x.HEARTBEAT_LOG}")
    }
    assert x.project_version() in versions  # the new release's runs say so
    assert int(x.sql(host, f"SELECT COUNT(*) FROM {x.HEARTBEAT_LOG}")[0][0]) > rows_before


def test_a_config_only_play_never_leaves_cron_an_ini_its_release_refuses(host):
    """`--tags alt42_heartbeat_config` (the role README's example) on a host that still
    runs the old release: before, it wrote the new release's keys, and every cron run of
    the old release exited 2 while the play said ok. (The old release stays for the next
    test.)"""
    run, out = play(host, alt42_heartbeat_version=OLD)
    assert run.returncode == 0, tail(out)
    run = x.ansible_playbook("--tags", "alt42_heartbeat_config")
    assert run.returncode == 0, tail(run.stdout + run.stderr)
    assert current(host) == LEGACY, "the switch is not part of that tag"
    assert "schedule =" not in host.file(x.CONFIG_FILE).content_string
    result = host.run(x.as_www_data(x.cron_job(host).command))
    assert result.rc == 0, result


def test_a_failed_upgrade_leaves_the_running_release_alone(host):
    if current(host) != LEGACY:
        run, out = play(host, alt42_heartbeat_version=OLD)
        assert run.returncode == 0, tail(out)
    try:
        wrong = "not-the-password"  # a wrong one, on purpose
        run, out = play(host, alt42_heartbeat_migrate_db_password=wrong)
        assert run.returncode != 0, tail(out)
        assert wrong not in out
        assert current(host) == LEGACY, "the old release stays scheduled"
        result = host.run(x.as_www_data(x.cron_job(host).command))
        assert result.rc == 0, result  # and runs
    finally:
        run, out = play(host, alt42_heartbeat_version="")
        assert run.returncode == 0, tail(out)


def test_a_venv_whose_interpreter_is_gone_is_rebuilt(host):
    """After a Debian upgrade the venv's interpreter (python3.11) is gone: the release
    does not run any more, and the next play builds its venv afresh."""
    release = current(host)
    host.check_output(f"ln -sfn /usr/bin/python3.9 {release}/venv/bin/python3.11")
    host.check_output(f"ln -sfn python3.11 {release}/venv/bin/python3")
    host.check_output(f"ln -sfn python3.11 {release}/venv/bin/python")
    broken = host.run(x.as_www_data(x.expected_command()))
    assert broken.rc != 0
    run, out = play(host)
    assert run.returncode == 0, tail(out)
    assert current(host) == release
    assert host.file(f"{release}/venv/bin/python").linked_to.startswith("/usr/bin/python3")
    fixed = host.run(x.as_www_data(x.expected_command()))
    assert fixed.rc == 0, fixed


def test_old_releases_beyond_the_kept_ones_go_when_unused(host):
    run, out = play(host, alt42_heartbeat_releases_kept=0)
    assert run.returncode == 0, tail(out)
    names = host.check_output(f"ls -1 {x.INSTALL_DIR}/releases").split()
    assert names == [current(host).rsplit("/", 1)[-1]], names
    assert not host.file(f"{x.INSTALL_DIR}/venv").exists  # 0.1.0's venv went with it
