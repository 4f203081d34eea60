"""The role takes the job's settings as data (``alt42_heartbeat_settings``, section ->
key -> value) and writes them with one short template; the job checks them. The per-key
variables of 0.x still work for one release, with a warning naming the new form.

Real Ansible renders the role's template and runs its ``tasks/settings.yml``; the job's
own ``load_config`` reads the result back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from heartbeat import config as config_module
from tests.conftest import ROLE, role_adhoc

VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
DEPRECATED: dict[str, str] = VARS["__alt42_heartbeat_deprecated"]

#: A valid value for every key a deprecated variable gives ("section.key" -> value).
SAMPLE: dict[str, Any] = {
    "database.moodle_config": "",  # set below: a file that exists
    "database.host": "db.example.org",
    "database.port": 3307,
    "database.socket": "/run/mysqld/other.sock",
    "database.name": "moodle",
    "database.user": "alt42",
    "database.password": " padded secret ",
    "database.prefix": "lms_",
    "heartbeat.interval_minutes": 30,
    "heartbeat.window_hours": 12,
    "heartbeat.open_session_hours": 6,
    "heartbeat.batch_size": 500,
    "heartbeat.rules": "",  # set below: a file that exists
    "heartbeat.max_run_minutes": 15,
    "heartbeat.query_timeout_seconds": 120,
    "monitoring.ping_url": "https://hc-ping.com/abc",
    "monitoring.ping_timeout_seconds": 3,
    "monitoring.ping_retries": 0,
    "monitoring.metrics_file": "/var/lib/prometheus/node-exporter/alt42.prom",
    "monitoring.grace_minutes": 5,
    "monitoring.mail_to": ["ops@example.org", "root"],
    "monitoring.mail_from": "moodle@example.org",
    "monitoring.sendmail": "/usr/sbin/sendmail",
    "retention.days": 120,
    "retention.detail_days": 31,
    "retention.batch_size": 1000,
    "retention.max_size": "20G",
}
PACING = {"max_rows_per_second": 2000, "replica": "db2.example.org"}


def render(tmp_path: Path, name: str, extra: dict[str, Any], release: str = "0.4.0") -> Path:
    out = tmp_path / name
    role_adhoc(
        "ansible.builtin.template",
        f"src={ROLE / 'templates' / 'heartbeat.ini.j2'} dest={out}",
        {"__alt42_heartbeat_target_version": release, "__alt42_heartbeat_schedule": "*/30 * * * *",
         **extra},
    )  # fmt: skip
    out.chmod(0o600)
    return out


def samples(tmp_path: Path) -> dict[str, Any]:
    php = tmp_path / "config.php"
    php.write_text("<?php\n$CFG = new stdClass();\n$CFG->dbtype = 'mariadb';\n")
    book = tmp_path / "rules.yml"
    book.write_text("scenarios: []\n")  # read when a run starts; the INI needs it readable
    return {**SAMPLE, "database.moodle_config": str(php), "heartbeat.rules": str(book)}


def nested(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        section, key = name.split(".")
        out.setdefault(section, {})[key] = value
    return out


def test_every_deprecated_variable_and_its_settings_key_write_the_same_configuration(
    tmp_path: Path,
) -> None:
    values = samples(tmp_path)
    assert set(values) == set(DEPRECATED), "a sample value for each deprecated variable"
    old = render(
        tmp_path,
        "old.ini",
        {**{DEPRECATED[name]: value for name, value in values.items()},
         "alt42_heartbeat_pacing": PACING},
    )  # fmt: skip
    new = render(
        tmp_path, "new.ini", {"alt42_heartbeat_settings": {**nested(values), "pacing": PACING}}
    )
    read_old = config_module.load_config(str(old), environ={})
    read_new = config_module.load_config(str(new), environ={})
    assert read_old == dataclasses.replace(read_new, path=str(old))
    assert read_new.database.password == " padded secret "
    assert read_new.monitoring.mail_to == ("ops@example.org", "root")
    assert read_new.pacing.replica == ("db2.example.org", 3306)
    assert read_new.retention.max_size == 20 * 1024**3
    assert read_new.heartbeat.schedule is not None


def test_nothing_set_writes_only_the_schedule_and_the_job_says_what_is_missing(
    tmp_path: Path,
) -> None:
    """A default never speaks for the site: no guessed database key, no job default."""
    ini = render(tmp_path, "empty.ini", {})
    keys = [line for line in ini.read_text().splitlines() if "=" in line and line[0] != "#"]
    assert keys == ["schedule = */30 * * * *"]
    with pytest.raises(config_module.ConfigError, match=r"\[database\] name is not set"):
        config_module.load_config(str(ini), environ={})


def test_a_key_an_older_release_does_not_know_is_left_out_for_it(tmp_path: Path) -> None:
    settings = {"retention": {"days": 90, "detail_days": 30}, "heartbeat": {"lease_seconds": 60},
                "database": {"name": "moodle", "user": "alt42"}}  # fmt: skip
    older = render(tmp_path, "older.ini", {"alt42_heartbeat_settings": settings}, "0.3.0")
    text = older.read_text()
    assert "days = 90" in text and "detail_days" not in text and "lease_seconds" not in text
    newer = render(tmp_path, "newer.ini", {"alt42_heartbeat_settings": settings}, "0.4.0")
    assert config_module.load_config(str(newer), environ={}).heartbeat.lease_seconds == 60


def test_a_roll_back_to_0_1_0_gets_no_section_it_does_not_know(tmp_path: Path) -> None:
    """0.1.0 refuses a section it does not know, even an empty one ([pacing], [report]):
    a section without a key is never written (Molecule upgrade rolls back to 0.1.0)."""
    settings = {"database": {"name": "moodle"}, "pacing": {"replica": "db2"},
                "report": {"time_zone": "Asia/Seoul"}}  # fmt: skip
    text = render(tmp_path, "old.ini", {"alt42_heartbeat_settings": settings}, "0.1.0").read_text()
    headers = [line for line in text.splitlines() if line.startswith("[")]
    assert headers == ["[database]"], text


@pytest.mark.parametrize("form", ["settings", "deprecated"])
def test_migrates_configuration_names_its_own_account_in_either_form(
    tmp_path: Path, form: str
) -> None:
    """migrate.yml writes the INI with alt42_heartbeat_migrate_db_user/_password. With
    the account in alt42_heartbeat_settings, it was the job's account that migrated (the
    override set only the deprecated variables, which a settings key wins over)."""
    site = {"database": {"name": "moodle", "user": "alt42", "password": "job-pw"}}
    given = (
        {"alt42_heartbeat_settings": site} if form == "settings"
        else {"alt42_heartbeat_db_name": "moodle", "alt42_heartbeat_db_user": "alt42",
              "alt42_heartbeat_db_password": "job-pw"}
    )  # fmt: skip
    migrate = {
        "alt42_heartbeat_migrate_db_user": "alt42_migrate",
        "alt42_heartbeat_migrate_db_password": "migrate-pw",
        "__alt42_heartbeat_settings": "{{ __alt42_heartbeat_migrate_settings }}",
    }
    ini = render(tmp_path, "migrate.ini", {**given, **migrate})
    read = config_module.load_config(str(ini), environ={}).database
    assert (read.name, read.user, read.password) == ("moodle", "alt42_migrate", "migrate-pw")


def test_an_unknown_section_or_key_reaches_the_job_which_names_it(tmp_path: Path) -> None:
    settings = {"database": {"name": "moodle", "user": "alt42"}, "monitorng": {"ping_url": "x"}}
    ini = render(tmp_path, "typo.ini", {"alt42_heartbeat_settings": settings})
    with pytest.raises(config_module.ConfigError, match=r"did you mean \[monitoring\]"):
        config_module.load_config(str(ini), environ={})


def test_the_role_knows_the_jobs_sections_and_keys() -> None:
    """The role names sections and keys only where it must (the sections it always
    writes, the deprecated variables' keys, the keys older releases refuse): each is one
    the job declares."""
    assert VARS["__alt42_heartbeat_ini_sections"] == list(config_module.KNOWN_KEYS)
    for name in [*DEPRECATED, *VARS["__alt42_heartbeat_keys_since"]]:
        section, _, key = name.partition(".")
        assert section in config_module.KNOWN_KEYS, name
        assert not key or key in config_module.KNOWN_KEYS[section], name


# ------------------------------------------------------------------ tasks/settings.yml


def settings_tasks(tmp_path: Path, extra: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """The role's tasks/settings.yml, run by real Ansible with the role's defaults and
    vars (and its action plugins, as a play that uses the role has them)."""
    play = tmp_path / "play.yml"
    play.write_text(
        yaml.safe_dump(
            [{"hosts": "localhost", "connection": "local", "gather_facts": False,
              "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
              "tasks": [{"ansible.builtin.import_tasks": str(ROLE / "tasks" / "settings.yml")}]}]
        )
    )  # fmt: skip
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-e", f"@{extra_file}", str(play)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_ACTION_PLUGINS": str(ROLE / "action_plugins"),
             "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"},
        check=False,
        timeout=120,
    )  # fmt: skip


def test_a_deprecated_variable_warns_with_the_new_form_and_never_its_value(
    tmp_path: Path,
) -> None:
    done = settings_tasks(
        tmp_path, {"alt42_heartbeat_db_password": "Sekr3t-Value", "alt42_heartbeat_batch_size": 500}
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert (
        "[WARNING]: alt42_heartbeat_batch_size is deprecated and will be removed in a later"
        " release: set alt42_heartbeat_settings: {heartbeat: {batch_size: ...}} instead"
    ) in " ".join(out.split())
    assert "alt42_heartbeat_db_password is deprecated" in out
    assert "Sekr3t-Value" not in out


def test_the_new_form_alone_warns_about_nothing(tmp_path: Path) -> None:
    done = settings_tasks(tmp_path, {"alt42_heartbeat_settings": {"heartbeat": {"batch_size": 5}}})
    assert done.returncode == 0, done.stdout
    assert "WARNING" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"alt42_heartbeat_batch_size": 500,
          "alt42_heartbeat_settings": {"heartbeat": {"batch_size": 400}}},
         "alt42_heartbeat_batch_size and alt42_heartbeat_settings both set [heartbeat]"
         " batch_size; keep alt42_heartbeat_settings and remove alt42_heartbeat_batch_size"),
        ({"alt42_heartbeat_settings": {"heartbeat": {"schedule": "*/5 * * * *"}}},
         "set alt42_heartbeat_cron_schedule"),
        ({"alt42_heartbeat_settings": {"heartbeat": 500}},
         "alt42_heartbeat_settings must map each section of the job's INI to its keys"),
    ],
)  # fmt: skip
def test_a_settings_mistake_stops_the_play_with_one_line(
    tmp_path: Path, extra: dict[str, Any], said: str
) -> None:
    done = settings_tasks(tmp_path, extra)
    assert done.returncode != 0
    assert said in " ".join(done.stdout.split()), done.stdout


def test_the_role_writes_the_ini_where_a_release_looks_for_it() -> None:
    """The release's INI: the name the role writes beside the venv is the one the job
    reads there without --config (one name, kept equal)."""
    assert VARS["__alt42_heartbeat_ini_name"] == config_module.RELEASE_CONFIG_NAME
    assert VARS["__alt42_heartbeat_release_config"].endswith("/{{ __alt42_heartbeat_ini_name }}")
