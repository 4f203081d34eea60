"""What Ansible itself prints: the role run again from the verifier, as an admin would.

* A password change, applied with ``--diff -vvv``, shows neither the old nor the new
  password anywhere in the output (the config task is ``no_log`` and ``diff: false``).
* A variable the job would reject stops the play with the job's own one-line reason and
  leaves the configuration file as it was (the template's ``validate:``).
"""

from __future__ import annotations

import alt42_expect as x
import pytest

NEW_PASSWORD = "R0tated%Vault-Kq83-zx"  # noqa: S105 - a test secret: it must never be shown
REJECTED = "/etc/alt42/heartbeat-rejected.ini"


def output_of(run) -> str:
    return run.stdout + run.stderr


def tail(text: str) -> str:
    return "\n".join(text.splitlines()[-40:])


#: The new password in each form the role takes it: the deprecated variable this
#: scenario's inventory uses (which then warns), and alt42_heartbeat_settings.
PASSWORD_FORMS = {
    "deprecated variable": {"alt42_heartbeat_db_password": NEW_PASSWORD},
    "settings": {
        "alt42_heartbeat_db_password": "",
        "alt42_heartbeat_settings": {"database": {"password": NEW_PASSWORD}},
    },
}


@pytest.mark.parametrize("form", PASSWORD_FORMS)
def test_a_password_change_is_applied_and_never_shown(host, form):
    old_password = x.db_password()
    try:
        run = x.ansible_playbook("--diff", "-vvv", extra_vars=PASSWORD_FORMS[form])
        out = output_of(run)
        assert run.returncode == 0, tail(out)
        deprecated = "alt42_heartbeat_db_password is deprecated" in out
        assert deprecated == (form == "deprecated variable"), tail(out)
        assert NEW_PASSWORD in host.file(x.CONFIG_FILE).content_string, "the change was applied"
        assert "Config | Write the configuration file, checked by the job first" in out
        assert "censored" in out, "the config task's result is hidden"
        assert NEW_PASSWORD not in out
        assert old_password not in out
        assert x.world_readable_files_containing(host, NEW_PASSWORD) == []
    finally:
        restore = x.ansible_playbook("--diff", "--tags", "alt42_heartbeat_config")
        assert restore.returncode == 0, tail(output_of(restore))
        assert old_password not in output_of(restore)
        assert NEW_PASSWORD not in output_of(restore)
    assert old_password in host.file(x.CONFIG_FILE).content_string


def rejected_run(host, extra_vars: dict) -> str:
    before = host.file(x.CONFIG_FILE).sha256sum
    run = x.ansible_playbook("--tags", "alt42_heartbeat_config", extra_vars=extra_vars)
    out = output_of(run)
    assert run.returncode != 0, tail(out)
    assert host.file(x.CONFIG_FILE).sha256sum == before, "the old file must stay as it was"
    assert not host.file(REJECTED).exists, "the private copy is removed again"
    assert x.db_password() not in out
    return out


def test_an_address_the_job_rejects_stops_the_play_and_keeps_the_file(host):
    out = rejected_run(host, {"alt42_heartbeat_monitoring_mail_to": ["ops example.org"]})
    assert (
        f"{x.CONFIG_FILE} was not changed: {x.CONFIG_FILE}: [monitoring] mail_to:"
        " 'ops example.org' is not a mail address"
    ) in out, tail(out)


def test_failure_mail_without_an_mta_stops_the_play_and_keeps_the_file(host):
    assert not host.file("/usr/sbin/sendmail").exists, "this image has no MTA"
    out = rejected_run(host, {"alt42_heartbeat_monitoring_mail_to": ["root"]})
    assert "[monitoring] sendmail = /usr/sbin/sendmail cannot be run" in out, tail(out)
    assert "install an MTA" in out


def test_a_config_php_the_job_user_cannot_read_stops_the_play(host):
    """The INI is judged as www-data: config.php readable by root alone fails the deploy
    with the path and the fix, and the INI stays as it was."""
    php = "/var/www/moodle/config.php"
    host.check_output(f"chmod 0600 {php}")
    try:
        out = rejected_run(host, {"alt42_heartbeat_batch_size": 500})
    finally:
        host.check_output(f"chmod 0640 {php}")
    assert f"{php}: permission denied for user www-data" in out, tail(out)
    assert "chmod 0640" in out


def test_a_schedule_change_leaves_no_backup_of_the_cron_file(host):
    """Releases before 0.3.0 kept a backup of every version of the file (ignored by cron
    for its dots); the manual's file is set aside instead, nothing else is kept."""
    for schedule in ("*/20 * * * *", x.schedule()):
        run = x.ansible_playbook(extra_vars={"alt42_heartbeat_cron_schedule": schedule})
        assert run.returncode == 0, tail(output_of(run))
    names = host.check_output("ls -1A /etc/cron.d").split()
    backups = [name for name in names if name.startswith("alt42-heartbeat.") and name.endswith("~")]
    assert backups == [], names
    assert x.cron_job(host).schedule == x.schedule()
    assert f"schedule = {x.schedule()}" in host.file(x.CONFIG_FILE).content_string


def test_a_schedule_that_disagrees_with_the_interval_is_refused(host):
    out = rejected_run(
        host,
        {"alt42_heartbeat_cron_schedule": "*/15 * * * *", "alt42_heartbeat_interval_minutes": 30},
    )
    assert "[heartbeat] interval_minutes = 30 disagrees with schedule = */15 * * * *" in out, tail(
        out
    )
