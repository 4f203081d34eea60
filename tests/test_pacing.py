"""Pacing ([pacing], heartbeat/pacing.py) against real load on a real MariaDB.

The load is real statements: connections running ``SELECT SLEEP(n)`` are what
``Threads_running`` counts; a replica is a second mariadbd replicating from a primary
with a delay; Galera flow control comes from a node whose applier waits behind a
``LOCK TABLES`` (in tests/test_galera.py, next to the cluster fixture).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heartbeat import db, pacing
from heartbeat.config import PacingConfig
from heartbeat.probe import SWITCH_INTERVAL_S
from tests.conftest import DB_PASSWORD, DB_USER, Site, make_site, start_cli
from tests.mariadb_server import MariaDBServer
from tests.test_faults import add_students

SCENARIOS = 5
PAUSED = re.compile(r"paced ([0-9.]+) s \((\d+) load waits, ([0-9.]+) s: (.*?)\)")


class Sleepers:
    """``count`` connections each running ``SELECT SLEEP(seconds)``: Threads_running
    counts them while they run. ``stop`` kills them early."""

    def __init__(self, server: MariaDBServer, count: int, seconds: float) -> None:
        self.server = server
        self.connections = [server.connect() for _ in range(count)]
        self.threads = [
            threading.Thread(target=self._sleep, args=(conn, seconds), daemon=True)
            for conn in self.connections
        ]

    @staticmethod
    def _sleep(conn: Any, seconds: float) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT SLEEP(%s)", (seconds,))
        except Exception:  # noqa: BLE001, S110 - killed by stop(): that is the point
            pass

    def start(self) -> Sleepers:
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 10
        while self.running() < len(self.threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.running() >= len(self.threads)
        return self

    def running(self) -> int:
        with self.server.connect() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                " WHERE INFO LIKE 'SELECT SLEEP%%'"
            )
            return int(cur.fetchone()[0])

    def stop(self) -> None:
        with self.server.connect() as conn, conn.cursor() as cur:
            for sleeper in self.connections:
                cur.execute("KILL %s", (sleeper.thread_id(),))
        for thread in self.threads:
            thread.join(timeout=10)


def summary_line(output: str) -> str:
    [line] = [ln for ln in output.splitlines() if "] Completed: " in ln or "] Aborted: " in ln]
    return line


def test_a_busy_server_makes_the_run_wait_then_go_on(demo_site: Site, tmp_path: Path) -> None:
    """Six statements running (limit 3): the run waits before its first batch, looks
    again every second, goes on once they ended; the wait is in the --verbose lines, in
    the summary line and in the metrics."""
    metrics = tmp_path / "heartbeat.prom"
    demo_site.write_ini(
        sections={
            "pacing": {"max_threads_running": 3},
            "monitoring": {"metrics_file": metrics},
        },
        batch_size=2,
    )
    sleepers = Sleepers(demo_site.server, 6, 3).start()
    try:
        result = demo_site.cli("run", "--verbose")
    finally:
        sleepers.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"\] Pacing: waiting \(Threads_running (\d+) > 3\)", out), out
    assert re.search(r"\] Pacing: going on after [0-9.]+ s", out), out
    line = summary_line(out)
    assert "Completed: 8 processed, 0 errors" in line
    paced = PAUSED.search(line)
    assert paced, line
    assert int(paced.group(2)) >= 1
    assert 1.0 <= float(paced.group(3)) <= 10.0  # the sleepers had 3 s
    assert paced.group(4).startswith("Threads_running ")
    text = metrics.read_text(encoding="utf-8")
    waits = re.search(r"^alt42_heartbeat_pacing_waits (\d+)$", text, re.M)
    seconds = re.search(r"^alt42_heartbeat_pacing_wait_seconds ([0-9.]+)$", text, re.M)
    assert waits and int(waits.group(1)) >= 1, text
    assert seconds and float(seconds.group(1)) >= 1.0, text
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 8


def test_an_idle_server_is_not_waited_for(demo_site: Site) -> None:
    """The shipped [pacing] on a quiet server: no load wait, and the adaptive pacing
    finds the site quiet before the first batch: one batch, unpaced."""
    demo_site.write_ini(shipped_pacing=True)
    result = demo_site.cli("run", "--verbose", "--progress")
    assert result.returncode == 0, result.stderr
    assert "Pacing: waiting" not in result.stdout
    assert "load waits" not in summary_line(result.stdout)
    progress = [ln for ln in result.stdout.splitlines() if "] Progress: " in ln]
    assert len(progress) == 1, result.stdout
    assert "Pacing: the site is quiet (0 statements/s): duty 5% -> 100%" in result.stdout


def test_a_load_that_never_clears_ends_the_run_by_its_deadline(demo_site: Site) -> None:
    """Load arrives after some batches and stays: the run stops at max_run_minutes with
    exit 4, its line says pacing held it back on what; every committed batch is whole
    and the run row counts exactly the students written."""
    add_students(demo_site, 32)  # 40 active students
    demo_site.write_ini(
        sections={"pacing": {"max_threads_running": 3, "max_rows_per_second": 60}},
        max_run_minutes=1,
    )
    job = start_cli("--config", str(demo_site.tmp / "heartbeat.ini"), "run", "--progress")
    assert job.stdout is not None
    lines = []
    sleepers = None
    try:
        for line in job.stdout:
            lines.append(line)
            if "] Progress: " in line and sleepers is None and len(lines) > 2:
                sleepers = Sleepers(demo_site.server, 6, 120).start()
        job.wait(timeout=120)
    finally:
        if sleepers:
            sleepers.stop()
        if job.poll() is None:
            job.kill()
    out = "".join(lines)
    assert sleepers is not None, out
    assert job.returncode == 4, out + (job.stderr.read() if job.stderr else "")
    stop = re.search(
        r"Stopping early \(pacing held the run back (\d+) s, the last wait (\d+) s on"
        r" Threads_running \d+ > 3; deadline of 1 min reached\) after (\d+) of 40 students",
        out,
    )
    assert stop, out
    assert int(stop.group(2)) >= 30
    done = int(stop.group(3))
    assert 0 < done < 40
    status, processed = demo_site.query(
        "SELECT status, students_processed FROM mdl_alt42_heartbeat_log"
    )[0]
    assert (status, processed) == ("aborted", done)
    events = demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log")
    evaluations = demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log")
    assert (events, evaluations) == (done, SCENARIOS * done)


def test_the_write_rate_is_spread_over_small_batches(demo_site: Site) -> None:
    """max_rows_per_second = 120: 8 students (48 rows) take about 0.4 s or more, in
    batches of 2 (a tenth of a second of rows each), and the summary says so."""
    demo_site.write_ini(sections={"pacing": {"max_rows_per_second": 120}})
    result = demo_site.cli("run", "--progress")
    assert result.returncode == 0, result.stderr
    progress = [ln for ln in result.stdout.splitlines() if "] Progress: " in ln]
    assert len(progress) == 4, result.stdout
    assert progress[0].endswith("2 of 8 students (25%)") or "2 of 8 students (25%)," in progress[0]
    line = summary_line(result.stdout)
    # The cap's guarantee: the last batch starts no sooner than 6/8 of 48 rows at 120
    # rows/s after the first (0.3 s; unpaced, these 8 students take about 50 ms). How
    # much of that is sleep (the summary's "spread") depends on how busy the machine is.
    took = re.search(r"Completed: 8 processed, 0 errors, (\d+) ms", line)
    assert took, line
    assert int(took.group(1)) >= 300, line


class Neighbour:
    """A busy site: ``threads`` connections sending small CPU-heavy reads back to back
    (hundreds of statements a second, and a server that answers everyone slower)."""

    STATEMENT = "SELECT BENCHMARK(20000, SHA2('alt42', 256))"

    def __init__(self, server: MariaDBServer, threads: int = 3) -> None:
        self.server = server
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(threads)]

    def _send(self) -> None:
        with self.server.connect() as conn, conn.cursor() as cur:
            while not self.stopped.is_set():
                cur.execute(self.STATEMENT)

    def __enter__(self) -> Neighbour:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=10)


DUTY = re.compile(r"\] Pacing: the site is (quiet|busy) .*: duty (\d+)% -> (\d+)%$")


def test_a_load_that_comes_mid_run_slows_the_run_and_one_that_ends_speeds_it_up(
    demo_site: Site, tmp_path: Path
) -> None:
    """The shipped adaptive pacing, its decisions read from --verbose as they come: the
    run starts unpaced on a quiet server; a neighbour that starts mid-run brings its duty
    to a quarter or less within 5 s; once it stops, the duty is back to 100 % within
    10 s; every student is written, and the metrics and the summary say how it yielded."""
    add_students(demo_site, 8000)
    metrics = tmp_path / "heartbeat.prom"
    demo_site.write_ini(
        sections={"pacing": {"max_delay_percent": 10}, "monitoring": {"metrics_file": metrics}},
        batch_size=10,
    )
    job = start_cli("--config", str(demo_site.tmp / "heartbeat.ini"), "run", "--verbose")
    assert job.stdout is not None
    seen: list[tuple[float, str]] = []  # (when it came, the line)
    load_began = load_ended = 0.0
    try:
        for line in job.stdout:
            seen.append((time.monotonic(), line.rstrip("\n")))
            if load_began == 0.0 and "Pacing: the site is quiet" in line:
                with Neighbour(demo_site.server):
                    load_began = time.monotonic()
                    for inner in job.stdout:  # the lines while the load runs
                        seen.append((time.monotonic(), inner.rstrip("\n")))
                        if time.monotonic() - load_began > 6:
                            break
                load_ended = time.monotonic()
        job.wait(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
    out = "\n".join(line for _, line in seen)
    assert job.returncode == 0, out
    assert load_began and load_ended, out
    decisions = [(when, m.group(1), int(m.group(3))) for when, line in seen
                 if (m := DUTY.search(line))]  # fmt: skip
    assert decisions[0][1:] == ("quiet", 100), out
    during = [d for d in decisions if load_began <= d[0] <= load_ended]
    low = [when for when, kind, duty in during if kind == "busy" and duty <= 25]
    assert low and low[0] - load_began <= 5, out
    after = [when for when, kind, duty in decisions if when > load_ended and duty == 100]
    assert after and after[0] - load_ended <= 10, out
    line = summary_line(out)
    assert "Completed: 8008 processed, 0 errors" in line
    yielded = re.search(r"yielded ([0-9.]+) s, duty down to (\d+)%, (\d+) backoffs", line)
    assert yielded and int(yielded.group(2)) <= 25 and int(yielded.group(3)) >= 2, line
    text = metrics.read_text(encoding="utf-8")
    duty = re.search(r"^alt42_heartbeat_pacing_duty_ratio ([0-9.]+)$", text, re.M)
    backoffs = re.search(r"^alt42_heartbeat_pacing_backoffs (\d+)$", text, re.M)
    assert duty and float(duty.group(1)) <= 0.25, text
    assert backoffs and int(backoffs.group(1)) == int(yielded.group(3)), text
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 8008


def test_on_a_site_busy_throughout_the_deadline_sets_the_pace(demo_site: Site) -> None:
    """A neighbour for the whole run keeps the adaptive duty low, but never so low that
    the run misses its deadline: 8,008 students (about 1,000 s at the lowest duty, 1 %)
    all written within max_run_minutes = 1, aiming at 3/4 of it."""
    add_students(demo_site, 8000)
    demo_site.write_ini(
        sections={"pacing": {"max_delay_percent": 10}}, batch_size=10, max_run_minutes=1
    )
    with Neighbour(demo_site.server):
        result = demo_site.cli("run")
    assert result.returncode == 0, result.stdout + result.stderr
    line = summary_line(result.stdout)
    took = re.search(
        r"Completed: 8008 processed, 0 errors, (\d+) ms; paced [0-9.]+ s \((.*)\)", line
    )
    assert took, line
    assert int(took.group(1)) < 60_000, line
    assert re.search(r"yielded [0-9.]+ s, duty down to \d+%, \d+ backoffs", took.group(2)), line
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 8008


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_threads_running", "-1", "[pacing] max_threads_running = -1 is out of range"),
        ("max_threads_running", "lots", "[pacing] max_threads_running = 'lots' is not a whole"),
        ("max_flow_control_percent", "101", "max_flow_control_percent = 101 is out of range"),
        ("replica", "localhost", "'localhost' is not a replica's host name"),
        ("replica", "db2:99999", "[pacing] replica = 99999 is out of range"),
        ("replica", "db 2", "'db 2' is not a replica's host name"),
        ("max_load", "25", "[pacing] max_load is not a known key (did you mean max_threads_"),
        ("max_delay_percent", "1001", "[pacing] max_delay_percent = 1001 is out of range"),
        ("quiet_statements_per_second", "few", "quiet_statements_per_second = 'few' is not a"),
    ],
)
def test_pacing_settings_are_validated(site: Site, key: str, value: str, message: str) -> None:
    site.write_ini(sections={"pacing": {key: value}})
    result = site.cli("check", "--config-only")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_reports_what_pacing_reads(site: Site) -> None:
    site.migrate()
    site.write_ini(sections={"pacing": {"max_rows_per_second": 5000}}, shipped_pacing=True)
    result = site.cli("check")
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"OK pacing: Threads_running \d+ \(waits above 25\); writes at most 5,000 rows/s;"
        r" adaptive: unpaced while the site sends at most 20 statements/s, else keeps the"
        r" site's p99 within 25% of idle$",
        result.stdout,
        re.M,
    ), result.stdout


def test_over_limits_names_each_limit_passed() -> None:
    limits = PacingConfig(max_threads_running=25, max_replica_lag_seconds=5)
    reading = pacing.Reading(threads_running=30, recv_queue=9, replica_lag_s=float("inf"))
    assert pacing.over_limits(reading, limits) == [
        ("Threads_running", "Threads_running 30 > 25"),
        ("wsrep_local_recv_queue", "wsrep_local_recv_queue 9 > 8"),
        ("replica lag", "replica lag not replicating > 5 s"),
    ]
    off = PacingConfig(max_threads_running=0, max_recv_queue=0, max_replica_lag_seconds=0)
    assert pacing.over_limits(reading, off) == []


def wait_for(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def test_the_probe_is_the_jobs_own_traffic_and_tells_rest_from_work(site: Site) -> None:
    """The probe sends only while told to; its statements are the job's (a quiet server
    stays quiet to the controller while it probes), and a probe sent while the job rests
    with nothing in flight is idle, one sent while it works or writes is not."""
    config = site.config()
    conn = db.connect(config.database, statement_timeout=10)
    writing = threading.Event()
    server = pacing.Server(conn, config.database, PacingConfig(), statement_timeout=10)
    server.watch(conn, writing.is_set)
    probe = server.start_probe()
    assert probe is not None and sys.getswitchinterval() == SWITCH_INTERVAL_S
    try:
        time.sleep(0.2)
        assert probe.take() == []  # not active: nothing sent
        server.read()
        probe.active = True
        resting = wait_for(probe.take)
        assert resting and all(idle for _, _, idle in resting)
        assert all(0 < took < 1 for _, took, _ in resting)
        time.sleep(0.5)
        others = server.read().others
        assert others is not None and abs(others) <= 5, others  # ~50 probes, none the site's
        probe.resting = False
        probe.take()
        working = wait_for(probe.take)
        assert working and not any(idle for _, _, idle in working)
        probe.resting = True
        writing.set()
        probe.take()
        in_flight = wait_for(probe.take)
        assert in_flight and not any(idle for _, _, idle in in_flight)
    finally:
        server.close()
        db.close_quietly(conn)
    assert sys.getswitchinterval() != SWITCH_INTERVAL_S  # the interpreter's own again


def test_a_probe_that_cannot_connect_or_dies_is_said_and_the_run_goes_on(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    config = site.config()
    conn = db.connect(config.database, statement_timeout=10)
    try:
        refused = dataclasses.replace(config.database, password="not-the-password")
        server = pacing.Server(conn, refused, PacingConfig(), statement_timeout=10)
        with caplog.at_level(logging.WARNING, logger="heartbeat.pacing"):
            assert server.start_probe() is None
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert "(the probe); while the site is busy, the run stays at its start duty" in warning
        assert "not-the-password" not in warning
        server = pacing.Server(conn, config.database, PacingConfig(), statement_timeout=10)
        probe = server.start_probe()
        assert probe is not None
        probe.active = True
        assert wait_for(probe.take)
        with site.server.connect() as admin, admin.cursor() as cur:
            cur.execute("KILL %s", (probe.conn.thread_id(),))
        assert wait_for(lambda: probe.error), "the probe did not notice its connection died"
        server.close()
    finally:
        db.close_quietly(conn)


# ---------------------------------------------------------------------- a real replica

REPLICATION_PASSWORD = "repl-test-secret"


@pytest.fixture(scope="module")
def replicated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    """A primary (binary log on) and a replica of it that applies every event 3 s late
    (MASTER_DELAY), so that what the job writes puts the replica behind."""
    base = tmp_path_factory.mktemp("replication")
    primary = MariaDBServer(
        str(base / "primary"), extra_args=("--log-bin=primary-bin", "--server-id=1")
    ).start()
    replica = MariaDBServer(str(base / "replica"), extra_args=("--server-id=2",)).start()
    try:
        with primary.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY %s", (REPLICATION_PASSWORD,))
            cur.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
            cur.execute("SELECT @@gtid_binlog_pos")
            position = cur.fetchone()[0]
        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL gtid_slave_pos = %s", (position,))
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s,"
                " MASTER_USER = 'repl', MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos,"
                " MASTER_DELAY = 3",
                (primary.port, REPLICATION_PASSWORD),
            )
            cur.execute("START SLAVE")
        primary.create_user(DB_USER, DB_PASSWORD, "GRANT ALL ON `alt42\\_t\\_%`.* TO {user}")
        with primary.connect() as conn, conn.cursor() as cur:
            cur.execute(f"GRANT SLAVE MONITOR ON *.* TO '{DB_USER}'@'127.0.0.1'")
        yield primary, replica
    finally:
        replica.destroy()
        primary.destroy()


def _wait_for_replica(replica: MariaDBServer, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
            )
            if cur.fetchone()[0]:
                cur.execute("SHOW SLAVE STATUS")
                row = dict(zip([c[0] for c in cur.description], cur.fetchone()))
                if row["Seconds_Behind_Master"] == 0:
                    return
        time.sleep(0.3)
    raise AssertionError("the replica did not catch up")


def test_a_replica_behind_makes_the_run_wait(
    replicated: tuple[MariaDBServer, MariaDBServer], tmp_path: Path
) -> None:
    """The job writes on the primary, spread over about 4 s; the replica applies each
    write 3 s late, so it falls behind: with max_replica_lag_seconds = 1 the run waits
    (and says on what) until the replica caught up, and completes."""
    primary, replica = replicated
    site = make_site(primary, tmp_path, demo=True)
    site.migrate()
    _wait_for_replica(replica, site.name)
    site.write_ini(
        sections={
            "pacing": {
                "replica": f"127.0.0.1:{replica.port}",
                "max_replica_lag_seconds": 1,
                "max_rows_per_second": 12,
            }
        },
    )
    check = site.cli("check")
    assert check.returncode == 0, check.stderr
    assert re.search(
        rf"OK pacing: .*replica 127\.0\.0\.1:{replica.port} \d+ s behind \(waits above 1 s\)",
        check.stdout,
    ), check.stdout
    result = site.cli("run", "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\] Pacing: waiting \(replica lag \d+ s > 1 s\)", result.stdout), (
        result.stdout
    )
    paced = PAUSED.search(summary_line(result.stdout))
    assert paced and "replica lag" in paced.group(4), result.stdout


def test_a_replica_that_does_not_replicate_is_named(
    replicated: tuple[MariaDBServer, MariaDBServer], tmp_path: Path
) -> None:
    primary, replica = replicated
    site = make_site(primary, tmp_path, demo=True)
    site.migrate()
    _wait_for_replica(replica, site.name)
    site.write_ini(sections={"pacing": {"replica": f"127.0.0.1:{replica.port}"}})
    with replica.connect() as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
    try:
        check = site.cli("check")
    finally:
        with replica.connect() as conn, conn.cursor() as cur:
            cur.execute("START SLAVE")
    assert check.returncode == 0, check.stderr
    assert f"replica 127.0.0.1:{replica.port} not replicating (waits above 5 s)" in check.stdout
    assert "(a run would wait now: replica lag not replicating > 5 s)" in check.stdout


def test_a_replica_the_job_cannot_reach_is_a_clear_error(site: Site) -> None:
    """A replica nobody listens on: one line naming [pacing] replica and the fix, exit
    3, from check and from run (which then records nothing but its failed run row)."""
    site.migrate()
    site.write_ini(sections={"pacing": {"replica": "127.0.0.1:1"}})
    for command in (("check",), ("run",)):
        result = site.cli(*command)
        assert result.returncode == 3, result.stdout + result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "127.0.0.1:1" in line and "([pacing] replica)" in line, line
        assert "or remove [pacing] replica" in line
        assert "Traceback" not in result.stderr
