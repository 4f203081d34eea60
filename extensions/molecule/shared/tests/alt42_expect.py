"""What the scenarios expect on a converged host (docs/role-interface.md), shared helpers.

Each scenario's molecule.yml passes its variations through the verifier's environment:
ALT42_TEST_RUNTIME (python|php), ALT42_TEST_SCHEDULE, ALT42_TEST_DB_PASSWORD.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# extensions/molecule/shared/tests/ -> the project's root (tests/test_molecule_layout.py
# checks it, as a moved directory once made it point at extensions/).
PROJECT_DIR = Path(__file__).resolve().parents[4]
SHARED_DIR = Path(__file__).resolve().parents[1]

CRON_FILE = "/etc/cron.d/alt42-heartbeat"
CONFIG_FILE = "/etc/alt42/heartbeat.ini"  # a link to the current release's INI
LOG_DIR = "/var/log/alt42"
LOG_FILE = f"{LOG_DIR}/heartbeat_cron.log"
LOGROTATE_FILE = "/etc/logrotate.d/alt42-heartbeat"
INSTALL_DIR = "/opt/alt42-heartbeat"
CURRENT = f"{INSTALL_DIR}/current"  # a link to the release cron starts
VENV_DIR = f"{CURRENT}/venv"
CLI = f"{VENV_DIR}/bin/alt42-heartbeat"
PHP_BINARY = "/usr/bin/php"
# the seed manual's path (the role's default alt42_heartbeat_php_script)
PHP_SCRIPT = (
    "/home/moodle/public_html/moodle/local/augmented_teacher/alt42/orchestration/api/scheduler"
    "/heartbeat.php"
)
DEFAULT_SCHEDULE = "*/30 * * * *"
PRUNE_SCHEDULE = "17 3 * * *"
HEARTBEAT_LOG = "mdl_alt42_heartbeat_log"  # the run rows (the seeded site's prefix)


def runtime() -> str:
    return os.environ.get("ALT42_TEST_RUNTIME", "python")


def with_database() -> bool:
    """True in the end-to-end scenario (a seeded MariaDB in the container)."""
    return os.environ.get("ALT42_TEST_WITH_DATABASE", "") == "yes"


def moodle_site() -> tuple[str, ...]:
    """(database name, user) that the scenario's config.php names, or () without one."""
    return tuple(os.environ.get("ALT42_TEST_MOODLE_SITE", "").split())


def schedule() -> str:
    return os.environ.get("ALT42_TEST_SCHEDULE", DEFAULT_SCHEDULE)


def db_password() -> str:
    password = os.environ.get("ALT42_TEST_DB_PASSWORD", "")
    assert len(password) >= 12, "set ALT42_TEST_DB_PASSWORD (distinctive) in molecule.yml"
    return password


def expected_command() -> str:
    """The job's command in the cron entry, as agreed in docs/role-interface.md."""
    if runtime() == "php":
        return f"{PHP_BINARY} {PHP_SCRIPT} >> {LOG_FILE} 2>&1"
    return f"{CLI} --log-file {LOG_FILE} run"  # the release's own INI


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


def parse_cron(text: str, user: str | None = None) -> tuple[dict[str, str], list[CronEntry]]:
    """Split a cron.d file (USER None: each line names its user) or a user's crontab
    (USER given, no user field) into environment assignments and job lines."""
    env: dict[str, str] = {}
    jobs: list[CronEntry] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
        if assignment:
            value = assignment.group(2).strip()
            # cron strips one pair of matching quotes (Ansible's cron module writes them).
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            env[assignment.group(1)] = value
            continue
        n_time = 1 if line.startswith("@") else 5
        fields = line.split(None, n_time + (0 if user else 1))
        assert len(fields) == n_time + (1 if user else 2), f"incomplete cron line: {line!r}"
        job_user = user or fields[n_time]
        jobs.append(CronEntry(" ".join(fields[:n_time]), job_user, fields[-1]))
    return env, jobs


def cron_method() -> str:
    return os.environ.get("ALT42_TEST_CRON_METHOD", "cron_d")


def cron_text(host) -> str:
    """The text that schedules the job: the cron.d file or www-data's crontab."""
    if cron_method() == "crontab":
        return host.check_output("crontab -l -u www-data") + "\n"
    return host.file(CRON_FILE).content_string


def cron_env_and_jobs(host) -> tuple[dict[str, str], list[CronEntry]]:
    user = "www-data" if cron_method() == "crontab" else None
    return parse_cron(cron_text(host), user)


def expected_prune_command() -> str:
    return f"{CLI} --log-file {LOG_FILE} prune"


def is_prune(command: str) -> bool:
    """The prune line, in the form of this release or of one before 0.3.0 (a roll back)."""
    return re.search(r" prune( >> |$)", command) is not None


def cron_job(host) -> CronEntry:
    """The job's line of the role's schedule (the only line but for the prune line)."""
    _, jobs = cron_env_and_jobs(host)
    runs = [job for job in jobs if not is_prune(job.command)]
    assert len(runs) == 1, f"expected exactly one job line ({cron_method()}), got {jobs}"
    return runs[0]


def prune_jobs(host) -> list[CronEntry]:
    _, jobs = cron_env_and_jobs(host)
    return [job for job in jobs if job.command == expected_prune_command()]


def as_www_data(command: str) -> str:
    """A shell command line running COMMAND through sh as www-data (as cron does)."""
    return f"runuser -u www-data -- sh -c {shlex.quote(command)}"


def world_readable_files_containing(host, secret: str) -> list[str]:
    """World-readable files under /etc, /opt and /var/log that contain SECRET.

    A probe file holding the secret proves that the search itself works."""
    probe = "/var/log/alt42-secret-probe"
    quoted = shlex.quote(secret)
    host.check_output(f"printf 'x%sx\\n' {quoted} > {probe} && chmod 0644 {probe}")
    search = (
        "find /etc /opt /var/log -xdev -type f -perm -o=r -print0"
        f" | xargs -0 grep -lsF -e {quoted} --"
    )
    try:
        found = host.run(search).stdout.split()
    finally:
        host.run(f"rm -f {probe}")
    assert probe in found, "the search must be able to find the secret"
    return sorted(f for f in found if f != probe)


def ansible_playbook(
    *args: str, extra_vars: dict[str, Any] | None = None, playbook: str = ""
) -> subprocess.CompletedProcess[str]:
    """The shared converge once more (or ``playbook``, relative to the project), from the
    verifier, against this scenario's instance.

    Molecule's inventory and ansible.cfg come through the verifier's environment
    (MOLECULE_INVENTORY_FILE, ANSIBLE_CONFIG); extra variables go in a 0600 file, so that
    no secret of a test is on a command line either."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(extra_vars or {}, handle)
    try:
        return subprocess.run(
            [
                "ansible-playbook",
                "-i",
                str(inventory),
                "-e",
                f"@{handle.name}",
                *args,
                str(PROJECT_DIR / playbook if playbook else SHARED_DIR / "converge.yml"),
            ],
            capture_output=True,
            text=True,
            env=os.environ,
            timeout=900,
            check=False,
        )
    finally:
        os.unlink(handle.name)


def sql(host, query: str) -> list[list[str]]:
    """Rows of QUERY on the seeded site (MariaDB's root over the socket), as strings."""
    out = host.check_output(f"mariadb -N -B moodle -e {shlex.quote(query)}")
    return [line.split("\t") for line in out.splitlines() if line]
