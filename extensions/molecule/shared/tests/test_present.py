"""A converged host (state present): files, owners, modes, cron entry, logrotate, secrets.

Shared by the default, debian11, debian13, php and e2e scenarios (additional_files_or_dirs).
"""

from __future__ import annotations

import re
import uuid

import alt42_expect as x
import pytest

python_only = pytest.mark.skipif(x.runtime() != "python", reason="python runtime only")


cron_d_only = pytest.mark.skipif(x.cron_method() != "cron_d", reason="cron_d method only")
crontab_only = pytest.mark.skipif(x.cron_method() != "crontab", reason="crontab method only")


@cron_d_only
def test_cron_file_is_root_owned_0644_without_dot_in_name(host):
    cron_file = host.file(x.CRON_FILE)
    assert cron_file.is_file
    assert (cron_file.user, cron_file.group, cron_file.mode) == ("root", "root", 0o644)
    # cron reads only names without a dot: exactly one of ours, besides the seed manual's
    # own file that the role set aside (e2e), its PHP line retired.
    names = host.check_output("ls -1A /etc/cron.d").split()
    ours = [n for n in names if "alt42" in n and "." not in n and n != "alt42-heartbeat-manual"]
    assert ours == ["alt42-heartbeat"]


@cron_d_only
def test_cron_file_ends_with_newline(host):
    last_byte = host.check_output(f"tail -c 1 {x.CRON_FILE} | od -An -tx1").strip()
    assert last_byte == "0a"


@crontab_only
def test_crontab_of_www_data_and_no_cron_d_file(host):
    spool = host.file("/var/spool/cron/crontabs/www-data")
    assert (spool.user, spool.group, spool.mode) == ("www-data", "crontab", 0o600)
    assert spool.content_string.endswith("\n")
    assert not host.file(x.CRON_FILE).exists, "exactly one schedule"


@cron_d_only
def test_cron_file_sets_shell_path_mailto(host):
    env, _ = x.cron_env_and_jobs(host)
    assert env.get("SHELL") == "/bin/sh"
    path = env.get("PATH", "").split(":")
    assert "/usr/bin" in path
    assert "/bin" in path
    assert env.get("MAILTO") == "", "no mail: the output goes to the log"


@cron_d_only
def test_no_backup_of_the_cron_file_piles_up(host):
    """The role sets the manual's file aside (alt42-heartbeat-manual) instead of keeping
    backups, and removes those that releases before 0.3.0 left."""
    backups = host.run("ls -1A /etc/cron.d | grep -c '^alt42-heartbeat\\..*~$'").stdout.strip()
    assert int(backups or 0) == 0


@crontab_only
def test_crontab_keeps_the_other_entries_and_their_environment(host):
    """Moodle's cron entry and the site's MAILTO stay as prepare wrote them; release
    0.1.0's SHELL/PATH lines (which changed Moodle's entry too) are gone, none added."""
    lines = x.cron_text(host).splitlines()
    assert "* * * * * /usr/bin/php /var/www/moodle/admin/cli/cron.php >/dev/null" in lines
    assert "MAILTO=moodle-admin@example.org" in lines
    env = [line for line in lines if re.match(r"^[A-Za-z_]+=", line)]
    assert env == ["MAILTO=moodle-admin@example.org"], env


def test_cron_line_runs_the_job_as_www_data(host):
    job = x.cron_job(host)
    assert job.schedule == x.schedule()
    assert job.user == "www-data"
    assert job.command == x.expected_command()


def test_prune_is_scheduled_daily_for_the_python_runtime(host):
    prunes = x.prune_jobs(host)
    if x.runtime() != "python":
        assert prunes == [], "the legacy PHP job has no prune"
        return
    assert [(job.schedule, job.user) for job in prunes] == [(x.PRUNE_SCHEDULE, "www-data")]


def test_log_dir_owner_and_mode(host):
    log_dir = host.file(x.LOG_DIR)
    assert log_dir.is_directory
    assert (log_dir.user, log_dir.group, log_dir.mode) == ("www-data", "www-data", 0o755)


def test_logrotate_file(host):
    conf = host.file(x.LOGROTATE_FILE)
    assert conf.is_file
    assert conf.user == "root"
    assert conf.mode & 0o022 == 0, "logrotate ignores group/world-writable files"
    words = [line.split() for line in conf.content_string.splitlines()]
    directives = {w[0] for w in words if w}
    for wanted in ("daily", "compress", "delaycompress", "missingok", "notifempty"):
        assert wanted in directives, wanted
    assert ["rotate", "30"] in words
    assert ["su", "www-data", "www-data"] in words
    assert ["create", "0644", "www-data", "www-data"] in words, "the next log is the job's"
    assert any(w and w[0].startswith(x.LOG_DIR + "/") for w in words), "stanza for the log dir"


def test_logrotate_debug_run_is_clean(host):
    result = host.run(f"logrotate -d {x.LOGROTATE_FILE}")
    # A host where logrotate never ran has no state file yet (logrotate 3.18 calls it an error).
    output = "\n".join(
        line
        for line in (result.stdout + result.stderr).lower().splitlines()
        if not re.search(r"error opening state file .*: no such file or directory", line)
    )
    assert result.rc == 0, output
    assert "error" not in output, output
    assert "insecure" not in output, output
    assert x.LOG_DIR in output, "the debug run must consider our log"


