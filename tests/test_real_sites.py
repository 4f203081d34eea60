"""What real sites do differently from the fixtures: settings only from config.php, a
TCP host beside a stale socket, and cron schedules other than */30, run against the
real MariaDB."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from heartbeat.run import execute
from heartbeat.schedule import parse_schedule
from tests.conftest import DB_PASSWORD, DB_USER, Site, job_lines, make_site, run_cli
from tests.mariadb_server import MariaDBServer


def config_php(site: Site, host: str, socket: str = "", port: object = "''") -> str:
    """A config.php as Moodle's installer writes it, for ``site``."""
    return f"""<?php  // Moodle configuration file

unset($CFG);
global $CFG;
$CFG = new stdClass();

$CFG->dbtype    = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost    = '{host}';
$CFG->dbname    = '{site.name}';
$CFG->dbuser    = '{DB_USER}';
$CFG->dbpass    = '{DB_PASSWORD}';
$CFG->prefix    = '{site.prefix}';
$CFG->dboptions = array (
  'dbpersist' => 0,
  'dbport' => {port},
  'dbsocket' => '{socket}',
  'dbcollation' => 'utf8mb4_unicode_ci',
);

$CFG->wwwroot   = 'https://moodle.example.org';
$CFG->dataroot  = '/var/www/moodledata';
$CFG->admin     = 'admin';

$CFG->directorypermissions = 0777;

require_once(__DIR__ . '/lib/setup.php');
"""


def ini_with_only_config_php(site: Site, php_text: str) -> Path:
    """What the role writes when the operator sets only alt42_heartbeat_db_moodle_config."""
    php = site.tmp / "config.php"
    php.write_text(php_text, encoding="utf-8")
    ini = site.tmp / "heartbeat.ini"
    ini.write_text(
        f"[database]\nmoodle_config = {php}\n[heartbeat]\nlock_file = {site.lock_file}\n",
        encoding="utf-8",
    )
    return ini


@pytest.fixture
def lms_site(mariadb: MariaDBServer, tmp_path: Path) -> Iterator[Site]:
    """A demo site whose tables use the prefix lms_ (not mdl_)."""
    created = make_site(mariadb, tmp_path, prefix="lms_", demo=True)
    yield created
    mariadb.drop_database(created.name)


def test_settings_only_from_config_php_reach_the_site_prefix(lms_site: Site) -> None:
    """No name, user or prefix in the INI: config.php decides, never mdl_ on 'moodle'."""
    ini = ini_with_only_config_php(
        lms_site, config_php(lms_site, "localhost", socket=lms_site.server.socket)
    )
    for command in ("migrate", "run"):
        result = run_cli("--config", str(ini), command)
        assert result.returncode == 0, result.stderr
    assert lms_site.scalar("SELECT COUNT(*) FROM lms_alt42_event_processing_log") == 8
    assert lms_site.scalar("SELECT status FROM lms_alt42_heartbeat_log") == "success"


def test_a_tcp_host_ignores_the_stale_socket(lms_site: Site) -> None:
    """dbhost 127.0.0.1 with a dbsocket left over: PHP's mysqli uses TCP, so does the job
    (the stale socket used to win: 'No such file or directory', exit 3)."""
    port = lms_site.server.port
    text = config_php(lms_site, "127.0.0.1", socket="/nonexistent/mysqld-stale.sock", port=port)
    ini = ini_with_only_config_php(lms_site, text)
    result = run_cli("--config", str(ini), "check")
    assert result.returncode == 3, result.stdout  # tables not migrated yet: connected
    assert f"OK connected to database '{lms_site.name}' as 'alt42' on 127.0.0.1:{port}" in (
        result.stdout
    )
    assert "socket: ignored (" in result.stdout and "means TCP, as PHP's mysqli does" in (
        result.stdout
    )
    assert "lms_alt42_heartbeat_log is missing" in result.stderr


def test_localhost_without_a_socket_names_mysqli_default(lms_site: Site) -> None:
    ini = ini_with_only_config_php(lms_site, config_php(lms_site, "localhost"))
    result = run_cli("--config", str(ini), "check")
    assert "(socket: default: PHP mysqli's socket for host localhost)" in result.stdout
    if result.returncode != 0:  # no server on the default socket here
        assert result.returncode == 3
        assert "on socket /run/mysqld/mysqld.sock" in result.stderr


def test_no_database_name_anywhere_is_a_clear_error(lms_site: Site) -> None:
    text = config_php(lms_site, "localhost").replace("$CFG->dbname", "// $CFG->dbname")
    ini = ini_with_only_config_php(lms_site, text)
    result = run_cli("--config", str(ini), "run")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{ini}: [database] name is not set; looked in environment variable ALT42_DB_NAME" in (
        line
    )
    assert f"{lms_site.tmp / 'config.php'}: $CFG->dbname (not set there)" in line


# --------------------------------------------------------------------------- schedules

#: (cron expression, the minutes of a Wednesday it fires at, told independently)
SCHEDULES: list[tuple[str, Callable[[int, int], bool]]] = [
    ("*/15 * * * *", lambda hour, minute: minute % 15 == 0),
    ("*/30 * * * *", lambda hour, minute: minute % 30 == 0),
    ("*/60 * * * *", lambda hour, minute: minute == 0),
    ("0 * * * *", lambda hour, minute: minute == 0),
    ("*/45 * * * *", lambda hour, minute: minute in (0, 45)),
    ("5,20,50 7-18 * * 1-5", lambda hour, minute: 7 <= hour <= 18 and minute in (5, 20, 50)),
]


@pytest.mark.parametrize(("expression", "fires"), SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_every_scheduled_start_runs_exactly_once_across_two_servers(
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
    expression: str,
    fires: Callable[[int, int], bool],
) -> None:
    """A simulated Wednesday in Seoul (cron's local time): at each start cron makes,
    both servers start the job a few seconds apart, in turn who is first. Every start
    runs once (one success row per start, the other server skips), none is lost."""
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        site.migrate()
        cron = parse_schedule(expression, "test")
        base = site.config()
        heartbeat = dataclasses.replace(
            base.heartbeat, schedule=cron, interval_minutes=cron.shortest_gap_minutes()
        )
        servers = [
            dataclasses.replace(
                base,
                heartbeat=dataclasses.replace(heartbeat, lock_file=str(site.tmp / f"{name}.lock")),
            )
            for name in ("a", "b")
        ]
        day = dt.datetime(2026, 3, 4)  # local wall time
        starts = [
            (day + dt.timedelta(minutes=m)).astimezone(dt.timezone.utc)
            for m in range(24 * 60)
            if fires(m // 60, m % 60)
        ]
        outcomes = []
        with job_lines() as said:
            for index, start in enumerate(starts):
                order = servers if index % 2 == 0 else servers[::-1]
                for offset, config in zip((1, 4), order):
                    moment = start + dt.timedelta(seconds=offset)
                    outcomes.append(execute(config, clock=lambda m=moment: m).status)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    rows = site.query("SELECT slot_start, status FROM mdl_alt42_heartbeat_log ORDER BY slot_start")
    assert [row[0] for row in rows] == [s.replace(tzinfo=None) for s in starts]
    assert {row[1] for row in rows} == {"success"}
    assert outcomes.count("success") == len(starts)
    assert outcomes.count("skipped") == len(starts)
    assert sum("Skipped: this slot is taken by host" in line for line in said) == len(starts)
