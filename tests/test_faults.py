"""Faults injected for real: the database server stopped, crashed (SIGKILL) before and
during a run, a table dropped mid-run, lock waits and a deadlock on the job's tables;
ten runs at once on one host; log rotation during a run; a full disk under the log.

The tests that stop or kill MariaDB use a server of their own (module scope, own data
dir), restarted on the same data dir, so the session's server is never touched. After
each fault: the documented exit code and one line, no batch half-written (evaluation
rows == 5 x event rows, event rows in whole batches), the run row says what happened
as far as the database could know, and the next run processes every student.
``docs/reliability.md`` tabulates these cases.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pymysql
import pymysql.cursors
import pytest

from heartbeat.errors import DatabaseError
from heartbeat.run import execute
from tests.conftest import (
    DB_PASSWORD,
    DB_USER,
    ROOT,
    Site,
    job_lines,
    mailed,
    make_site,
    start_cli,
)
from tests.mariadb_server import MariaDBServer, wait_for_lock_waits

# Small lock waits so that a blocked job gives up within seconds.
FAULT_SERVER_ARGS = ("--innodb-lock-wait-timeout=2", "--lock-wait-timeout=3")
BATCH = 10
EXTRA = 52  # students added to the 8 demo ones: 60 in all, six batches of ten
TOTAL = EXTRA + 8
SCENARIOS = 5


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    server = MariaDBServer(
        str(tmp_path_factory.mktemp("fault-mariadb")), extra_args=FAULT_SERVER_ARGS
    ).start()
    server.create_user(DB_USER, DB_PASSWORD, "GRANT ALL ON `alt42\\_t\\_%`.* TO {user}")
    yield server
    server.destroy()


def ensure_running(server: MariaDBServer) -> None:
    if server.process is None or server.process.poll() is not None:
        server.process = None
        server.start()


@pytest.fixture
def fsite(fault_server: MariaDBServer, tmp_path: Path) -> Iterator[Site]:
    """The demo site plus EXTRA students, on the fault server, batch size BATCH."""
    ensure_running(fault_server)
    site = make_site(fault_server, tmp_path, demo=True)
    site.heartbeat = {"batch_size": BATCH}
    site.migrate()
    add_students(site, EXTRA)
    yield site
    ensure_running(fault_server)
    fault_server.drop_database(site.name)


def add_students(site: Site, count: int, first: int = 20000) -> None:
    site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(first + n),) for n in range(count)],
    )


def counts(site: Site) -> tuple[int, int]:
    """(evaluation rows, event rows)."""
    return (
        int(site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log")),
        int(site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log")),
    )


def assert_whole_batches(site: Site, expected_events: int) -> None:
    """No batch half-written: 5 evaluation rows per event row, events in whole batches,
    and every event row has its five evaluation rows (same event id)."""
    evaluations, events = counts(site)
    assert events == expected_events
    assert events % BATCH == 0
    assert evaluations == SCENARIOS * events
    orphans = site.scalar(
        "SELECT COUNT(*) FROM mdl_alt42_event_processing_log e WHERE (SELECT COUNT(*)"
        " FROM mdl_alt42_scenario_evaluation_log v WHERE v.event_id = e.event_id) <> 5"
    )
    assert orphans == 0


def one_error_line(result: subprocess.CompletedProcess[str], code: int, pattern: str) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert DB_PASSWORD not in result.stdout + result.stderr
    return lines[0]


def shift_run_rows(site: Site, minutes: int) -> None:
    """Move the recorded runs back in time (as if the next run came that much later)."""
    site.execute(
        "UPDATE mdl_alt42_heartbeat_log SET created_at = created_at - INTERVAL %s MINUTE,"
        " execution_time = execution_time - INTERVAL %s MINUTE,"
        " slot_start = slot_start - INTERVAL %s MINUTE,"
        " renewed_at = renewed_at - INTERVAL %s MINUTE",
        (minutes, minutes, minutes, minutes),
    )


def assert_next_run_processes_everyone(site: Site, dead_status: str) -> None:
    """The run that follows a fault: same slot -> skipped; next slot -> every student;
    the row of a run whose process died (``running``) is closed by then: its lease
    expired."""
    same_slot = site.cli("run")
    assert same_slot.returncode == 0, same_slot.stderr
    assert f"Skipped: this slot is taken by host {socket.gethostname()}" in same_slot.stdout
    assert f"({dead_status})" in same_slot.stdout
    before = counts(site)[1]
    shift_run_rows(site, 30)  # the next slot
    following = site.cli("run")
    assert following.returncode == 0, following.stderr
    assert f"Completed: {TOTAL} processed, 0 errors" in following.stdout
    assert counts(site)[1] == before + TOTAL
    statuses = site.query("SELECT status FROM mdl_alt42_heartbeat_log ORDER BY id")
    closed = "failed" if dead_status == "running" else dead_status
    assert statuses == [(closed,), ("success",)]


# --------------------------------------------------------------------------- server down


@pytest.mark.parametrize(
    ("how", "transport", "pattern"),
    [
        ("stopped", "socket", r"\(2003\) Can't connect .*No such file or directory\)$"),
        ("crashed", "socket", r"\(2003\) Can't connect .*Connection refused\)$"),
        ("stopped", "tcp", r"\(2003\) Can't connect .* on '127\.0\.0\.1' .*Connection refused\)$"),
    ],
    ids=["stopped-socket", "crashed-stale-socket", "stopped-tcp"],
)
def test_server_down_before_the_run(
    fsite: Site, how: str, transport: str, pattern: str, tmp_path: Path
) -> None:
    ini = fsite.write_ini()
    if transport == "tcp":
        text = ini.read_text().replace(f"socket = {fsite.server.socket}", "socket =")
        text = text.replace(
            "[database]", f"[database]\nhost = 127.0.0.1\nport = {fsite.server.port}"
        )
        ini.write_text(text)
        assert fsite.cli("check").returncode == 0  # reachable over TCP while it runs
    fsite.server.stop(hard=how == "crashed")
    if how == "crashed":
        assert Path(fsite.server.socket).exists()  # a stale socket file: connection refused
    result = fsite.cli("run")
    line = one_error_line(result, 3, "database error while connecting to database")
    assert re.search(pattern, line), line
    assert result.stdout == ""
    ensure_running(fsite.server)
    if transport == "tcp":  # the restarted server listens on a new port
        ini.write_text(re.sub(r"port = \d+", f"port = {fsite.server.port}", ini.read_text()))
    # nothing could be recorded while the server was down, and nothing was half-written
    assert fsite.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0
    assert counts(fsite) == (0, 0)
    again = fsite.cli("run")
    assert f"Completed: {TOTAL} processed, 0 errors" in again.stdout, again.stderr
    assert_whole_batches(fsite, 60)


# --------------------------------------------------------------------------- server killed mid-run


def _kill_when(site: Site, condition: Callable[[], bool]) -> Callable[[], None]:
    """SIGKILL the server the first time ``condition()`` holds (the job's reader and
    writer threads may both call this: only one checks at a time, none after the kill)."""
    killed: list[bool] = []
    lock = threading.Lock()

    def check() -> None:
        with lock:
            if not killed and condition():
                killed.append(True)
                site.server.stop(hard=True)

    return check


@contextlib.contextmanager
def statement_hook(after: Callable[[str], None]) -> Iterator[None]:
    """Call ``after(sql)`` after each statement the job's connection executes."""
    real = pymysql.cursors.Cursor.execute

    def execute_then(self: Any, query: Any, args: Any = None) -> Any:
        result = real(self, query, args)
        text = query.decode("utf-8", "replace") if isinstance(query, (bytes, bytearray)) else query
        after(str(text))
        return result

    pymysql.cursors.Cursor.execute = execute_then  # type: ignore[method-assign]
    try:
        yield
    finally:
        pymysql.cursors.Cursor.execute = real  # type: ignore[method-assign]


