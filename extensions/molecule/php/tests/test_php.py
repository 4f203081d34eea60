"""Runtime php: the legacy heartbeat.php scheduled with PHP, and kept off the web."""

from __future__ import annotations

import alt42_expect as x
import pytest

HTACCESS = f"{x.PHP_SCRIPT.rsplit('/', 1)[0]}/.htaccess"


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


APACHE = "http://127.0.0.1"
NGINX = "http://127.0.0.1:8080"
# The seed manual's tree: Moodle in /home/moodle/public_html/moodle (prepare.yml).
SCRIPT_URL = x.PHP_SCRIPT.removeprefix("/home/moodle/public_html/moodle")
APACHE_CONF = "/etc/apache2/conf-enabled/alt42-heartbeat.conf"


def fetch(host, url: str) -> tuple[int, str]:
    """HTTP status and body of a GET from inside the container."""
    out = host.check_output(f"curl -s -w '\\n%{{http_code}}' {url}")
    body, _, code = out.rpartition("\n")
    return int(code), body


@pytest.mark.parametrize("server", [APACHE, NGINX])
def test_heartbeat_php_cannot_be_fetched_over_http(host, server):
    code, body = fetch(host, server + SCRIPT_URL)
    assert code == 403, body
    assert "heartbeat.php ran" not in body and "<?php" not in body


@pytest.mark.parametrize(("server", "served"), [(APACHE, "version.php ran"), (NGINX, "<?php")])
def test_the_rest_of_the_plugin_is_still_served(host, server, served):
    """The same directory answers: the 403 above is the role's, not a dead server's."""
    code, body = fetch(host, server + SCRIPT_URL.replace("heartbeat.php", "version.php"))
    assert (code, served in body) == (200, True), body


def test_each_apache_protection_holds_alone(host):
    """The .htaccess block (AllowOverride) and the conf-enabled snippet each deny it."""
    try:
        host.check_output(f"mv {APACHE_CONF} /root/alt42-conf.off && service apache2 reload")
        assert fetch(host, APACHE + SCRIPT_URL)[0] == 403, "the .htaccess block alone"
    finally:
        host.check_output(f"mv /root/alt42-conf.off {APACHE_CONF} && service apache2 reload")
    try:
        host.check_output(f"mv {HTACCESS} /root/alt42-htaccess.off")
        assert fetch(host, APACHE + SCRIPT_URL)[0] == 403, "the conf snippet alone"
        host.check_output(f"mv {APACHE_CONF} /root/alt42-conf.off && service apache2 reload")
        code, body = fetch(host, APACHE + SCRIPT_URL)
        assert (code, body.startswith("heartbeat.php ran")) == (200, True), "unprotected, it runs"
    finally:
        host.run(f"mv /root/alt42-htaccess.off {HTACCESS}")
        host.run(f"mv /root/alt42-conf.off {APACHE_CONF}; service apache2 reload")
    assert fetch(host, APACHE + SCRIPT_URL)[0] == 403


def test_run_once_names_the_shells_error_when_the_job_cannot_start(host):
    """The PHP runtime's line still has cron's `>> LOG`: a log root owns (the manual's
    root line after a rotation) stops it in the shell. run_once used to say "exit code 2
    (configuration)" with no output line; it shows the shell's own line."""
    host.check_output(f"touch {x.LOG_FILE} && chown root:root {x.LOG_FILE}")
    try:
        run = x.ansible_playbook(
            playbook="playbooks/run_once.yml", extra_vars={"alt42_run_once_hosts": "all"}
        )
    finally:
        host.check_output(f"chown www-data:www-data {x.LOG_FILE}")
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert "exit code: 2 (the job did not start: sh: 1: " in out, out[-3000:]
    assert f"{x.LOG_FILE}: Permission denied" in out
    assert "(configuration)" not in out
