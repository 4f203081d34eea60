"""Reliability over months (issue 21): faults that cost a site its runs, each tried for
real (docs/reliability.md's fault table lists them with the figures before and after)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heartbeat import cli, config, db, retention, schema, students
from heartbeat.config import parse_ini
from heartbeat.errors import InternalError
from heartbeat.run import execute
from tests.conftest import DB_USER, ROOT, Site, cli_env, job_lines, role_adhoc, run_cli
from tests.mariadb_server import MariaDBServer

ROLE = ROOT / "roles" / "alt42_heartbeat"

# --------------------------------------------------------------------------- monitors


@pytest.fixture
def garbage_monitor() -> Iterator[str]:
    """A "monitor" on loopback that answers every request with something not HTTP."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2 not a web server\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/ping/abc"
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_a_monitor_that_answers_garbage_never_changes_the_run(
    demo_site: Site, garbage_monitor: str
) -> None:
    """Before: BadStatusLine escaped the ping, the run exited 5 with a traceback and was
    recorded failed with 0 students."""
    ini = demo_site.write_ini(
        sections={"monitoring": {"ping_url": garbage_monitor, "ping_retries": 0}}
    )
    result = demo_site.cli("run")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "Monitor ping" in line]
    assert len(warnings) == 2, result.stderr  # start and success, one line each
    assert "BadStatusLine" in warnings[0] and "/ping/abc" not in warnings[0]
    assert demo_site.query("SELECT status, students_processed FROM mdl_alt42_heartbeat_log") == [
        ("success", 8)
    ]
    assert ini.exists()


@pytest.mark.parametrize(
    "url", ["http://[::1/ping", "https://monitor.example.org:/ping", "https://host:99999/x"]
)
def test_a_ping_url_urllib_cannot_send_to_is_refused_when_read(demo_site: Site, url: str) -> None:
    demo_site.write_ini(sections={"monitoring": {"ping_url": url}})
    result = demo_site.cli("check", "--config-only")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.endswith(
        "[monitoring] ping_url is not an http(s) URL; set e.g. https://hc-ping.com/<uuid>"
        " or remove the key"
    )
    assert url not in line  # the URL holds the check's secret


# --------------------------------------------------------------------------- the password

PADDED = " Sw0rd fish-Z9 "  # spaces at both ends, one inside


@pytest.fixture
def padded_user(mariadb: MariaDBServer, demo_site: Site) -> str:
    user = "alt42_padded"
    mariadb.create_user(user, PADDED, f"GRANT ALL ON `{demo_site.name}`.* TO {{user}}")
    return user


def _ini_with_password(site: Site, user: str, line: str) -> Path:
    ini = site.write_ini(password=None)
    text = ini.read_text().replace(f"user = {DB_USER}", f"user = {user}\n{line}")
    ini.write_text(text)
    return ini


def test_a_password_ending_in_a_space_is_refused_unquoted(demo_site: Site, padded_user: str):
    """Before: the INI parser cut the spaces, check --config-only passed, every run got
    'Access denied'."""
    ini = _ini_with_password(demo_site, padded_user, f"password = {PADDED}")
    result = run_cli("--config", str(ini), "check", "--config-only")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.endswith(
        "[database] password ends with a space, which an INI file cannot keep; put the"
        ' password in double quotes: password = "..."'
    )
    assert "Sw0rd" not in line


def test_a_quoted_password_keeps_its_spaces(demo_site: Site, padded_user: str) -> None:
    ini = _ini_with_password(demo_site, padded_user, f'password = "{PADDED}"')
    result = run_cli("--config", str(ini), "run")
    assert result.returncode == 0, result.stderr
    assert demo_site.scalar("SELECT status FROM mdl_alt42_heartbeat_log") == "success"