def _committed_events(site: Site) -> int:
    with site.server.connect(site.name) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mdl_alt42_event_processing_log")
        return int(cur.fetchone()[0])


def _run_in_process(site: Site, detail: Any = None) -> tuple[DatabaseError, list[str]]:
    with job_lines(student=detail) as said, pytest.raises(DatabaseError) as err:
        execute(site.config())
    assert err.value.exit_code == 3
    assert "\n" not in str(err.value) and DB_PASSWORD not in str(err.value)
    return err.value, said


def test_server_killed_between_batches(fsite: Site) -> None:
    """SIGKILL right after the third batch's COMMIT, before the fourth is read."""
    real_commit = pymysql.connections.Connection.commit
    kill = _kill_when(fsite, lambda: _committed_events(fsite) >= 3 * BATCH)

    def commit_then_maybe_kill(self: Any) -> None:
        real_commit(self)
        if self.user == DB_USER.encode() or self.user == DB_USER:
            kill()

    pymysql.connections.Connection.commit = commit_then_maybe_kill  # type: ignore[method-assign]
    try:
        error, said = _run_in_process(fsite)
    finally:
        pymysql.connections.Connection.commit = real_commit  # type: ignore[method-assign]
    assert re.search(r"while (reading student state|writing results): \((2013|2006)\)", str(error))
    assert any("Could not record the failed run in the database" in s for s in said)
    ensure_running(fsite.server)
    assert_whole_batches(fsite, 3 * BATCH)
    assert fsite.query("SELECT status, students_processed FROM mdl_alt42_heartbeat_log") == [
        ("running", 0)
    ]
    assert_next_run_processes_everyone(fsite, "running")


