"""Runtime php: the legacy heartbeat.php scheduled with PHP, and kept off the web."""

from __future__ import annotations

import alt42_expect as x

HTACCESS = "/var/www/moodle/local/alt42/.htaccess"


def test_cron_line_runs_php_on_the_script(host):
    job = x.cron_job(host)
    assert job.command.split()[:2] == [x.PHP_BINARY, x.PHP_SCRIPT]
    assert job.user == "www-data"


def test_php_runs_the_script_as_www_data(host):
    out = host.check_output(x.as_www_data(f"{x.PHP_BINARY} {x.PHP_SCRIPT}"))
    uid = host.user("www-data").uid
    assert out.startswith(f"heartbeat.php ran with uid {uid} php ")


def test_htaccess_denies_the_script(host):
    htaccess = host.file(HTACCESS)
    assert htaccess.is_file
    assert (htaccess.user, htaccess.mode & 0o022) == ("root", 0)
    lines = [line.strip() for line in htaccess.content_string.splitlines()]
    start = lines.index('<Files "heartbeat.php">')
    end = lines.index("</Files>", start)
    assert "Require all denied" in lines[start:end]


def test_no_python_install_for_the_php_runtime(host):
    assert not host.file(x.VENV_DIR).exists
    assert not host.file(x.CONFIG_FILE).exists
