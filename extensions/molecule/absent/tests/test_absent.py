"""State absent after a present install (prepare): everything removed but the logs."""

from __future__ import annotations

import alt42_expect as x
import pytest


@pytest.mark.parametrize(
    "path",
    [x.CRON_FILE, x.LOGROTATE_FILE, x.CONFIG_FILE, "/etc/alt42", x.INSTALL_DIR, x.VENV_DIR],
)
def test_removed(host, path):
    assert not host.file(path).exists, path


def test_no_alt42_file_left_in_cron_d(host):
    names = host.check_output("ls -1A /etc/cron.d").split()
    assert [n for n in names if "alt42" in n] == []


def test_no_crontab_entry_for_www_data(host):
    """prepare also put the job into www-data's crontab: absent removes either method."""
    crontab = host.run("crontab -l -u www-data")
    assert "alt42" not in crontab.stdout


def test_logs_are_kept(host):
    log_dir = host.file(x.LOG_DIR)
    assert log_dir.is_directory
    assert (log_dir.user, log_dir.group, log_dir.mode) == ("www-data", "www-data", 0o755)
    for name in ("heartbeat_cron.log", "heartbeat_cron.log.1"):
        log = host.file(f"{x.LOG_DIR}/{name}")
        assert log.content_string == f"kept after absent: {name}\n"


def test_password_gone_from_the_host(host):
    password = x.db_password()
    found = host.run(f"grep -rlsF -e {password!r} -- /etc /opt /var/log").stdout.split()
    assert found == []