def test_server_killed_inside_a_batch_between_its_inserts(fsite: Site) -> None:
    """SIGKILL after the fourth batch's first INSERT ran, before its second and COMMIT."""
    kill = _kill_when(fsite, lambda: _committed_events(fsite) >= 3 * BATCH)

    def after(sql: str) -> None:
        table = sql.split("(", maxsplit=1)[0]
        insert = sql.lstrip().upper().startswith("INSERT INTO")
        if insert and "_log`" in table and "heartbeat_log" not in table:
            kill()

    with statement_hook(after):
        error, _said = _run_in_process(fsite)
    assert "while writing results" in str(error), error
    ensure_running(fsite.server)
    assert_whole_batches(fsite, 3 * BATCH)  # the fourth batch's first INSERT is gone
    assert fsite.scalar("SELECT status FROM mdl_alt42_heartbeat_log") == "running"


def test_server_killed_while_a_batch_is_evaluated(fsite: Site) -> None:
    """SIGKILL at the 25th student: batch three is read and being evaluated."""
    seen: list[str] = []

    def detail(line: str) -> None:
        seen.append(line)
        if len(seen) == 25:
            fsite.server.stop(hard=True)

    error, _said = _run_in_process(fsite, detail)
    assert re.search(r"while (reading student state|writing results): \(20(13|06)\)", str(error))
    ensure_running(fsite.server)
    # batch two is committed unless its write was still in flight (a writer thread)
    events = counts(fsite)[1]
    assert events in (BATCH, 2 * BATCH)
    assert_whole_batches(fsite, events)