@pytest.mark.parametrize("password", [PADDED, '"quoted"', "plain", 'in"side'])
def test_the_role_writes_every_password_so_that_the_job_reads_it_back(
    password: str, tmp_path: Path
) -> None:
    """The role's template renders the INI (real Ansible), the job parses it back."""
    out = tmp_path / "heartbeat.ini"
    role_adhoc(
        "ansible.builtin.template",
        f"src={ROLE / 'templates' / 'heartbeat.ini.j2'} dest={out}",
        {
            "alt42_heartbeat_db_password": password,
            "alt42_heartbeat_db_name": "moodle",
            "alt42_heartbeat_db_user": "alt42",
            "__alt42_heartbeat_target_version": "0.3.0",
            "__alt42_heartbeat_schedule": "*/30 * * * *",
        },
    )
    assert parse_ini(out.read_text(), str(out))["database"]["password"] == password


# --------------------------------------------------------------------------- check


def test_check_refuses_a_run_table_without_its_unique_slot_index(demo_site: Site) -> None:
    """Without the unique index on slot_start two servers both ran one slot, and check
    said OK."""
    demo_site.execute("ALTER TABLE mdl_alt42_heartbeat_log DROP INDEX uq_slot")
    result = demo_site.cli("check")
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert line.endswith(
        "ERROR: schema: table mdl_alt42_heartbeat_log has no unique index on slot_start"
        " (without it two servers can run one slot; run 'alt42-heartbeat migrate')"
    )
    assert demo_site.cli("migrate").returncode == 0
    assert demo_site.cli("check").returncode == 0


# --------------------------------------------------------------------------- prune


def _old_evaluation_rows(site: Site, count: int) -> None:
    """``count`` evaluation rows 100 days old, by doubling (a PHP-era backlog)."""
    site.execute(
        "INSERT INTO mdl_alt42_scenario_evaluation_log (scenario_id, student_id, rules_count,"
        " evaluation_mode, evaluation_result, evaluated_at) VALUES ('S0', '1', 0, 'x', '{}',"
        " UTC_TIMESTAMP() - INTERVAL 100 DAY)"
    )
    while (have := int(site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log"))) < (
        count
    ):
        site.execute(
            "INSERT INTO mdl_alt42_scenario_evaluation_log (scenario_id, student_id,"
            " rules_count, evaluation_mode, evaluation_result, evaluated_at)"
            " SELECT scenario_id, student_id, rules_count, evaluation_mode, evaluation_result,"
            " evaluated_at - INTERVAL id SECOND FROM mdl_alt42_scenario_evaluation_log"
            f" LIMIT {min(have, count - have)}"
        )


def _rows_read_by_one_batch(site: Site, batch: int) -> int:
    """The server's own count of index and row reads for prune's first batch."""
    tables = db.Tables(site.prefix)
    conn = site.conn()
    try:

        def reads() -> int:
            with conn.cursor() as cur:
                cur.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
                return sum(int(value) for _, value in cur.fetchall())

        before = reads()
        statement = retention.batch_statement(tables, "evaluation_log", batch)
        cutoff = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=90)
        assert retention._delete_batch(conn, statement, cutoff) == batch
        return reads() - before
    finally:
        conn.close()


def test_a_prune_batch_costs_the_same_whatever_the_backlog(demo_site: Site) -> None:
    """Before: each batch sorted the whole old range (ORDER BY id): 3.4/10.9/37.1 s per
    batch at 100k/200k/400k old rows. Now it reads its own rows along the time index."""
    _old_evaluation_rows(demo_site, 20_000)
    small = _rows_read_by_one_batch(demo_site, 500)
    _old_evaluation_rows(demo_site, 120_000)
    large = _rows_read_by_one_batch(demo_site, 500)
    assert small <= 2 * 500 + 10, small
    assert large <= 2 * 500 + 10, large


def test_a_large_backlog_drains_under_a_tight_statement_limit(demo_site: Site) -> None:
    _old_evaluation_rows(demo_site, 120_000)
    ini = demo_site.write_ini(query_timeout_seconds=1)
    ini.write_text(ini.read_text() + "[retention]\nbatch_size = 2000\n")
    result = demo_site.cli("prune")
    assert result.returncode == 0, result.stderr
    assert "Pruned 120000 row(s) from mdl_alt42_scenario_evaluation_log" in result.stdout


