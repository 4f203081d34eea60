"""Fixtures: one private MariaDB per test session, a fresh database per test.

The server comes from the ``mariadb-server`` package (``scripts/bootstrap`` installs
it) and runs on its own data dir, socket and port; nothing touches a system server.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import pytest

from heartbeat.config import Config, DatabaseConfig, HeartbeatConfig, PacingConfig
from tests.mariadb_server import MariaDBServer

ROOT = Path(__file__).resolve().parent.parent
DB_USER = "alt42"
DB_PASSWORD = "Sw0rdfish-Z9-do-not-print"  # distinctive: tests assert it never shows


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    server = MariaDBServer(str(tmp_path_factory.mktemp("mariadb"))).start()
    server.create_user(DB_USER, DB_PASSWORD, "GRANT ALL ON `alt42\\_t\\_%`.* TO {user}")
    yield server
    server.destroy()


UNPACED_WRITES = {"max_rows_per_second": 0, "max_delay_percent": 0}


@dataclass
class Site:
    """One test database (a Moodle site) with the ALT42 schema and a job config."""

    server: MariaDBServer
    name: str
    prefix: str
    tmp: Path
    heartbeat: dict[str, Any] = field(default_factory=dict)

    def conn(self) -> Any:
        return self.server.connect(self.name)

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.conn() as conn, conn.cursor() as cur:
            cur.execute(sql.replace("mdl_", self.prefix), params)
            return list(cur.fetchall())

    def scalar(self, sql: str, params: Any = None) -> Any:
        return self.query(sql, params)[0][0]

    def execute(self, sql: str, params: Any = None) -> None:
        with self.conn() as conn, conn.cursor() as cur:
            cur.execute(sql.replace("mdl_", self.prefix), params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn() as conn, conn.cursor() as cur:
            cur.executemany(sql.replace("mdl_", self.prefix), rows)

    @property
    def lock_file(self) -> str:
        return str(self.tmp / "heartbeat.lock")

    def config(self, **heartbeat: Any) -> Config:
        """The in-process configuration (for tests that call the modules directly)."""
        settings = {"lock_file": self.lock_file, **self.heartbeat, **heartbeat}
        return Config(
            path=str(self.tmp / "heartbeat.ini"),
            database=DatabaseConfig(
                host="localhost",
                socket=self.server.socket,
                name=self.name,
                user=DB_USER,
                password=DB_PASSWORD,
                prefix=self.prefix,
            ),
            heartbeat=HeartbeatConfig(**settings),
            pacing=PacingConfig(max_rows_per_second=0, max_delay_percent=0),
        )

    def write_ini(
        self,
        password: Optional[str] = DB_PASSWORD,
        sections: Optional[dict[str, dict[str, Any]]] = None,
        shipped_pacing: bool = False,
        **heartbeat: Any,
    ) -> Path:
        """The INI file the CLI reads, mode 0600 (it may hold the password); ``sections``
        adds others (``{"pacing": {"max_threads_running": 3}}``); ``shipped_pacing``
        leaves [pacing] to the job's defaults (else its writes are not spread)."""
        settings = {"lock_file": self.lock_file, **self.heartbeat, **heartbeat}
        lines = [
            "[database]",
            f"socket = {self.server.socket}",
            f"name = {self.name}",
            f"user = {DB_USER}",
            f"prefix = {self.prefix}",
        ]
        if password is not None:
            lines.append(f"password = {password}")
        lines.append("[heartbeat]")
        lines += [f"{key} = {value}" for key, value in settings.items()]
        # The tests count batches and time: unless a test is about pacing, writes go as
        # fast as the server takes them (the shipped default adapts to the server).
        sections = dict(sections or {})
        if not shipped_pacing:
            sections["pacing"] = {**UNPACED_WRITES, **sections.get("pacing", {})}
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {value}" for key, value in values.items()]
        path = self.tmp / "heartbeat.ini"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def cli(
        self, *args: str, env: Optional[dict[str, str]] = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m heartbeat --config <ini> ARGS`` as cron would (a real process)."""
        ini = self.tmp / "heartbeat.ini"
        if not ini.exists():
            self.write_ini()
        return run_cli("--config", str(ini), *args, env=env)

    def migrate(self) -> None:
        result = self.cli("migrate")
        assert result.returncode == 0, result.stderr


ROLE = ROOT / "roles" / "alt42_heartbeat"


def role_adhoc(module: str, args: str, extra_vars: dict[str, Any]) -> dict[str, Any]:
    """One module run by real Ansible on this host, with the role's defaults and vars
    (and ``extra_vars``) loaded as the role has them; its result (a failure asserts)."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-c",
            "local",
            "-e",
            f"@{ROLE / 'defaults' / 'main.yml'}",
            "-e",
            f"@{ROLE / 'vars' / 'main.yml'}",
            "-e",
            json.dumps(extra_vars),
            "-m",
            module,
            "-a",
            args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result


def cli_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment of a job process: ours minus ALT42_*/PYTEST_*, the repo importable."""
    base = {
        key: value for key, value in os.environ.items() if not key.startswith(("ALT42_", "PYTEST_"))
    }
    base["PYTHONPATH"] = str(ROOT)
    return {**base, **(extra or {})}


def run_cli(*args: str, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    """``python -m heartbeat ARGS`` to completion, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "heartbeat", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=300,
        check=False,
    )


