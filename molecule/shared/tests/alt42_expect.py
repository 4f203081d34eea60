"""What the scenarios expect on a converged host (docs/role-interface.md), shared helpers.

Each scenario's molecule.yml passes its variations through the verifier's environment:
ALT42_TEST_RUNTIME (python|php), ALT42_TEST_SCHEDULE, ALT42_TEST_DB_PASSWORD.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[3]

CRON_FILE = "/etc/cron.d/alt42-heartbeat"
CONFIG_FILE = "/etc/alt42/heartbeat.ini"
LOG_DIR = "/var/log/alt42"
LOG_FILE = f"{LOG_DIR}/heartbeat_cron.log"
LOGROTATE_FILE = "/etc/logrotate.d/alt42-heartbeat"
INSTALL_DIR = "/opt/alt42-heartbeat"
VENV_DIR = f"{INSTALL_DIR}/venv"
CLI = f"{VENV_DIR}/bin/alt42-heartbeat"
PHP_BINARY = "/usr/bin/php"
PHP_SCRIPT = "/var/www/moodle/local/alt42/heartbeat.php"
DEFAULT_SCHEDULE = "*/30 * * * *"


def runtime() -> str:
    return os.environ.get("ALT42_TEST_RUNTIME", "python")


def with_database() -> bool:
    """True in the end-to-end scenario (a seeded MariaDB in the container)."""
    return os.environ.get("ALT42_TEST_WITH_DATABASE", "") == "yes"


def schedule() -> str:
    return os.environ.get("ALT42_TEST_SCHEDULE", DEFAULT_SCHEDULE)


def db_password() -> str:
    password = os.environ.get("ALT42_TEST_DB_PASSWORD", "")
    assert len(password) >= 12, "set ALT42_TEST_DB_PASSWORD (distinctive) in molecule.yml"
    return password


def expected_command() -> str:
    """The job's command in the cron entry, as agreed in docs/role-interface.md."""
    if runtime() == "php":
        job = f"{PHP_BINARY} {PHP_SCRIPT}"
    else:
        job = f"{CLI} --config {CONFIG_FILE} run"
    return f"{job} >> {LOG_FILE} 2>&1"


def project_version() -> str:
    text = (PROJECT_DIR / "heartbeat" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    assert match, "no __version__ in heartbeat/__init__.py"
    return match.group(1)


@dataclass(frozen=True)
class CronEntry:
    schedule: str
    user: str
    command: str


def parse_cron_d(text: str) -> tuple[dict[str, str], list[CronEntry]]:
    """Split a cron.d file into its environment assignments and its job lines."""
    env: dict[str, str] = {}
    jobs: list[CronEntry] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
            continue
        fields = line.split(None, 6)
        if line.startswith("@"):
            fields = line.split(None, 2)
            jobs.append(CronEntry(fields[0], fields[1], fields[2]))
        else:
            assert len(fields) == 7, f"cron line without user field or command: {line!r}"
            jobs.append(CronEntry(" ".join(fields[:5]), fields[5], fields[6]))
    return env, jobs


def cron_job(host) -> CronEntry:
    """The single job line of the role's cron.d file."""
    _, jobs = parse_cron_d(host.file(CRON_FILE).content_string)
    assert len(jobs) == 1, f"expected exactly one job line in {CRON_FILE}, got {jobs}"
    return jobs[0]


def as_www_data(command: str) -> str:
    """A shell command line running COMMAND through sh as www-data (as cron does)."""
    return f"runuser -u www-data -- sh -c {shlex.quote(command)}"