# --------------------------------------------------------------------------- history


def _long_history(site: Site, student: str, rows: int) -> None:
    """``rows`` profile rows (and biometrics) for one student, by doubling."""
    for table, columns, values in (
        (
            "mdl_alt42_student_profiles",
            "user_id, student_id, emotion_state, immersion_level, engagement_score,"
            " math_confidence, updated_at",
            f"0, '{student}', 'neutral', 5, 0.1, 5, UTC_TIMESTAMP() - INTERVAL 1 DAY",
        ),
        (
            "mdl_alt42_student_biometrics",
            "student_id, stress_level, concentration_level, created_at",
            f"'{student}', 1, 5, UTC_TIMESTAMP() - INTERVAL 1 DAY",
        ),
    ):
        site.execute(f"INSERT INTO {table} ({columns}) VALUES ({values})")
        while (have := int(site.scalar(f"SELECT COUNT(*) FROM {table}"))) < rows:
            site.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}"
                f" WHERE student_id = '{student}' LIMIT {min(have, rows - have)}"
            )


def test_one_students_long_history_reaches_the_job_as_one_row(demo_site: Site) -> None:
    """Before: every profile row of a batch's students was fetched and the latest picked
    in Python: 628 MB of RSS for one student with a million rows. Now the server picks:
    the rows it sends for a batch do not grow with any student's history."""
    # the newest profile row says 불안; 200,000 older ones say neutral
    _long_history(demo_site, "1001", 200_000)
    demo_site.execute(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state,"
        " immersion_level, engagement_score, math_confidence, updated_at)"
        " VALUES (0, '1001', '불안', 5, 0.1, 5, UTC_TIMESTAMP())"
    )
    conn = demo_site.conn()
    try:
        tables = db.Tables(demo_site.prefix)

        def sent() -> int:
            with conn.cursor() as cur:
                cur.execute("SHOW SESSION STATUS LIKE 'Rows_sent'")
                row = cur.fetchone()
            return int(row[1])

        keys = students.id_keys(db.collations_of(conn, tables), tables)
        columns = db.columns_of(conn, tables)[tables.bare(tables.profiles)]
        before = sent()
        states = students.load_states(conn, tables, ["1001", "1002"], columns, keys)
        rows = sent() - before - 1  # the SHOW itself sends one row
    finally:
        conn.close()
    assert states["1001"]["emotion_state"] == "불안"
    assert rows <= 10, rows


# --------------------------------------------------------------------------- migrate


def _site_query_seconds(site: Site, start: threading.Event) -> list[float]:
    """A page of the site reading the event table while migrate waits, in a thread."""
    took: list[float] = []

    def page() -> None:
        start.wait(60)
        conn = site.conn()
        try:
            began = time.monotonic()
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM mdl_alt42_event_processing_log".replace(
                        "mdl_", site.prefix
                    )
                )
            took.append(time.monotonic() - began)
        finally:
            conn.close()

    threading.Thread(target=page, daemon=True).start()
    return took


@pytest.fixture
def backup_transaction(demo_site: Site) -> Iterator[Any]:
    """A backup's long transaction (mysqldump --single-transaction) on a table migrate
    must alter: migrate has an index to add to it."""
    demo_site.execute("ALTER TABLE mdl_alt42_event_processing_log DROP INDEX idx_run")
    conn = demo_site.conn()
    with conn.cursor() as cur:
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        cur.execute("SELECT COUNT(*) FROM " + demo_site.prefix + "alt42_event_processing_log")
    yield conn
    conn.close()