def start_cli(*args: str, stderr: Optional[int] = subprocess.PIPE) -> subprocess.Popen[str]:
    """``python -m heartbeat ARGS`` started in the background (stdout piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "heartbeat", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=cli_env(),
    )


@contextlib.contextmanager
def job_lines(student: Optional[Callable[[str], None]] = None) -> Iterator[list[str]]:
    """The lines a run in this process logs (as the CLI prints them, without the time);
    ``student`` is called with each per-student line (``--verbose``), as it happens."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            lines.append(text)
            if student is not None and text.startswith("student "):
                student(text)

    logger = logging.getLogger("heartbeat")
    handler, level = Collect(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if student is not None else logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def make_site(server: MariaDBServer, tmp: Path, prefix: str = "mdl_", demo: bool = False) -> Site:
    name = f"alt42_t_{uuid.uuid4().hex[:10]}"
    server.create_database(name, prefix=prefix, demo=demo)
    return Site(server=server, name=name, prefix=prefix, tmp=tmp)


@pytest.fixture
def site(mariadb: MariaDBServer, tmp_path: Path) -> Iterator[Site]:
    """An empty site: the ALT42 read-side schema, no rows, job tables not migrated."""
    created = make_site(mariadb, tmp_path)
    yield created
    mariadb.drop_database(created.name)


@pytest.fixture
def demo_site(mariadb: MariaDBServer, tmp_path: Path) -> Iterator[Site]:
    """The demo population (tests/sql/demo_data.sql) with the job's tables migrated."""
    created = make_site(mariadb, tmp_path, demo=True)
    created.migrate()
    yield created
    mariadb.drop_database(created.name)


class Monitor(http.server.BaseHTTPRequestHandler):
    """A fake dead-man's-switch service on loopback: records the paths it is pinged on."""

    hits: ClassVar[list[str]] = []
    fail_first: ClassVar[int] = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).hits.append(self.path)
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(500)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def monitor() -> Iterator[str]:
    Monitor.hits = []
    Monitor.fail_first = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Monitor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping/abc-123"
    server.shutdown()


@pytest.fixture
def mta(tmp_path: Path) -> Path:
    """A sendmail(8) stand-in: argv to ``args``, each message to ``outbox/<n>.eml``."""
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    script = tmp_path / "sendmail"
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(ls {outbox} | wc -l)\n"
        f'printf "%s\\n" "$*" > {tmp_path}/args\n'
        f"cat > {outbox}/$n.eml\n"
        'exit "${MTA_EXIT:-0}"\n'
    )
    script.chmod(0o755)
    return script


def mailed(mta: Path) -> list[EmailMessage]:
    outbox = mta.parent / "outbox"
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in sorted(outbox.iterdir())
    ]


@pytest.fixture(autouse=True)
def _fresh_job_logger() -> Iterator[None]:
    """A test that runs the CLI in-process leaves the ``heartbeat`` logger writing to its
    own captured stdout, which pytest closes afterwards: every later in-process run then
    failed with "I/O operation on closed file" (seen in the order run_records, cluster)."""
    yield
    logger = logging.getLogger("heartbeat")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
