"""Adopting a server set up by the seed manual (issue 20).

The manual's PHP job runs from root's crontab, so it (re)creates the log as root:root
0644; a cron line whose shell opens that log for www-data (``>> LOG``) fails before the
job starts, at every slot, without a word. The job now opens its log itself: a log it
cannot open costs the run its log, never the run. The role's module that finds, retires
and restores the PHP job's cron lines is run here as Ansible runs it (its arguments as
JSON), on real files; its crontab side runs in Molecule ``e2e``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from heartbeat import status
from tests.conftest import ROOT, Site, cli_env, mailed, role_adhoc

ROLE = ROOT / "roles" / "alt42_heartbeat"
MODULE = ROOT / "plugins" / "modules" / "alt42_heartbeat_php_schedules.py"
MANUAL_SCRIPT = (
    "/home/moodle/public_html/moodle/local/augmented_teacher/alt42/orchestration/api/scheduler"
    "/heartbeat.php"
)
# The seed manual's lines (HEARTBEAT_CRON_SETUP.md): root's crontab with the mail suffix of
# its "alerts" section, and its cron.d file.
ROOT_LINE = (
    f"*/15 * * * * /usr/bin/php {MANUAL_SCRIPT} >> /var/log/alt42/heartbeat_cron.log 2>&1"
    ' || echo "Heartbeat failed at $(date)" | mail -s "Heartbeat Error" admin@example.com'
)
CRON_D_MANUAL = (
    "SHELL=/bin/bash\n"
    "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
    f"*/30 * * * * www-data /usr/bin/php {MANUAL_SCRIPT} >> /var/log/alt42/heartbeat_cron.log"
    " 2>&1\n"
)
MOODLE_LINE = "* * * * * www-data /usr/bin/php /var/www/moodle/admin/cli/cron.php >/dev/null\n"


# --------------------------------------------------------------------------- the log


def _without_dac_override(command: list[str]) -> list[str]:
    """Run as root but without the capability to write others' files: what www-data meets
    in a root-owned log (these machines run Python from root's home only)."""
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--", *command]


def _capabilities_can_be_dropped(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.touch()
    os.chown(probe, 65534, 65534)
    probe.chmod(0o644)
    result = subprocess.run(
        _without_dac_override(["sh", "-c", f": >> {probe}"]), capture_output=True, check=False
    )
    return shutil.which("setpriv") is not None and os.geteuid() == 0 and result.returncode != 0


@pytest.fixture
def foreign_log(tmp_path: Path) -> Path:
    """The log as the PHP job run by root leaves it, here owned by another user, 0644."""
    if not _capabilities_can_be_dropped(tmp_path):
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    logs = tmp_path / "alt42"
    logs.mkdir()
    log = logs / "heartbeat_cron.log"
    log.write_text("[2026-11-20 10:00:00] a line of the PHP job\n")
    os.chown(log, 65534, 65534)
    log.chmod(0o644)
    return log


def _role_command(ini: Path, log: Path) -> str:
    """The role's cron command (vars/main.yml) with this test's paths."""
    return f"{sys.executable} -m heartbeat --config {ini} --log-file {log} run"


def _run_as_cron_beside(ini: Path, log: Path) -> subprocess.CompletedProcess[str]:
    """The role's cron command, by a user who cannot write ``log``."""
    return subprocess.run(
        _without_dac_override(["/bin/sh", "-c", _role_command(ini, log)]),
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
        timeout=300,
    )


LOG = "/var/log/alt42/heartbeat_cron.log"
JOB = "/opt/alt42-heartbeat/current/venv/bin/alt42-heartbeat"
RELEASE = "/opt/alt42-heartbeat/releases/0.4.0-0123abcd-py3.11"


@pytest.mark.parametrize(
    ("runtime", "version", "command"),
    [
        # from 0.5.0 the release reads the INI beside its venv
        ("python", "0.5.0", f"{JOB} --log-file {LOG} run"),
        # a roll back to an older release names that release's own INI
        ("python", "0.3.0", f"{JOB} --config {RELEASE}/heartbeat.ini --log-file {LOG} run"),
        # and to one that cannot open its log, the shell's `>>`
        ("python", "0.2.0", f"{JOB} --config {RELEASE}/heartbeat.ini run >> {LOG} 2>&1"),
        ("php", "0.3.0", f"/usr/bin/php {MANUAL_SCRIPT} >> {LOG} 2>&1"),
    ],
)
def test_the_cron_line_lets_the_job_open_its_log(runtime: str, version: str, command: str) -> None:
    result = role_adhoc(
        "ansible.builtin.debug",
        "var=__alt42_heartbeat_command",
        {"alt42_heartbeat_runtime": runtime, "__alt42_heartbeat_target_version": version,
         "__alt42_heartbeat_release": RELEASE},
    )  # fmt: skip
    assert result["__alt42_heartbeat_command"] == command


def test_the_php_runtime_needs_no_release_for_its_cron_lines() -> None:
    """cron.yml templates the prune line on every runtime (its loop item is left absent
    for PHP): it names no release, which the PHP runtime never chooses (Molecule `php`
    failed on an undefined __alt42_heartbeat_release)."""
    result = role_adhoc(
        "ansible.builtin.debug", "var=__alt42_heartbeat_prune_command",
        {"alt42_heartbeat_runtime": "php"},
    )  # fmt: skip
    assert "undefined" not in str(result["__alt42_heartbeat_prune_command"]).lower()


def test_a_log_another_user_owns_costs_the_run_its_log_not_the_run(
    demo_site: Site, foreign_log: Path
) -> None:
    ini = demo_site.write_ini()
    # Before: the shell's redirection fails, the job never starts, nothing is recorded.
    old = subprocess.run(
        _without_dac_override(
            ["/bin/sh", "-c", f"{sys.executable} -m heartbeat --config {ini} run >> {foreign_log}"]
        ),
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
    )
    assert old.returncode == 2 and "Permission denied" in old.stderr
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0

    new = _run_as_cron_beside(ini, foreign_log)
    assert new.returncode == 1, new.stderr  # a run whose output was lost says so
    assert demo_site.query(
        "SELECT status, students_processed, errors FROM mdl_alt42_heartbeat_log"
    ) == [("success", 8, 0)]
    first = new.stderr.splitlines()[0]
    assert f"ERROR: cannot append to the log {foreign_log}: Permission denied" in first
    assert "(owner nobody:nogroup, mode 0644; this job runs as root)" in first
    assert "fix: make it writable by the job's user (chown it" in first
    assert "Completed: 8 processed, 0 errors" in new.stdout  # the lines are not lost
    assert foreign_log.read_text() == "[2026-11-20 10:00:00] a line of the PHP job\n"


def test_the_failure_mail_says_where_the_lines_went(
    demo_site: Site, foreign_log: Path, mta: Path
) -> None:
    ini = demo_site.write_ini()
    ini.write_text(ini.read_text() + f"[monitoring]\nmail_to = root\nsendmail = {mta}\n")
    assert _run_as_cron_beside(ini, foreign_log).returncode == 1
    [message] = mailed(mta)
    body = message.get_content()
    assert "Completed: 8 processed, 0 errors" in body
    assert f"The log {foreign_log} could not be opened: this run's lines went to" in body


def test_a_writable_log_gets_every_line_and_nothing_else_is_printed(
    demo_site: Site, tmp_path: Path
) -> None:
    log = tmp_path / "missing-yet.log"
    ini = demo_site.write_ini()
    done = subprocess.run(
        ["/bin/sh", "-c", _role_command(ini, log)],
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
        timeout=300,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    lines = log.read_text().splitlines()
    assert "Starting heartbeat run" in lines[0]
    assert "Completed: 8 processed, 0 errors" in lines[-1]
    assert log.stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# --------------------------------------------------------------------------- the module


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alt42_heartbeat_php_schedules", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Host:
    """A host's cron tables in a temporary directory (no user crontab: Molecule has those)."""

    def __init__(self, root: Path) -> None:
        self.cron_d = root / "cron.d"
        self.cron_d.mkdir()
        self.crontab = root / "crontab"
        self.spool = root / "spool"
        self.spool.mkdir()

    def run(self, check: bool = False, **args: Any) -> dict[str, Any]:
        """The module as Ansible runs it: a process, its arguments as JSON, its answer."""
        args = {
            "cron_d_dir": str(self.cron_d),
            "system_crontab": str(self.crontab),
            "spool_dir": str(self.spool),
            "_ansible_check_mode": check,
            "_ansible_diff": True,
            **args,
        }
        argfile = self.cron_d.parent / "args.json"
        argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        done = subprocess.run(
            [sys.executable, str(MODULE), str(argfile)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    @staticmethod
    def warnings(answer: dict[str, Any]) -> list[str]:
        """The warnings' texts (ansible-core 2.19 returns each as an event)."""
        return [w["event"]["msg"] if isinstance(w, dict) else w for w in answer.get("warnings", [])]

    def snapshot(self) -> dict[str, str]:
        files = {p.name: p.read_text() for p in sorted(self.cron_d.iterdir())}
        return {**files, "crontab": self.crontab.read_text()}


@pytest.fixture
def host(tmp_path: Path) -> Host:
    """/etc/crontab with Moodle's cron and the manual's PHP line; the manual's cron.d file."""
    made = Host(tmp_path)
    made.crontab.write_text(
        "SHELL=/bin/sh\n# m h dom mon dow user\tcommand\n"
        + MOODLE_LINE
        + ROOT_LINE.replace("*/15 * * * *", "*/15 * * * * root")
        + "\n"
    )
    (made.cron_d / "alt42-heartbeat").write_text(CRON_D_MANUAL)
    (made.cron_d / "alt42-heartbeat").chmod(0o644)
    (made.cron_d / "moodle").write_text(MOODLE_LINE)
    return made


def test_the_manuals_lines_are_found_where_they_are(host: Host) -> None:
    answer = host.run(state="report", schedule="*/30 * * * *")
    assert answer["changed"] is False
    assert answer["active"] == [
        f"{host.cron_d}/alt42-heartbeat, line 3: */30 * * * * as www-data",
        f"{host.crontab}, line 4: */15 * * * * as root",
    ]
    # the site's */15 differs from the role's */30: said, not silently replaced
    [warning] = host.warnings(answer)
    assert "the PHP job runs at '*/15 * * * *'" in warning
    assert "set alt42_heartbeat_cron_schedule: adopt" in warning


def test_check_mode_shows_every_change_and_makes_none(host: Host) -> None:
    before = host.snapshot()
    answer = host.run(check=True, state="retire")
    assert answer["changed"] is True
    assert host.snapshot() == before
    headers = [d["before_header"] for d in answer["diff"]]
    assert headers == [
        f"{host.cron_d}/alt42-heartbeat-manual",
        str(host.crontab),
        f"{host.cron_d}/alt42-heartbeat",
    ]
    crontab = answer["diff"][1]
    assert crontab["after"] == crontab["before"].replace(
        ROOT_LINE.replace("*/15 * * * *", "*/15 * * * * root"),
        "#alt42-heartbeat retired# " + ROOT_LINE.replace("*/15 * * * *", "*/15 * * * * root"),
    )
    assert answer["diff"][2]["after"] == ""  # the role's file takes this name


def test_retire_comments_out_only_the_php_lines_and_restore_brings_back_every_byte(
    host: Host,
) -> None:
    before = host.snapshot()
    record = host.cron_d.parent / "record.json"
    retired = host.run(state="retire", record=str(record))
    assert retired["changed"] is True
    assert retired["active"] == []
    assert retired["set_aside"] == [
        f"{host.cron_d}/alt42-heartbeat -> {host.cron_d}/alt42-heartbeat-manual"
    ]
    after = host.snapshot()
    assert "alt42-heartbeat" not in after  # the role's template writes its own file there
    assert after["moodle"] == before["moodle"]
    assert after["crontab"].count("#alt42-heartbeat retired# ") == 1
    assert MOODLE_LINE in after["crontab"].splitlines(keepends=True)
    manual = (host.cron_d / "alt42-heartbeat-manual").read_text()
    assert manual.splitlines()[:2] == CRON_D_MANUAL.splitlines()[:2]  # SHELL, PATH kept
    assert manual.splitlines()[2].startswith("#alt42-heartbeat retired# */30 * * * * www-data")
    assert (host.cron_d / "alt42-heartbeat-manual").stat().st_mode & 0o777 == 0o644

    again = host.run(state="retire", record=str(record))
    assert again["changed"] is False, again["diff"]  # idempotent, the record too

    restored = host.run(state="restore", warn_none="no heartbeat left")
    assert restored["changed"] is True
    assert host.warnings(restored) == []
    now = host.snapshot()
    assert now["crontab"] == before["crontab"]
    assert now["alt42-heartbeat-manual"] == CRON_D_MANUAL  # under its new name, as it was


def test_leaving_without_a_heartbeat_is_said(host: Host) -> None:
    host.run(state="retire")
    answer = host.run(state="keep", warn_none="this host runs no heartbeat now")
    assert host.warnings(answer) == ["this host runs no heartbeat now"]
    assert len(answer["retired"]) == 2


def test_kept_lines_are_named_with_the_warning(host: Host) -> None:
    answer = host.run(state="keep", warn_active="both jobs run")
    assert answer["active"] == [
        f"{host.cron_d}/alt42-heartbeat-manual, line 3: */30 * * * * as www-data",
        f"{host.crontab}, line 4: */15 * * * * as root",
    ]
    [warning] = host.warnings(answer)
    assert warning.startswith("both jobs run: ")
    assert (host.cron_d / "alt42-heartbeat-manual").read_text() == CRON_D_MANUAL


def test_adopt_takes_the_sites_schedule(host: Host) -> None:
    (host.cron_d / "alt42-heartbeat").unlink()
    assert host.run(schedule="adopt")["schedule"] == "*/15 * * * *"
    host.run(state="retire")  # retired lines still tell the schedule
    assert host.run(schedule="adopt")["schedule"] == "*/15 * * * *"


def test_adopt_refuses_to_choose_between_schedules(host: Host) -> None:
    answer = host.run(schedule="adopt")
    assert answer["failed"] is True
    assert answer["msg"].startswith(
        "alt42_heartbeat_cron_schedule is 'adopt', but the PHP job has several schedules here"
    )
    assert "*/15 * * * * as root" in answer["msg"] and "*/30 * * * * as www-data" in answer["msg"]


def test_adopt_without_any_schedule_says_where_it_looked(tmp_path: Path) -> None:
    empty = Host(tmp_path)
    answer = empty.run(schedule="adopt")
    assert answer["failed"] is True
    assert "no schedule of the PHP job was found (looked in" in answer["msg"]
    assert "set a schedule, e.g. '*/30 * * * *'" in answer["msg"]


def test_the_roles_own_file_is_never_retired_and_gives_the_schedule(host: Host) -> None:
    """Runtime php: the role's own cron.d line runs heartbeat.php; it is the one kept."""
    (host.cron_d / "alt42-heartbeat").write_text(
        "#\n# Ansible managed\n#\n# The ALT42 heartbeat job (php runtime), as www-data.\n"
        f"*/20 * * * * www-data /usr/bin/php {MANUAL_SCRIPT} >> /var/log/x.log 2>&1\n"
    )
    answer = host.run(state="retire", schedule="adopt")
    assert answer["own_schedule"] == "*/20 * * * *"
    assert answer["schedule"] == "*/15 * * * *"  # the PHP job's, from /etc/crontab
    assert "retired#" not in (host.cron_d / "alt42-heartbeat").read_text()
    assert answer["set_aside"] == []


def test_a_backup_an_older_release_kept_of_the_manuals_file_is_kept_retired(host: Host) -> None:
    """0.2.0 replaced the manual's cron.d file and kept it as a ~ backup, which its
    state absent deleted: now it is set aside (it did not run, so retired)."""
    manual = host.cron_d / "alt42-heartbeat"
    backup = host.cron_d / "alt42-heartbeat.12345.2026-12-01@10:00:00~"
    manual.rename(backup)
    manual.write_text("#\n# Ansible managed\n#\n# The ALT42 heartbeat job (python runtime)\n")
    answer = host.run(state="keep")
    assert not backup.exists()
    text = (host.cron_d / "alt42-heartbeat-manual").read_text()
    assert text.splitlines()[2].startswith("#alt42-heartbeat retired# */30 * * * * www-data")
    assert answer["active"] == [f"{host.crontab}, line 4: */15 * * * * as root"]


def test_the_record_names_the_lines_for_status(host: Host, tmp_path: Path) -> None:
    record = tmp_path / "etc" / status.PHP_RECORD
    record.parent.mkdir()
    host.run(state="keep", record=str(record))
    where = status.php_schedules_here(str(record.parent / "heartbeat.ini"))
    assert where == (
        f"on this host, as the role found it: {host.cron_d}/alt42-heartbeat-manual, line 3"
        f" (*/30 * * * *); {host.crontab}, line 4 (*/15 * * * *)"
    )
    assert record.stat().st_mode & 0o777 == 0o640
    host.run(state="retire", record=str(record))
    assert status.php_schedules_here(str(record.parent / "heartbeat.ini")).startswith(
        "not on this host at the last deploy: look at the site's other web servers"
    )
    assert status.php_schedules_here(str(tmp_path / "nowhere" / "heartbeat.ini")) is None
    # /etc/alt42/heartbeat.ini links to the release's INI, beside which the role records
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "heartbeat.ini").symlink_to(record.parent / "heartbeat.ini")
    assert status.php_schedules_here(str(tmp_path / "link" / "heartbeat.ini")) == (
        status.php_schedules_here(str(record.parent / "heartbeat.ini"))
    )


def test_the_record_path_is_where_status_reads_it() -> None:
    text = (ROLE / "vars" / "main.yml").read_text()
    expected = (
        f'__alt42_heartbeat_php_record: "{{{{ __alt42_heartbeat_release }}}}/{status.PHP_RECORD}"'
    )
    assert expected in text


# --------------------------------------------------------------------------- status


def _php_row(site: Site, minutes_ago: int) -> None:
    site.execute(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, students_processed, errors,"
        " duration_ms, created_at) VALUES (UTC_TIMESTAMP(), 8, 0, 379000,"
        " UTC_TIMESTAMP() - INTERVAL %s MINUTE)",
        (minutes_ago,),
    )


def test_status_after_a_clean_switch_is_ok(demo_site: Site) -> None:
    """The PHP job's last rows were written before this job's first run: history, not a
    second job (they warned for about 40 minutes after every deploy)."""
    _php_row(demo_site, 25)
    _php_row(demo_site, 20)
    assert demo_site.cli("run").returncode == 0
    result = demo_site.cli("status")
    assert (result.returncode, result.stdout.split(" - ")[0]) == (0, "HEARTBEAT OK"), result.stdout


def test_status_names_a_php_job_still_writing_after_the_switch(demo_site: Site) -> None:
    _php_row(demo_site, 20)
    assert demo_site.cli("run").returncode == 0
    _php_row(demo_site, 0)
    result = demo_site.cli("status")
    assert result.returncode == 1, result.stdout
    assert "; 1 row(s) of the PHP heartbeat job arrived meanwhile, the last at " in result.stdout
    assert "it is still scheduled too (remove its cron line: the role's play retires it)" in (
        result.stdout
    )
    record = demo_site.tmp / status.PHP_RECORD  # next to the INI the site's cli() writes
    record.write_text(
        json.dumps(
            {
                "php_schedules": [
                    {
                        "where": "root's crontab, line 2",
                        "schedule": "*/30 * * * *",
                        "user": "root",
                        "active": True,
                        "own": False,
                    }
                ]
            }
        )
    )
    named = demo_site.cli("status")
    assert "(on this host, as the role found it: root's crontab, line 2 (*/30 * * * *))" in (
        named.stdout
    )