def test_migrate_behind_a_backup_fails_fast_and_names_it(
    mariadb: MariaDBServer, demo_site: Site, backup_transaction: Any
) -> None:
    """Before: the ALTER waited for the metadata lock, every query of the site on the
    table queued behind it (282 s), and migrate failed after 300 s."""
    mariadb.create_user(
        "alt42_migrator", "M1grate-Z9-x", f"GRANT ALL ON `{demo_site.name}`.* TO {{user}}"
    )
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("GRANT PROCESS ON *.* TO 'alt42_migrator'@'localhost'")
    ini = demo_site.write_ini(password="M1grate-Z9-x")
    ini.write_text(ini.read_text().replace(f"user = {DB_USER}", "user = alt42_migrator"))
    holder = backup_transaction.thread_id()
    start = threading.Event()
    took = _site_query_seconds(demo_site, start)
    process = subprocess.Popen(
        [sys.executable, "-m", "heartbeat", "--config", str(ini), "migrate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    time.sleep(1)
    start.set()  # the site's page arrives while migrate waits
    out, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    [line] = err.splitlines()
    assert "ERROR: migrate could not add index mdl_alt42_event_processing_log.idx_run" in line
    assert f"session {holder} (root@localhost, in a transaction for " in line
    assert f"kept the table for {schema.MDL_TRIES} tries of {schema.MDL_WAIT_S} s" in line
    assert out.count("Waiting for the table") == schema.MDL_TRIES - 1
    assert took and took[0] < schema.MDL_WAIT_S + 3, took  # not the 282 s of before
    indexes = demo_site.scalar(
        "SELECT GROUP_CONCAT(INDEX_NAME) FROM information_schema.STATISTICS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
        (demo_site.prefix + "alt42_event_processing_log",),
    )
    assert "idx_run" not in indexes  # nothing half-done


def test_migrate_retries_and_succeeds_once_the_backup_is_done(
    demo_site: Site, backup_transaction: Any
) -> None:
    def finish_later() -> None:
        time.sleep(schema.MDL_WAIT_S + 2)
        backup_transaction.commit()

    threading.Thread(target=finish_later, daemon=True).start()
    result = demo_site.cli("migrate")
    assert result.returncode == 0, result.stderr
    assert "Waiting for the table (add index mdl_alt42_event_processing_log.idx_run" in (
        result.stdout
    )
    assert "Schema is up to date (1 change(s) made)" in result.stdout


# --------------------------------------------------------------------------- connections


@pytest.fixture
def limited_user(mariadb: MariaDBServer, demo_site: Site) -> Iterator[Any]:
    """A job account the server allows ``n`` connections at once (MAX_USER_CONNECTIONS)."""

    def limit(n: int) -> Path:
        mariadb.create_user(
            "alt42_limited",
            "L1mited-Z9-x",
            f"GRANT ALL ON `{demo_site.name}`.* TO {{user}} WITH MAX_USER_CONNECTIONS {n}",
        )
        ini = demo_site.write_ini(password="L1mited-Z9-x")
        ini.write_text(ini.read_text().replace(f"user = {DB_USER}", "user = alt42_limited"))
        return ini

    yield limit
    with mariadb.connect() as conn, conn.cursor() as cur:
        for host in ("localhost", "127.0.0.1"):
            cur.execute(f"DROP USER IF EXISTS 'alt42_limited'@'{host}'")


def test_at_the_connection_limit_a_run_fails_before_it_takes_the_slot(
    demo_site: Site, limited_user: Any
) -> None:
    """Before: the claim came first, the writer's connection was refused (1226), the row
    stayed `running` and the slot was lost to every server."""
    ini = limited_user(1)
    result = run_cli("--config", str(ini), "run")
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert "(1226) User 'alt42_limited' has exceeded the 'max_user_connections'" in line
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0
    demo_site.write_ini()  # the same slot, by an account with room
    again = demo_site.cli("run")
    assert "Completed: 8 processed" in again.stdout, again.stdout + again.stderr


def test_a_failure_at_the_connection_limit_is_recorded_on_the_runs_own_connection(
    mariadb: MariaDBServer, demo_site: Site, limited_user: Any
) -> None:
    """The run has claimed its slot when the server stops taking new connections of its
    account (the DBA lowers the limit; other clients took the rest), and then it fails:
    the failure is recorded on the connection the run holds (before: "Could not record",
    the row stayed `running` and the slot was lost)."""
    limited_user(2)
    config = dataclasses.replace(
        demo_site.config(),
        database=dataclasses.replace(
            demo_site.config().database, user="alt42_limited", password="L1mited-Z9-x"
        ),
    )

    def started(_run_id: str) -> None:
        with mariadb.connect() as conn, conn.cursor() as cur:
            for host in ("localhost", "127.0.0.1"):
                cur.execute(f"ALTER USER 'alt42_limited'@'{host}' WITH MAX_USER_CONNECTIONS 1")
        raise RuntimeError("the monitor's ping broke")  # anything, after the claim

    with job_lines() as said, pytest.raises(InternalError):
        execute(config, on_start=started)
    assert not [line for line in said if "Could not record" in line], said
    assert demo_site.query("SELECT status, exit_code FROM mdl_alt42_heartbeat_log") == [
        ("failed", 5)
    ]


# --------------------------------------------------------------------------- the host lock


def test_a_lock_file_another_user_owns_is_refused(demo_site: Site, tmp_path: Path) -> None:
    """In the world-writable /run/lock any local user could create the job's lock file
    and hold it (`flock`): every run skipped silently."""
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o1777)
    locks.chmod(0o1777)
    lock = locks / "alt42.lock"
    lock.touch()
    os.chown(lock, 65534, 65534)
    demo_site.write_ini(lock_file=str(lock))
    result = demo_site.cli("run")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.endswith(
        f"ERROR: lock file {lock} belongs to user nobody, not to the job's user or root:"
        " another user could hold it and make every run skip; remove it, and keep the lock"
        " where only the job's user can create files ([heartbeat] lock_file)"
    )
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0


def test_a_lock_file_root_made_under_umask_027_stays_openable(
    demo_site: Site, tmp_path: Path
) -> None:
    """root ran the job by hand with a hardened umask: the lock file came out 0640 and
    www-data's later runs could not open it (exit 2 at every slot)."""
    lock = tmp_path / "alt42.lock"
    ini = demo_site.write_ini(lock_file=str(lock))
    done = subprocess.run(
        [
            "/bin/sh",
            "-c",
            f'umask 027 && exec "$0" -m heartbeat --config {ini} run',
            sys.executable,
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert lock.stat().st_mode & 0o777 == 0o644


def test_a_link_in_place_of_the_lock_file_is_refused(demo_site: Site, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.touch()
    lock = tmp_path / "alt42.lock"
    lock.symlink_to(target)
    demo_site.write_ini(lock_file=str(lock))
    result = demo_site.cli("run")
    assert result.returncode == 2
    assert f"cannot open lock file {lock}: Too many levels of symbolic links" in result.stderr


def test_the_role_makes_the_lock_directory_the_job_uses() -> None:
    text = (ROLE / "vars" / "main.yml").read_text()
    assert f"__alt42_heartbeat_lock_dir: {config.LOCK_DIR}\n" in text


# --------------------------------------------------------------------------- status


@pytest.fixture
def slow_link(mariadb: MariaDBServer) -> Iterator[int]:
    """A TCP path to the test server on loopback that holds every chunk 0.6 s (a slow
    link to the database): each statement stays under its own limit, they add up."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while not stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                time.sleep(0.6)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for end in (src, dst):
                with contextlib.suppress(OSError):
                    end.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed at the end of the test
            upstream = socket.create_connection(("127.0.0.1", mariadb.port), timeout=30)
            client.settimeout(30)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def test_status_answers_within_its_deadline_on_a_slow_link(demo_site: Site, slow_link: int):
    """Before: per-statement limits only; on a slow link status took 16.8 s, past the
    15 s its NRPE and Icinga 2 checks wait, which then said CRITICAL, not UNKNOWN."""
    assert demo_site.cli("run").returncode == 0
    ini = demo_site.write_ini()
    text = ini.read_text().replace(
        f"socket = {demo_site.server.socket}", f"host = 127.0.0.1\nport = {slow_link}"
    )
    ini.write_text(text)
    began = time.monotonic()
    result = run_cli("--config", str(ini), "status", "-t", "3")
    took = time.monotonic() - began
    assert result.returncode == 3, result.stdout
    assert result.stdout == ("HEARTBEAT UNKNOWN - no answer from the database within 3 s (-t)\n")
    assert took < 3 + 2.5, took  # the interpreter's start and the line, not the link
    fast = demo_site.write_ini()
    assert run_cli("--config", str(fast), "status").returncode == 0


def test_the_default_status_deadline_is_below_the_shipped_check_timeouts() -> None:
    nagios = (ROOT / "monitoring" / "nagios" / "alt42-heartbeat.cfg").read_text()
    icinga = (ROOT / "monitoring" / "icinga2" / "alt42-heartbeat.conf").read_text()
    assert "check_nrpe -H $HOSTADDRESS$ -t 15 " in nagios and "timeout = 15s" in icinga
    assert cli.STATUS_TIMEOUT_S < 15


# --------------------------------------------------------------------------- a lost host


def _events_of(site: Site, run_id: str) -> int:
    return int(
        site.scalar(
            "SELECT COUNT(*) FROM mdl_alt42_event_processing_log WHERE run_id = %s", (run_id,)
        )
    )


def _running_row(site: Site, timeout: float = 60) -> tuple[str, int]:
    """The run id of the run going on, once it committed a few batches."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = site.query("SELECT run_id FROM mdl_alt42_heartbeat_log WHERE status = 'running'")
        if rows and _events_of(site, rows[0][0]) >= 150:
            return rows[0][0], _events_of(site, rows[0][0])
        time.sleep(0.2)
    raise AssertionError("no run got going")


def _server_a(site: Site, tmp_path: Path) -> Path:
    """Server A's INI: 3,008 students in batches of 50, written at 400 rows/s (a run of
    about 45 s), a lease of 6 s (renewed every 2 s)."""
    site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(30000 + n),) for n in range(3000)],
    )
    return site.write_ini(
        batch_size=50,
        lease_seconds=6,
        lock_file=str(tmp_path / "a.lock"),
        sections={"pacing": {"max_rows_per_second": 400}},
    )


def _server_b_takes_over(site: Site, tmp_path: Path, run_a: str) -> None:
    """Once A's lease has expired, server B (a lock file of its own) runs the next slot,
    although the database still holds A's named lock, and marks A's run failed."""
    time.sleep(6 + 3)
    b = site.config(lease_seconds=6, lock_file=str(tmp_path / "b.lock"))
    next_slot = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)
    summary = execute(b, clock=lambda: next_slot)
    assert (summary.status, summary.students_processed) == ("success", 3008)
    assert (
        site.scalar("SELECT status FROM mdl_alt42_heartbeat_log WHERE run_id = %s", (run_a,))
        == "failed"
    )


