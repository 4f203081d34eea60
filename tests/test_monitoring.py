"""The monitoring definitions of monitoring/, checked by the monitoring systems' own tools.

* Prometheus: ``promtool check rules`` and the rules' unit tests (``promtool test
  rules``, monitoring/prometheus/alt42-heartbeat.tests.yml); a textfile the job really
  wrote passes ``promtool check metrics``, and every metric the rules read is in it.
* Nagios and Icinga 2: the shipped definitions in a configuration the daemons check
  (``nagios4 -v``, ``icinga2 daemon -C``). Running a check through each daemon for real
  needs a web server with the job, sudo and the daemons: extensions/molecule/monitoring does that.

The tools come from Debian's packages (prometheus, nagios4-core, icinga2-bin), which
scripts/bootstrap installs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, Site

PROMETHEUS = ROOT / "monitoring" / "prometheus"
RULES = PROMETHEUS / "alt42-heartbeat.rules.yml"
NAGIOS = ROOT / "monitoring" / "nagios"
ICINGA2 = ROOT / "monitoring" / "icinga2"


@pytest.fixture
def readable(tmp_path: Path) -> Iterator[Path]:
    """A directory the daemons can read after they drop root for their own user
    (nagios): pytest's own temporary directories are root's alone."""
    folder = Path(tempfile.mkdtemp(prefix="alt42-monitoring-"))
    folder.chmod(0o755)
    for source in (NAGIOS / "alt42-heartbeat.cfg", ICINGA2 / "alt42-heartbeat.conf"):
        shutil.copy(source, folder)
    (folder / "results").mkdir()
    shutil.chown(folder / "results", "nagios", "nagios")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    return path


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    assert path, f"{name} is missing: scripts/bootstrap installs it (Debian package)"
    return path


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", "alt42-heartbeat.tests.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests see the rules: with one threshold changed, they fail."""
    changed = RULES.read_text(encoding="utf-8").replace(") > 0.01", ") > 0.1")
    assert changed != RULES.read_text(encoding="utf-8")
    (tmp_path / RULES.name).write_text(changed, encoding="utf-8")
    shutil.copy(PROMETHEUS / "alt42-heartbeat.tests.yml", tmp_path)
    result = run(tool("promtool"), "test", "rules", "alt42-heartbeat.tests.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "Alt42HeartbeatStudentsFailing" in result.stdout + result.stderr


def rule_metric_names() -> set[str]:
    """Every metric name the rules read (recording rules' own names, with a colon, and
    PromQL's functions excluded)."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    names = set()
    for group in document["groups"]:
        for rule in group["rules"]:
            names |= set(re.findall(r"\balt42_heartbeat_[a-z_]+\b(?!:)", rule["expr"]))
    return names


def test_every_metric_the_rules_read_is_in_a_real_textfile(demo_site: Site, tmp_path: Path) -> None:
    metrics = tmp_path / "alt42_heartbeat.prom"
    demo_site.write_ini(sections={"monitoring": {"metrics_file": metrics}})
    result = demo_site.cli("run")
    assert result.returncode == 0, result.stderr
    linted = subprocess.run(
        [tool("promtool"), "check", "metrics"],
        input=metrics.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    written = set(re.findall(r"^(alt42_heartbeat_[a-z_]+)[ {]", metrics.read_text(), re.M))
    used = rule_metric_names()
    assert len(used) >= 8, used
    assert used <= written, used - written


NAGIOS_MAIN = """\
log_file={tmp}/nagios.log
cfg_file=/etc/nagios4/objects/commands.cfg
cfg_file=/etc/nagios4/objects/contacts.cfg
cfg_file=/etc/nagios4/objects/timeperiods.cfg
cfg_file=/etc/nagios4/objects/templates.cfg
cfg_file={tmp}/alt42-heartbeat.cfg
cfg_file={tmp}/site.cfg
resource_file=/etc/nagios4/resource.cfg
status_file={tmp}/status.dat
lock_file={tmp}/nagios.lock
temp_file={tmp}/nagios.tmp
check_result_path={tmp}/results
illegal_macro_output_chars=`~$&|'"<>
command_file={tmp}/nagios.cmd
nagios_user=nagios
nagios_group=nagios
"""

NAGIOS_SITE = (NAGIOS / "example-site.cfg").read_text(encoding="utf-8")


def test_nagios_accepts_the_definitions(readable: Path) -> None:
    write(readable / "site.cfg", NAGIOS_SITE)
    main = write(readable / "nagios.cfg", NAGIOS_MAIN.format(tmp=readable))
    result = run(tool("nagios4"), "-v", str(main))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Total Errors:   0" in result.stdout
    assert "Total Warnings: 0" in result.stdout
    assert re.search(r"Checked 2 services\.", result.stdout), result.stdout


def test_nagios_finds_a_mistake(readable: Path) -> None:
    """The check is real: a service using a template that is not defined fails it."""
    write(readable / "site.cfg", NAGIOS_SITE.replace("-local", "-typo"))
    main = write(readable / "nagios.cfg", NAGIOS_MAIN.format(tmp=readable))
    result = run(tool("nagios4"), "-v", str(main))
    assert result.returncode != 0
    assert "alt42-heartbeat-typo" in result.stdout


ICINGA2_MAIN = """\
include "/etc/icinga2/constants.conf"
include <itl>
include <plugins>
const NodeName = "moodle-web-1"
const ZoneName = "moodle-web-1"
object Endpoint NodeName {{ }}
object Zone ZoneName {{ endpoints = [ NodeName ] }}
include "{folder}/alt42-heartbeat.conf"
object Host "moodle-web-1" {{
  address = "127.0.0.1"
  check_command = "dummy"
  vars.alt42_heartbeat = true
}}
"""


@pytest.mark.parametrize("broken", [False, True])
def test_icinga2_accepts_the_definitions(readable: Path, broken: bool) -> None:
    """The shipped CheckCommand and apply rule give the host its service; a wrong value
    (the broken case) makes the same check fail."""
    conf = ICINGA2_MAIN.format(folder=readable)
    if broken:
        conf = conf.replace('check_command = "dummy"', 'check_command = "alt42-heartbeet"')
    main = write(readable / "icinga2.conf", conf)
    result = run(
        tool("icinga2"),
        "daemon",
        "-C",
        "-c",
        str(main),
        "--define",
        f"Internal.DataDir={readable}",
    )
    out = result.stdout + result.stderr
    if broken:
        assert result.returncode != 0, out
        return
    assert result.returncode == 0, out
    assert re.search(r"Instantiated 1 Service\.", out), out
    assert re.search(r"Instantiated \d+ CheckCommands\.", out), out