def test_cli_run_with_the_server_killed_mid_run(fsite: Site) -> None:
    """As cron runs it: a real process, --verbose, the server SIGKILLed at student 35."""
    ini = fsite.write_ini()
    process = start_cli("--config", str(ini), "run", "--verbose")
    assert process.stdout is not None
    students = 0
    for line in process.stdout:
        if "] student " in line:
            students += 1
            if students == 35:
                fsite.server.stop(hard=True)
                break
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 3, (stdout, stderr)
    # --verbose adds the traceback (documented); the last line is the one-line error
    last = stderr.strip().splitlines()[-1]
    assert re.search(
        r"ERROR: database error while (writing results|reading student state"
        r"|reading the server's load \(pacing\))",
        last,
    )
    assert DB_PASSWORD not in stdout + stderr
    assert "Could not record the failed run in the database" in stdout
    assert "Traceback" not in fsite.cli("run").stderr  # and without --verbose: one line
    ensure_running(fsite.server)
    events = counts(fsite)[1]
    assert events in (2 * BATCH, 3 * BATCH), events  # the batch in hand was not written
    assert_whole_batches(fsite, events)
    assert_next_run_processes_everyone(fsite, "running")


# --------------------------------------------------------------------------- schema and locks


def test_table_dropped_mid_run(fsite: Site) -> None:
    """DROP TABLE of a table the job reads, from another session, during batch two."""
    dropper: list[threading.Thread] = []
    dropped: list[Any] = []

    def drop() -> None:
        with fsite.server.connect(fsite.name) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 5")
            try:
                cur.execute(f"DROP TABLE {fsite.prefix}alt42_students")
                dropped.append(True)
            except pymysql.err.MySQLError as exc:  # waited 5 s for the job's lock
                dropped.append(exc)

    seen: list[str] = []

    def detail(line: str) -> None:
        seen.append(line)
        if len(seen) == BATCH + 1:  # batch two is read: the DROP must get through now
            dropper.append(threading.Thread(target=drop))
            dropper[0].start()
            dropper[0].join(timeout=30)

    try:
        error, _said = _run_in_process(fsite, detail)
    except pytest.fail.Exception:
        pytest.fail(
            "the run went on to the end although a DROP TABLE was waiting: the job must not"
            " hold metadata locks between batches (a waiting DDL blocks every Moodle query"
            " on that table); end the reading transaction after each batch"
        )
    assert dropped == [True]
    assert "while reading student state: (1146)" in str(error), error
    assert "alt42_students' doesn't exist" in str(error)
    assert_whole_batches(fsite, 2 * BATCH)
    assert fsite.query(
        "SELECT status, students_processed, exit_code FROM mdl_alt42_heartbeat_log"
    ) == [("failed", 2 * BATCH, 3)]
    # while the table is missing every run stops at once, naming it
    one_error_line(fsite.cli("run", "--force"), 3, "table mdl_alt42_students is missing")
    fsite.execute(
        "CREATE TABLE mdl_alt42_students (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
        " student_id VARCHAR(32) NOT NULL UNIQUE, userid BIGINT NULL, grade INT NULL,"
        " class VARCHAR(10) NULL, mbti VARCHAR(4) NULL, updated_at TIMESTAMP NULL)"
    )
    assert_next_run_processes_everyone(fsite, "failed")


def test_row_lock_wait_on_the_run_table(fsite: Site) -> None:
    """Another session holds the run table FOR UPDATE: the claim gives up after
    innodb_lock_wait_timeout (2 s here) with exit 3, and nothing is written."""
    with fsite.conn() as other, other.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT * FROM mdl_alt42_heartbeat_log FOR UPDATE")
        started = time.monotonic()
        result = fsite.cli("run")
        waited = time.monotonic() - started
        cur.execute("ROLLBACK")
    one_error_line(result, 3, r"while claiming the run: \(1205\) Lock wait timeout exceeded")
    assert 2 <= waited < 20
    assert fsite.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0
    assert counts(fsite) == (0, 0)
    assert "Completed: 60 processed" in fsite.cli("run").stdout


