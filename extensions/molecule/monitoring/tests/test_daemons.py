"""The status check run for real through NRPE, Nagios 4 and Icinga 2 on a deployed web
server, with the definitions of monitoring/ as shipped (issue 15); the Prometheus rules
the role dropped and the job's textfile, checked by promtool (tests/test_monitoring.py
checks that the rules read only metrics the job writes)."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import alt42_expect as x
import pytest

MONITORING = x.PROJECT_DIR / "monitoring"
SUDOERS = "/etc/sudoers.d/alt42-heartbeat"
NRPE_COMMAND = "/etc/nagios/nrpe.d/alt42-heartbeat.cfg"
RULES = "/etc/prometheus/rules/alt42-heartbeat.rules.yml"
TEXTFILE = "/var/lib/prometheus/node-exporter/alt42_heartbeat.prom"
CHECK_NRPE = "/usr/lib/nagios/plugins/check_nrpe"
WORK = "/tmp/alt42-monitoring"


def put(host, path: str, text: str, mode: str = "0644") -> None:
    target = shlex.quote(path)
    host.check_output(
        f"install -d -m 0755 {shlex.quote(str(Path(path).parent))}"
        f" && printf %s {shlex.quote(text)} > {target} && chmod {mode} {target}"
    )


@pytest.fixture(scope="module")
def ran(host):
    """One run of the job, so that status has a run to judge (and metrics exist)."""
    result = host.run(x.as_www_data(x.expected_command()))
    assert result.rc == 0, result.stdout + result.stderr
    return result


def test_the_role_dropped_the_sudo_rule_and_the_nrpe_command(host):
    sudoers = host.file(SUDOERS)
    assert sudoers.exists and sudoers.user == "root" and sudoers.mode == 0o440
    assert host.run(f"visudo -cf {SUDOERS}").rc == 0
    assert f"nagios ALL=(www-data) NOPASSWD: {x.CLI} --config {x.CONFIG_FILE} status" in (
        sudoers.content_string
    )
    command = host.file(NRPE_COMMAND)
    assert command.exists and command.mode == 0o644
    assert (
        f"command[check_alt42_heartbeat]=/usr/bin/sudo -n -u www-data {x.CLI}"
        f" --config {x.CONFIG_FILE} status" in command.content_string
    )


def test_the_monitoring_user_may_run_status_and_nothing_else(host, ran):
    status = host.run(
        f"runuser -u nagios -- sudo -n -u www-data {x.CLI} --config {x.CONFIG_FILE} status"
    )
    assert status.rc == 0, status.stdout + status.stderr
    assert status.stdout.startswith("HEARTBEAT OK"), status.stdout
    other = host.run(
        f"runuser -u nagios -- sudo -n -u www-data {x.CLI} --config {x.CONFIG_FILE} run"
    )
    assert other.rc != 0
    assert "password is required" in other.stderr or "not allowed" in other.stderr


def test_through_nrpe(host, ran):
    host.run("pkill -x nrpe")
    host.check_output("/usr/sbin/nrpe -c /etc/nagios/nrpe.cfg -d")
    deadline = time.monotonic() + 20
    while True:
        result = host.run(f"{CHECK_NRPE} -H 127.0.0.1 -t 15 -c check_alt42_heartbeat")
        if result.rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.rc == 0, result.stdout + result.stderr
    assert result.stdout.startswith("HEARTBEAT OK"), result.stdout


NAGIOS_MAIN = f"""\
log_file={WORK}/nagios/nagios.log
cfg_file=/etc/nagios4/objects/commands.cfg
cfg_file=/etc/nagios4/objects/contacts.cfg
cfg_file=/etc/nagios4/objects/timeperiods.cfg
cfg_file=/etc/nagios4/objects/templates.cfg
cfg_file={WORK}/nagios/alt42-heartbeat.cfg
cfg_file={WORK}/nagios/site.cfg
resource_file=/etc/nagios4/resource.cfg
status_file={WORK}/nagios/status.dat
status_update_interval=1
lock_file={WORK}/nagios/nagios.lock
temp_file={WORK}/nagios/nagios.tmp
temp_path={WORK}/nagios
check_result_path={WORK}/nagios/results
check_result_reaper_frequency=1
command_file={WORK}/nagios/nagios.cmd
check_external_commands=1
command_check_interval=1s
nagios_user=nagios
nagios_group=nagios
illegal_macro_output_chars=`~$&|'"<>
"""

NAGIOS_SITE = (MONITORING / "nagios" / "example-site.cfg").read_text(encoding="utf-8")


def service_outputs(status_dat: str) -> dict[str, str]:
    """service_description -> plugin_output, from Nagios' status.dat."""
    found = {}
    for block in re.findall(r"servicestatus \{(.*?)\}", status_dat, re.S):
        fields = dict(re.findall(r"^\s*(\w+)=(.*)$", block, re.M))
        if fields.get("has_been_checked") == "1":
            found[fields["service_description"]] = fields.get("plugin_output", "")
    return found


def test_through_nagios(host, ran):
    put(
        host,
        f"{WORK}/nagios/alt42-heartbeat.cfg",
        (MONITORING / "nagios" / "alt42-heartbeat.cfg").read_text(),
    )
    put(host, f"{WORK}/nagios/site.cfg", NAGIOS_SITE)
    put(host, f"{WORK}/nagios/nagios.cfg", NAGIOS_MAIN)
    host.check_output(
        f"install -d -o nagios -g nagios -m 0755 {WORK}/nagios/results"
        f" && chown nagios {WORK}/nagios"
    )
    checked = host.run(f"nagios4 -v {WORK}/nagios/nagios.cfg")
    assert checked.rc == 0, checked.stdout
    assert "Total Errors:   0" in checked.stdout
    host.run("pkill -x nagios4")
    host.check_output(f"nagios4 -d {WORK}/nagios/nagios.cfg")
    deadline = time.monotonic() + 60
    outputs: dict[str, str] = {}
    while time.monotonic() < deadline:
        now = int(time.time())
        for service in ("ALT42 heartbeat", "ALT42 heartbeat (local)"):
            line = f"[{now}] SCHEDULE_FORCED_SVC_CHECK;moodle-web-1;{service};{now}"
            pipe = f"{WORK}/nagios/nagios.cmd"
            host.run(
                f"test -p {pipe} && timeout 5 sh -c"
                f" {shlex.quote(f'echo {shlex.quote(line)} > {pipe}')}"
            )
        status = host.run(f"cat {WORK}/nagios/status.dat")
        outputs = service_outputs(status.stdout)
        if len(outputs) == 2:
            break
        time.sleep(2)
    host.run("pkill -x nagios4")
    assert outputs.get("ALT42 heartbeat", "").startswith("HEARTBEAT OK"), outputs
    assert outputs.get("ALT42 heartbeat (local)", "").startswith("HEARTBEAT OK"), outputs


ICINGA2_MAIN = f"""\
include "/etc/icinga2/constants.conf"
include <itl>
include <plugins>
const NodeName = "moodle-web-1"
const ZoneName = "moodle-web-1"
object Endpoint NodeName {{ }}
object Zone ZoneName {{ endpoints = [ NodeName ] }}
object CheckerComponent "checker" {{ }}
object ApiListener "api" {{
  bind_host = "127.0.0.1"
  accept_commands = true
}}
object ApiUser "verify" {{
  password = "verify-only"
  permissions = [ "*" ]
}}
include "{WORK}/icinga2/alt42-heartbeat.conf"
object Host "moodle-web-1" {{
  address = "127.0.0.1"
  check_command = "dummy"
  vars.alt42_heartbeat = true
}}
"""


def test_through_icinga2(host, ran):
    put(
        host,
        f"{WORK}/icinga2/alt42-heartbeat.conf",
        (MONITORING / "icinga2" / "alt42-heartbeat.conf").read_text(),
    )
    put(host, f"{WORK}/icinga2/icinga2.conf", ICINGA2_MAIN)
    # The API (to force a check and read its result) needs a CA and this node's
    # certificate: `icinga2 api setup` makes both, offline.
    host.check_output(
        "install -d -o nagios -g nagios /run/icinga2 /run/icinga2/cmd"
        " && (test -f /var/lib/icinga2/certs/moodle-web-1.crt"
        " || icinga2 api setup --cn moodle-web-1 >/dev/null)"
    )
    checked = host.run(f"icinga2 daemon -C -c {WORK}/icinga2/icinga2.conf")
    assert checked.rc == 0, checked.stdout + checked.stderr
    assert "Instantiated 1 Service." in checked.stdout
    host.run("pkill -x icinga2")
    host.check_output(f"icinga2 daemon -d -c {WORK}/icinga2/icinga2.conf")
    api = "curl -sk -u verify:verify-only -H 'Accept: application/json'"
    service = "https://127.0.0.1:5665/v1/objects/services/moodle-web-1!alt42-heartbeat"
    deadline = time.monotonic() + 60
    output = ""
    while time.monotonic() < deadline:
        body = '{"type": "Service", "filter": "service.name==\\"alt42-heartbeat\\"", "force": true}'
        host.run(
            f"{api} -X POST 'https://127.0.0.1:5665/v1/actions/reschedule-check'"
            f" -d {shlex.quote(body)}"
        )
        result = host.run(f"{api} '{service}?attrs=last_check_result'")
        match = re.search(r'"output":"((?:[^"\\]|\\.)*)"', result.stdout)
        if match:
            output = match.group(1)
            break
        time.sleep(2)
    host.run("pkill -x icinga2")
    assert output.startswith("HEARTBEAT OK"), output


def test_the_dropped_rules_and_the_jobs_textfile_pass_promtool(host, ran):
    rules = host.file(RULES)
    assert rules.exists and rules.mode == 0o644
    assert (
        rules.content_string
        == (MONITORING / "prometheus" / "alt42-heartbeat.rules.yml").read_text()
    )
    assert host.run(f"promtool check rules {RULES}").rc == 0
    assert host.file(TEXTFILE).exists
    linted = host.run(f"promtool check metrics < {TEXTFILE}")
    assert linted.rc == 0, linted.stdout + linted.stderr


def test_rules_for_a_host_without_promtool_stop_the_play_with_the_fix(host):
    """An admin who sets the rules directory on a web server without Prometheus: one
    message naming the variable and the fix, and the rules already there untouched."""
    before = host.file(RULES).sha256sum
    run = x.ansible_playbook(
        "--tags",
        "alt42_heartbeat_monitoring",
        extra_vars={"alt42_heartbeat_promtool": "/usr/local/bin/promtool-missing"},
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert (
        "alt42_heartbeat_prometheus_rules_dir is set, but alt42_heartbeat_promtool"
        " (/usr/local/bin/promtool-missing) is not on alt42-molecule-monitoring"
    ) in out, out[-3000:]
    assert host.file(RULES).sha256sum == before
