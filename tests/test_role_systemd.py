"""The role's systemd scheduler, rendered by real Ansible on this host: the service's
sandbox as `systemd-analyze security` rates it (offline; Molecule `monitoring` rates the
live unit and runs it), what it may write, and the filter that turns the cron schedule
into OnCalendar= lines through the job's own code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROLE, role_adhoc

UNIT = {"name": "alt42-heartbeat", "command": "run", "description": "the student heartbeat run"}
TIMER = {"on_calendar": ["*-*-* *:00,30:00"], "max_run_minutes": 20}


def render_service(tmp_path: Path, settings: dict[str, Any], release: str = "1.0.0") -> str:
    out = tmp_path / "alt42-heartbeat.service"
    role_adhoc(
        "ansible.builtin.template",
        f"src={ROLE / 'templates' / 'systemd.service.j2'} dest={out}",
        {"__alt42_heartbeat_unit": UNIT, "__alt42_heartbeat_timer": TIMER,
         "__alt42_heartbeat_target_version": release, "__alt42_heartbeat_release": "/opt/r",
         "__alt42_heartbeat_schedule": "*/30 * * * *", "alt42_heartbeat_settings": settings},
    )  # fmt: skip
    return out.read_text(encoding="utf-8")


def exposure(unit: Path) -> tuple[float, str]:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "SYSTEMD_COLORS": "0"},
    )  # fmt: skip
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", out.stdout)
    assert level, out.stdout[-500:] + out.stderr
    return float(level.group(1)), level.group(2)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize(
    ("moodle_config", "home"),
    [("/var/www/moodle/config.php", "yes"),
     ("/home/moodle/public_html/moodle/config.php", "read-only")],  # the manual's place
)  # fmt: skip
def test_the_service_is_sandboxed_and_rates_ok(tmp_path: Path, moodle_config: str, home: str):
    text = render_service(tmp_path, {"database": {"moodle_config": moodle_config}})
    assert f"ProtectHome={home}\n" in text
    assert "ExecStart=/opt/alt42-heartbeat/current/venv/bin/alt42-heartbeat --log-file" in text
    assert "TimeoutStartSec=25min\n" in text  # max_run_minutes 20 + 5
    level, rating = exposure(tmp_path / "alt42-heartbeat.service")
    assert level < 4.0 and rating == "OK", (level, rating)


def test_the_service_may_write_the_log_the_lock_and_the_metrics_and_nothing_else(tmp_path: Path):
    text = render_service(tmp_path, {"monitoring": {
        "metrics_file": "/var/lib/prometheus/node-exporter/alt42.prom"}})  # fmt: skip
    writable = re.search(r"^ReadWritePaths=(.*)$", text, re.M)
    assert writable and writable.group(1).split() == [
        "/var/log/alt42", "-/var/lib/alt42-heartbeat", "-/run/lock",
        "-/var/lib/prometheus/node-exporter"]  # fmt: skip
    assert "ProtectSystem=strict\n" in text and "NoNewPrivileges=yes\n" in text


def test_a_release_before_0_3_0_gets_its_output_appended_by_systemd(tmp_path: Path):
    """Those releases cannot open their log (cron's `>>` did): the unit appends for them."""
    text = render_service(tmp_path, {}, release="0.2.0")
    assert "--log-file" not in text
    assert "StandardOutput=append:/var/log/alt42/heartbeat_cron.log\n" in text


def timer_filter(expression: str, max_run: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m",
         "ansible.builtin.debug", "-a",
         f"msg={{{{ {json.dumps(expression)} | alt42_heartbeat_timer({max_run}) | to_json }}}}"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "ANSIBLE_FILTER_PLUGINS": str(ROLE / "filter_plugins"),
             "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )  # fmt: skip


def test_the_filter_gives_the_calendar_and_the_time_limit_from_the_jobs_code() -> None:
    done = timer_filter("5,35 7-19 * * 1-5")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    result = json.loads(shown) if isinstance(shown, str) else shown
    assert result == {
        "on_calendar": [
            "Mon,Tue,Wed,Thu,Fri *-*-* 07,08,09,10,11,12,13,14,15,16,17,18,19:05,35:00"
        ],
        "max_run_minutes": 20,  # the job's default: two thirds of the 30-minute gap
    }


def test_a_schedule_the_job_refuses_stops_the_play_with_its_line() -> None:
    done = timer_filter("61 * * * *")
    assert done.returncode != 0
    assert "alt42_heartbeat_cron_schedule = '61 * * * *': the minute field" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