def test_table_lock_wait_mid_run(fsite: Site) -> None:
    """LOCK TABLES ... WRITE on the event log from another session after batch one: the
    write of batch two waits lock_wait_timeout (3 s), then the run fails, recorded."""
    other = fsite.conn()
    locked: list[int] = []

    def detail(_line: str) -> None:
        # once batch one is committed (a writer thread may still be at it)
        if not locked and _committed_events(fsite) >= BATCH:
            locked.append(_committed_events(fsite))
            with other.cursor() as cur:
                cur.execute(
                    "LOCK TABLES mdl_alt42_event_processing_log WRITE".replace("mdl_", fsite.prefix)
                )

    try:
        error, _said = _run_in_process(fsite, detail)
    finally:
        with other.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        other.close()
    assert "while writing results: (1205) Lock wait timeout exceeded" in str(error)
    assert locked == [BATCH]
    assert_whole_batches(fsite, BATCH)
    assert fsite.query(
        "SELECT status, students_processed, errors, exit_code FROM mdl_alt42_heartbeat_log"
    ) == [("failed", BATCH, 0, 3)]
    assert_next_run_processes_everyone(fsite, "failed")


def test_deadlock_with_another_session(fsite: Site) -> None:
    """A real deadlock: another session holds the event log's gap lock and, while the
    job waits on it, asks for the rows the job just inserted. InnoDB rolls back the
    lighter transaction: the other one has modified more rows, so the job is the victim
    (1213), its whole batch is rolled back and the run is recorded failed."""
    other = fsite.conn()
    other.autocommit(False)
    seen: list[str] = []
    results: list[Any] = []

    def other_session() -> None:
        try:
            with other.cursor() as cur:
                waits = wait_for_lock_waits([fsite.server])  # the job waits for the event log
                assert waits[0] >= 1, "the job never waited for the event log's lock"
                cur.execute(
                    "SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log FOR UPDATE".replace(
                        "mdl_", fsite.prefix
                    )
                )
                results.append(cur.fetchone())
        except pymysql.err.MySQLError as exc:
            results.append(exc)

    thread = threading.Thread(target=other_session)

    def detail(line: str) -> None:
        seen.append(line)
        if len(seen) == BATCH + 1:  # batch one is committed
            with other.cursor() as cur:
                cur.execute("CREATE TEMPORARY TABLE weight (n INT) ENGINE=InnoDB")
                cur.executemany("INSERT INTO weight VALUES (%s)", [(n,) for n in range(3000)])
                cur.execute(
                    "SELECT COUNT(*) FROM mdl_alt42_event_processing_log FOR UPDATE".replace(
                        "mdl_", fsite.prefix
                    )
                )
            thread.start()

    try:
        error, _said = _run_in_process(fsite, detail)
    finally:
        thread.join(timeout=30)
        other.rollback()
        other.close()
    assert "while writing results: (1213) Deadlock found" in str(error), (error, results)
    assert results and not isinstance(results[0], Exception)  # the other session went on
    assert_whole_batches(fsite, BATCH)
    assert fsite.query("SELECT status, students_processed FROM mdl_alt42_heartbeat_log") == [
        ("failed", BATCH)
    ]
    assert_next_run_processes_everyone(fsite, "failed")


# --------------------------------------------------------------------------- one host


def test_ten_runs_at_once_on_one_host(demo_site: Site) -> None:
    add_students(demo_site, 3000)
    ini = demo_site.write_ini(batch_size=100)
    processes = [start_cli("--config", str(ini), "run") for _ in range(10)]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0] * 10, outputs
    assert all(err == "" for _, err in outputs), outputs
    ran = [out for out, _ in outputs if "Completed: 3008 processed, 0 errors" in out]
    skipped = [out for out, _ in outputs if "Skipped:" in out]
    assert (len(ran), len(skipped)) == (1, 9), outputs
    # the host lock turned away those that started while it ran
    assert sum("holds the lock" in out for out in skipped) >= 1
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1
    assert counts(demo_site) == (5 * 3008, 3008)


# --------------------------------------------------------------------------- logs


ROLE = ROOT / "roles" / "alt42_heartbeat"