def test_a_frozen_run_loses_the_site_to_the_next_server_and_writes_nothing_more(
    demo_site: Site, tmp_path: Path
) -> None:
    """Server A's run is SIGSTOPped mid-run: the database keeps its session, and with it
    the named lock, forever. Before: every server printed "Skipped: ... database lock
    held" at every slot, for as long as A stayed frozen. Now the next slot runs on server
    B, on time; A, resumed, finds its claim taken and writes nothing more."""
    ini = _server_a(demo_site, tmp_path)
    a = subprocess.Popen(
        [sys.executable, "-m", "heartbeat", "--config", str(ini), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        run_a, _ = _running_row(demo_site)
        os.kill(a.pid, signal.SIGSTOP)
        time.sleep(0.5)  # a write in flight reaches the server
        frozen_at = _events_of(demo_site, run_a)
        _server_b_takes_over(demo_site, tmp_path, run_a)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    out, err = a.communicate(timeout=120)
    assert a.returncode == 4, err
    # said by the lease (stopping before the next batch, stdout) or by the batch's fence
    # (an error line, stderr), whichever notices first
    assert "another server took this run over" in out + err
    assert _events_of(demo_site, run_a) == frozen_at  # fenced: nothing after the takeover
    assert (
        demo_site.scalar("SELECT status FROM mdl_alt42_heartbeat_log WHERE run_id = %s", (run_a,))
        == "failed"
    )


NETNS = "alt42rel"
HOST_SIDE, NETNS_SIDE = "10.231.0.1", "10.231.0.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def remote_web_server(mariadb: MariaDBServer) -> Iterator[int]:
    """A web server of its own: a network namespace joined to this host by a veth pair,
    and a TCP path from it to the test database (a relay on the host side, so that the
    database's sessions outlive the link, as a real server's do). Yields the port."""
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", "alt42rel0"], capture_output=True, check=False)
    try:
        _ip("netns", "add", NETNS)
    except (subprocess.CalledProcessError, OSError):
        pytest.skip("needs root and ip netns")
    try:
        _ip("link", "add", "alt42rel0", "type", "veth", "peer", "name", "alt42rel1")
        _ip("link", "set", "alt42rel1", "netns", NETNS)
        _ip("addr", "add", f"{HOST_SIDE}/24", "dev", "alt42rel0")
        _ip("link", "set", "alt42rel0", "up")
        _ip("netns", "exec", NETNS, "ip", "addr", "add", f"{NETNS_SIDE}/24", "dev", "alt42rel1")
        _ip("netns", "exec", NETNS, "ip", "link", "set", "alt42rel1", "up")
        _ip("netns", "exec", NETNS, "ip", "link", "set", "lo", "up")
        relay = socket.create_server((HOST_SIDE, 0))
        relay.settimeout(0.2)
        stop = threading.Event()

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)

        def serve() -> None:
            while not stop.is_set():
                try:
                    client, _ = relay.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", mariadb.port), timeout=600)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pipe, args=(a, b), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        yield relay.getsockname()[1]
        stop.set()
        relay.close()
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", "alt42rel0"], capture_output=True, check=False)


def test_a_run_whose_network_vanished_loses_the_site_to_the_next_server(
    demo_site: Site, remote_web_server: int, tmp_path: Path
) -> None:
    """Server A (its own network namespace) runs over TCP; its link goes down mid-run.
    The database keeps A's session and its named lock (15 min 40 s with a reply in
    flight, 2 h 11 min idle). Before: every other server skipped for that long. Now the
    next slot runs on server B as soon as A's lease has expired."""
    ini = _server_a(demo_site, tmp_path)
    ini.write_text(
        ini.read_text().replace(
            f"socket = {demo_site.server.socket}", f"host = {HOST_SIDE}\nport = {remote_web_server}"
        )
    )
    a = subprocess.Popen(
        ["ip", "netns", "exec", NETNS, sys.executable, "-m", "heartbeat", "--config", str(ini),
         "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )  # fmt: skip
    try:
        run_a, _ = _running_row(demo_site)
        _ip("link", "set", "alt42rel0", "down")  # A's network is gone
        time.sleep(0.5)
        cut_at = _events_of(demo_site, run_a)
        with demo_site.conn() as probe, probe.cursor() as cur:
            name = db.lock_name(demo_site.config().database, "heartbeat")
            cur.execute("SELECT IS_USED_LOCK(%s)", (name,))
            assert cur.fetchone()[0] is not None, "the database still holds A's lock"
        _server_b_takes_over(demo_site, tmp_path, run_a)
        assert _events_of(demo_site, run_a) == cut_at
    finally:
        a.kill()
        a.wait(timeout=30)


def test_the_fault_table_names_every_test_here() -> None:
    """docs/reliability.md tabulates these tests: none may be missing."""
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    names = [
        name
        for name, value in globals().items()
        if name.startswith("test_")
        and callable(value)
        and name != "test_the_fault_table_names_every_test_here"
    ]
    missing = [name for name in names if name not in doc]
    assert missing == []