@pytest.mark.skipif(x.with_database(), reason="the e2e scenario runs it against its database")
def test_the_cron_command_runs_as_www_data(host):
    """Run the exact command of the cron entry the way cron would (no DB here)."""
    job = x.cron_job(host)
    before = host.run(f"wc -c < {x.LOG_FILE}").stdout.strip() or "0"
    result = host.run(x.as_www_data(job.command))
    if x.runtime() == "python":
        # No database in this container: the job must get as far as connecting (the
        # config is readable and valid for www-data) and report a database error.
        assert result.rc == 3, result
    else:
        assert result.rc == 0, result
    log = host.file(x.LOG_FILE)
    assert log.user == "www-data"
    assert log.size > int(before), "the job's output is appended to the log"


def test_forced_rotation_keeps_the_data(host):
    marker = f"alt42-rotation-{uuid.uuid4().hex}"
    write = x.as_www_data(f"for i in 1 2 3; do echo {marker} $i >> {x.LOG_FILE}; done")
    host.check_output(write)
    result = host.run(f"logrotate -f -s /tmp/alt42-logrotate.state {x.LOGROTATE_FILE}")
    assert result.rc == 0, result
    live = host.run(f"grep -c {marker} {x.LOG_FILE}")
    assert live.stdout.strip() in ("", "0"), "the live log was not rotated"
    rotated = host.check_output(f"zcat -f {x.LOG_FILE}.* | grep -c {marker}")
    assert rotated == "3", "the rotated file must hold every line"
    fresh = host.file(x.LOG_FILE)
    assert (fresh.user, fresh.group, fresh.mode) == ("www-data", "www-data", 0o644)
    assert host.run(x.as_www_data(f": >> {x.LOG_FILE}")).rc == 0


@python_only
def test_config_file_owner_mode_and_password(host):
    """The release's own INI, beside its venv; /etc/alt42/heartbeat.ini links to the
    current release's (one rename of `current` switches code and configuration)."""
    release = host.file(x.CURRENT).linked_to
    assert host.check_output(f"readlink {x.CONFIG_FILE}") == f"{x.CURRENT}/heartbeat.ini"
    assert host.file(x.CONFIG_FILE).linked_to == f"{release}/heartbeat.ini"
    conf = host.file(f"{release}/heartbeat.ini")
    assert conf.is_file
    assert (conf.user, conf.group, conf.mode) == ("root", "www-data", 0o640)
    assert x.db_password() in conf.content_string, "the password from the variable"
    assert host.run(x.as_www_data(f"cat {x.CONFIG_FILE} > /dev/null")).rc == 0
    assert host.run(f"runuser -u nobody -- cat {x.CONFIG_FILE}").rc != 0


@python_only
def test_database_settings_are_written_only_where_set(host):
    """The INI names config.php and holds no guessed host, name, user or prefix."""
    text = host.file(x.CONFIG_FILE).content_string
    database = text.split("[database]", 1)[1].split("[heartbeat]", 1)[0]
    keys = [line.split("=", 1)[0].strip() for line in database.splitlines() if "=" in line]
    site = x.moodle_site()
    if site:
        assert keys == ["moodle_config", "password"], keys
    else:
        assert keys == ["name", "user", "password"], keys
    assert f"schedule = {x.schedule()}" in text


@pytest.mark.skipif(not x.moodle_site(), reason="no config.php in this scenario")
def test_the_job_reads_the_database_identity_from_config_php(host):
    name, user = x.moodle_site()
    result = host.run(x.as_www_data(f"{x.CLI} --config {x.CONFIG_FILE} check --config-only"))
    assert result.rc == 0, result
    assert f"OK database database '{name}' as '{user}' on " in result.stdout, result.stdout


@python_only
def test_the_job_as_cron_starts_it_reads_its_releases_own_ini(host):
    """cron names no INI: the release reads the one beside its venv, by the release's
    own path (its script's interpreter), not through `current`."""
    release = host.file(x.CURRENT).linked_to
    out = host.check_output(x.as_www_data(f"{x.CLI} check --config-only"))
    assert f"OK config {release}/heartbeat.ini" in out, out


@python_only
def test_venv_is_not_writable_by_the_job_user(host):
    release = host.file(x.CURRENT).linked_to
    assert release.startswith(f"{x.INSTALL_DIR}/releases/{x.project_version()}-"), release
    for path in (x.INSTALL_DIR, f"{x.INSTALL_DIR}/releases", release, f"{release}/venv/bin", x.CLI):
        item = host.file(path)
        assert item.exists, path
        assert item.user == "root", path
        assert item.mode & 0o022 == 0, f"{path} is group/world-writable"


@python_only
def test_cli_version_is_the_project_version(host):
    result = host.run(f"{x.CLI} --version")
    assert result.rc == 0, result
    assert x.project_version() in result.stdout + result.stderr


def test_password_not_in_world_readable_files(host):
    assert x.world_readable_files_containing(host, x.db_password()) == []


@python_only
def test_the_host_lock_lives_where_only_the_job_can_create_it(host):
    """Not the world-writable /run/lock, where any local user could hold the job's lock
    (runs skipped silently) or root's umask 027 made it unreadable for www-data."""
    lock_dir = host.file("/var/lib/alt42-heartbeat")
    assert (lock_dir.user, lock_dir.group, lock_dir.mode) == ("www-data", "www-data", 0o750)
    out = host.check_output(x.as_www_data(f"{x.CLI} --config {x.CONFIG_FILE} check --config-only"))
    assert "OK host lock /var/lib/alt42-heartbeat/alt42-heartbeat-" in out