def _cron_like(ini: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """The role's cron command shape: ``<job> --log-file LOG run`` through /bin/sh."""
    command = f"{sys.executable} -m heartbeat --config {ini} --log-file {log} run {' '.join(args)}"
    return subprocess.Popen(["/bin/sh", "-c", command], env={**os.environ, "PYTHONPATH": str(ROOT)})


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode().splitlines()
    return path.read_text().splitlines()


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_logrotate_while_the_job_writes_loses_no_line(demo_site: Site, tmp_path: Path) -> None:
    template = (ROLE / "templates" / "logrotate.j2").read_text()
    # plain rename rotation: no copytruncate (would lose lines), no signal; the next file
    # is created for the job's user (the running job keeps writing to the renamed one)
    assert not re.search(r"^\s*(copytruncate|postrotate)\b", template, re.MULTILINE)
    assert re.search(
        r"^\s*create \{\{ alt42_heartbeat_log_file_mode \}\} \{\{ alt42_heartbeat_user \}\}",
        template,
        re.MULTILINE,
    )
    add_students(demo_site, 2000)
    ini = demo_site.write_ini(batch_size=10)
    logs = tmp_path / "log"
    logs.mkdir(mode=0o750)
    log = logs / "heartbeat_cron.log"
    conf = tmp_path / "logrotate.conf"
    # the directives the role's template renders with its defaults (no su: we are root
    # and own the directory)
    conf.write_text(
        f"{log} {{\n    create 0644 root root\n    daily\n    rotate 30\n    compress\n"
        "    delaycompress\n    missingok\n    notifempty\n}\n"
    )
    state = tmp_path / "logrotate.state"

    def rotate_when(process: subprocess.Popen[bytes], path: Path, lines: int) -> None:
        deadline = time.monotonic() + 120
        while len(_lines(path)) < lines:
            assert process.poll() is None, "the run ended before the rotation"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        subprocess.run(["logrotate", "-f", "-s", str(state), str(conf)], check=True)

    first = _cron_like(ini, log, "--verbose")
    rotate_when(first, log, 300)
    assert first.wait(timeout=180) == 0
    # the running job kept writing to the renamed file; the next run appends to the new one
    assert log.stat().st_size == 0
    assert (logs / "heartbeat_cron.log.1").exists()
    second = _cron_like(ini, log, "--verbose", "--force")  # same slot: a manual re-run
    rotate_when(second, log, 300)  # now .1 is compressed to .2.gz (delaycompress)
    assert second.wait(timeout=180) == 0
    files = sorted(p.name for p in logs.iterdir())
    assert files == ["heartbeat_cron.log", "heartbeat_cron.log.1", "heartbeat_cron.log.2.gz"]
    everything = [line for name in files for line in _lines(logs / name)]
    per_run = 2008 + 3  # one line per student + Starting, Found, Completed
    assert len(everything) == 2 * per_run
    assert sum("] student " in line for line in everything) == 2 * 2008
    assert sum("Completed: 2008 processed, 0 errors" in line for line in everything) == 2
    assert all(re.match(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ", line) for line in everything)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs filled to the last byte (needs root and mount(2))."""
    mount = tmp_path / "full"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        (mount / "heartbeat_cron.log").touch()
        with open(mount / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"x" * 4096)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_under_the_log(demo_site: Site, full_disk: Path) -> None:
    """The cron line's log on a full disk: no line can be written, but the run goes
    on, records itself completely in the database and exits 1 (not 0)."""
    log = full_disk / "heartbeat_cron.log"
    ini = demo_site.write_ini()
    process = _cron_like(ini, log)
    assert process.wait(timeout=120) == 1
    assert log.stat().st_size == 0  # the disk really was full
    assert demo_site.query(
        "SELECT status, students_processed, errors, exit_code FROM mdl_alt42_heartbeat_log"
    ) == [("success", 8, 0, 0)]
    assert counts(demo_site) == (40, 8)


def test_full_disk_under_the_log_is_mailed(demo_site: Site, full_disk: Path, mta: Path) -> None:
    """Nothing reaches the full log, so the failure mail is how the admin hears of it."""
    ini = demo_site.write_ini()
    ini.write_text(ini.read_text() + f"[monitoring]\nmail_to = root\nsendmail = {mta}\n")
    assert _cron_like(ini, full_disk / "heartbeat_cron.log").wait(timeout=120) == 1
    [message] = mailed(mta)
    assert (
        "exit 1, some students failed, or the job's output could not be written"
        in (message["Subject"])
    )
    body = message.get_content()
    assert "Completed: 8 processed, 0 errors" in body
    log = full_disk / "heartbeat_cron.log"
    assert f"ERROR: output lost, cannot write to {log}: No space left on device" in body
    assert f"The whole output is in {log}." in body


def test_full_disk_on_stdout_only_says_so_on_stderr(demo_site: Site, full_disk: Path) -> None:
    with open(full_disk / "heartbeat_cron.log", "a") as out:
        done = subprocess.run(
            [sys.executable, "-m", "heartbeat", "--config", str(demo_site.write_ini()), "run"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
    result = subprocess.CompletedProcess(done.args, done.returncode, "", done.stderr)
    line = one_error_line(result, 1, r"ERROR: output lost, cannot write to <stdout>: ")
    assert "No space left on device" in line
    assert demo_site.scalar("SELECT status FROM mdl_alt42_heartbeat_log") == "success"
    # a later run, with room on the disk, is skipped in the same slot and reports nothing lost
    assert "Skipped" in demo_site.cli("run").stdout


def test_reader_gone_mid_run_closed_pipe(demo_site: Site) -> None:
    """``run --verbose | head -1``: the pipe closes after one line; the run still
    completes and records itself, and exits 1 saying the output was lost."""
    add_students(demo_site, 2000)
    ini = demo_site.write_ini()
    process = start_cli("--config", str(ini), "run", "--verbose")
    assert process.stdout is not None and process.stderr is not None
    assert "Starting heartbeat run" in process.stdout.readline()
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(timeout=120) == 1
    result = subprocess.CompletedProcess(process.args, 1, "", errors)
    one_error_line(result, 1, r"ERROR: output lost, cannot write to <stdout>: Broken pipe")
    assert demo_site.query(
        "SELECT status, students_processed, errors FROM mdl_alt42_heartbeat_log"
    ) == [("success", 2008, 0)]
    assert counts(demo_site) == (5 * 2008, 2008)


def test_report_into_a_closed_pipe(demo_site: Site) -> None:
    """``report | head -1`` over 5,000 runs: no BrokenPipeError traceback."""
    demo_site.executemany(
        "INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at, students_processed,"
        " status) VALUES (UTC_TIMESTAMP(), UTC_TIMESTAMP(), %s, 'success')",
        [(n,) for n in range(5000)],
    )
    ini = demo_site.write_ini()
    for args in (["report"], ["report", "--format", "json"]):
        process = start_cli("--config", str(ini), *args)
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline()
        process.stdout.close()
        errors = process.stderr.read()
        assert process.wait(timeout=60) == 1
        result = subprocess.CompletedProcess(process.args, 1, "", errors)
        one_error_line(result, 1, r"ERROR: output lost, cannot write to <stdout>: Broken pipe")


# --------------------------------------------------------------------------- the report


def test_reliability_doc_names_every_fault_test() -> None:
    """docs/reliability.md tabulates these tests: none may be missing or invented."""
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    source = Path(__file__).read_text(encoding="utf-8")
    tests = set(re.findall(r"^def (test_\w+)\(", source, re.MULTILINE))
    tests.discard("test_reliability_doc_names_every_fault_test")
    named = set(re.findall(r"`(test_\w+)(?:\[[\w-]+\])?`", doc))
    assert tests - named == set()
    every_test = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("*.py"))
    assert {name for name in named if f"def {name}(" not in every_test} == set()
    for case in ("stopped-socket", "crashed-stale-socket", "stopped-tcp"):
        assert f"test_server_down_before_the_run[{case}]" in doc
