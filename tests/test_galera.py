"""One run per slot on a real MariaDB Galera cluster (two nodes on loopback).

Galera is where the database lock cannot be trusted: depending on the version MariaDB
refuses ``GET_LOCK`` under ``wsrep_on`` or grants it on each node separately, so two web
servers connected to different nodes both get "the" lock. The run row's unique
``slot_start`` must decide alone, and a conflicting claim on another node fails at
commit with a certification conflict (error 1213), not with a duplicate key: the
servers that lose must still exit 0 with a ``Skipped`` line, never 3.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from heartbeat import db, schema
from heartbeat.schedule import interval_slot as slot_start
from tests.conftest import DB_PASSWORD, DB_USER, Site, make_site, start_cli
from tests.mariadb_server import GaleraCluster, wait_for_lock_waits

INTERVAL = 1440  # one slot per day: no slot boundary falls inside a test


@pytest.fixture(scope="module")
def galera() -> Iterator[GaleraCluster]:
    cluster = GaleraCluster(size=2).start()
    cluster.nodes[0].create_user(DB_USER, DB_PASSWORD, "GRANT ALL ON `alt42\\_t\\_%`.* TO {user}")
    yield cluster
    cluster.destroy()


@pytest.fixture
def sites(galera: GaleraCluster, tmp_path: Path) -> Iterator[list[Site]]:
    """The demo site, migrated on node 1; one Site (own INI, own lock file) per node."""
    first = make_site(galera.nodes[0], tmp_path / "node1", demo=True)
    (tmp_path / "node1").mkdir()
    first.heartbeat = {"interval_minutes": INTERVAL}
    first.migrate()
    per_node = [first]
    for number, node in enumerate(galera.nodes[1:], start=2):
        folder = tmp_path / f"node{number}"
        folder.mkdir()
        per_node.append(Site(node, first.name, first.prefix, folder, dict(first.heartbeat)))
    for site in per_node:
        site.write_ini()
    _wait_replicated(per_node, "SELECT COUNT(*) FROM mdl_alt42_heartbeat_log", 0)
    yield per_node
    galera.nodes[0].drop_database(first.name)


def _wait_replicated(sites: list[Site], sql: str, expected: object) -> None:
    """Galera applies other nodes' writes asynchronously: wait until every node agrees."""
    deadline = time.monotonic() + 20
    while True:
        seen = [site.scalar(sql) for site in sites]
        if all(value == expected for value in seen) or time.monotonic() > deadline:
            assert seen == [expected] * len(sites), sql
            return
        time.sleep(0.2)


def _empty_the_log_tables(sites: list[Site]) -> None:
    """Free the slot for the next round: delete on node 1, wait until every node agrees."""
    for table in ("scenario_evaluation_log", "event_processing_log", "heartbeat_log"):
        sites[0].execute(f"DELETE FROM mdl_alt42_{table}")
    _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_alt42_heartbeat_log", 0)


def _away_from_a_slot_boundary() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    slot_end = slot_start(now, INTERVAL) + dt.timedelta(minutes=INTERVAL)
    left = (slot_end - now.replace(tzinfo=None)).total_seconds()
    if left < 120:
        time.sleep(left + 1)


def _outcome(processes: list[subprocess.Popen[str]]) -> tuple[list[int], int, int, list[str]]:
    outputs = [p.communicate(timeout=180) for p in processes]
    codes = [p.returncode for p in processes]
    ran = sum("Completed: 8 processed" in out for out, _ in outputs)
    skipped = sum("Skipped:" in out for out, _ in outputs)
    return codes, ran, skipped, [out + err for out, err in outputs]


def test_get_lock_does_not_span_the_nodes(sites: list[Site]) -> None:
    """Why the slot row is needed: each node grants the same named lock (or refuses it)."""
    name = db.lock_name(sites[0].config().database, "heartbeat")
    held = []
    connections = [site.conn() for site in sites]
    try:
        for conn in connections:
            with conn.cursor() as cur:
                try:
                    cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
                    held.append(cur.fetchone()[0])
                except pymysql.err.MySQLError as exc:  # 10.6.12/13: ER_NOT_SUPPORTED_YET
                    held.append(exc.args[0])
    finally:
        for conn in connections:
            conn.close()
    assert held in ([1, 1], [1235, 1235]), held


def test_claims_committing_together_on_two_nodes_give_one_run(sites: list[Site]) -> None:
    """Both nodes' claims wait behind an uncommitted row of the slot, then commit at once.

    The blockers are rolled back together, so both claims commit within a millisecond:
    Galera certifies one and aborts the other with 1213. Repeated to make the race real.
    """
    for round_number in range(4):
        _away_from_a_slot_boundary()
        slot = slot_start(dt.datetime.now(dt.timezone.utc), INTERVAL)
        blockers = [site.server.connect(site.name) for site in sites]
        for blocker in blockers:
            blocker.autocommit(False)
            with blocker.cursor() as cur:
                cur.execute(
                    "INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at, status,"
                    " run_id, slot_start) VALUES (UTC_TIMESTAMP(), UTC_TIMESTAMP(), 'running',"
                    " %s, %s)",
                    (f"blocker-{round_number}-{id(blocker)}", slot),
                )
        processes = [start_cli("--config", str(s.tmp / "heartbeat.ini"), "run") for s in sites]
        _wait_for_lock_waits(sites, processes, round_number)
        barrier = threading.Barrier(len(blockers))
        threads = [threading.Thread(target=_release, args=(b, barrier)) for b in blockers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for blocker in blockers:
            blocker.close()
        codes, ran, skipped, outputs = _outcome(processes)
        assert codes == [0, 0], outputs
        assert (ran, skipped) == (1, 1), outputs
        _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_alt42_heartbeat_log", 1)
        assert sites[1].query("SELECT status, students_processed FROM mdl_alt42_heartbeat_log") == [
            ("success", 8)
        ]
        _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_alt42_event_processing_log", 8)
        _empty_the_log_tables(sites)


def _release(blocker: pymysql.Connection, barrier: threading.Barrier) -> None:
    """Roll the blocker back at the same instant as the other node's blocker."""
    barrier.wait()
    with contextlib.suppress(pymysql.err.MySQLError):  # Galera may have aborted it already
        blocker.rollback()


def _wait_for_lock_waits(
    sites: list[Site], processes: list[subprocess.Popen[str]], round_number: int
) -> None:
    """Until each node has a job transaction waiting on the blocker's row lock; if not,
    the failure says what the jobs did (one that ended early, with its output)."""
    waiting = wait_for_lock_waits(
        [site.server for site in sites],
        timeout=60,
        given_up=lambda: any(p.poll() is not None for p in processes),
    )
    if all(count >= 1 for count in waiting):
        return
    ended = [p.communicate(timeout=5) if p.poll() is not None else None for p in processes]
    pytest.fail(f"round {round_number}: the claims never waited: {waiting}; jobs: {ended}")


def test_servers_on_both_nodes_starting_together_give_one_run(sites: list[Site]) -> None:
    """Three 'web servers' per node (own INI and lock file each), three slots in a row."""
    for _ in range(3):
        _away_from_a_slot_boundary()
        processes = []
        for site in sites:
            for n in range(3):
                ini = site.tmp / f"server{n}.ini"
                shutil.copy(site.tmp / "heartbeat.ini", ini)
                ini.write_text(
                    ini.read_text().replace(site.lock_file, str(site.tmp / f"server{n}.lock"))
                )
                processes.append(start_cli("--config", str(ini), "run"))
        codes, ran, skipped, outputs = _outcome(processes)
        assert codes == [0] * 6, outputs
        assert (ran, skipped) == (1, 5), outputs
        _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_alt42_event_processing_log", 8)
        _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log", 40)
        _empty_the_log_tables(sites)


def test_prunes_on_both_nodes_at_once_delete_everything_and_exit_0(sites: list[Site]) -> None:
    """The prune lock is per node on Galera: both prunes run, and their batches conflict."""
    old = "UTC_TIMESTAMP() - INTERVAL 100 DAY"
    sites[0].executemany(
        "INSERT INTO mdl_alt42_scenario_evaluation_log (scenario_id, student_id, rules_count,"
        " evaluation_mode, evaluation_result, evaluated_at)"
        f" VALUES ('S0', %s, 0, 'x', '{{}}', {old})",
        [(str(n),) for n in range(3000)],
    )
    _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log", 3000)
    for site in sites:
        ini = site.tmp / "heartbeat.ini"
        ini.write_text(ini.read_text() + "[retention]\ndays = 90\nbatch_size = 100\n")
    processes = [start_cli("--config", str(site.tmp / "heartbeat.ini"), "prune") for site in sites]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    deleted = [
        int(line.split("Pruned ")[1].split()[0])
        for out, _ in outputs
        for line in out.splitlines()
        if "from mdl_alt42_scenario_evaluation_log" in line
    ]
    assert sum(deleted) == 3000, outputs
    _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log", 0)


def test_flow_control_makes_the_run_wait(sites: list[Site]) -> None:
    """Real flow control: node 2's applier waits behind a LOCK TABLES, its receive queue
    fills and it pauses the whole cluster. A run on node 1 (its writes spread over about
    2 s) reads the pause (wsrep_flow_control_paused_ns) between batches, waits while the
    cluster is paused, and goes on once node 2 is unlocked."""
    first, second = sites
    first.execute("CREATE TABLE mdl_flow_block (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    _wait_replicated(sites, "SELECT COUNT(*) FROM mdl_flow_block", 0)
    ini = first.write_ini(
        sections={"pacing": {"max_rows_per_second": 24, "max_flow_control_percent": 10}}
    )
    job = start_cli("--config", str(ini), "run", "--progress", "--verbose")
    assert job.stdout is not None
    locker = second.conn()
    neighbour = first.conn()
    writes = threading.Thread(
        target=lambda: [
            neighbour.cursor().execute("INSERT INTO mdl_flow_block (v) VALUES (%s)", (n,))
            for n in range(60)
        ],
        daemon=True,
    )
    lines = []
    try:
        for line in job.stdout:
            lines.append(line)
            if "] Progress: " in line and not writes.is_alive() and not writes.ident:
                with locker.cursor() as cur:
                    cur.execute(f"LOCK TABLES {first.prefix}flow_block WRITE")
                writes.start()  # node 2 cannot apply them: its queue fills, it pauses all
                time.sleep(3)
                with locker.cursor() as cur:
                    cur.execute("UNLOCK TABLES")
        job.wait(timeout=120)
    finally:
        locker.close()
        writes.join(timeout=60)
        neighbour.close()
        if job.poll() is None:
            job.kill()
        first.execute("DROP TABLE mdl_flow_block")
    out = "".join(lines)
    assert job.returncode == 0, out
    assert "Completed: 8 processed, 0 errors" in out
    assert re.search(r"\] Pacing: waiting \(Galera flow control \d+% > 10%\)", out), out
    assert re.search(r"paced [0-9.]+ s \(\d+ load waits, [0-9.]+ s: Galera flow control", out)
    _empty_the_log_tables(sites)


def test_migrate_compress_on_a_galera_node_converts_nothing_and_says_why(
    sites: list[Site],
) -> None:
    """A rebuild in total order holds the table on every node until it ends: not from a
    deploy. The tables migrate creates on Galera are compressed already; one turned back
    to plain (as an earlier release made it) stays so, with one line."""
    events = "mdl_alt42_event_processing_log"
    sites[0].execute(f"ALTER TABLE {events} PAGE_COMPRESSED=0")

    def compressed(site: Site) -> bool:
        options = site.scalar(
            "SELECT CREATE_OPTIONS FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (events,),
        )
        return schema.is_compressed(str(options))

    assert [compressed(site) for site in sites] == [False, False]
    result = sites[1].cli("migrate", "--compress")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "Not compressing" in line]
    assert f"Not compressing {events}: this is a Galera node (wsrep_OSU_method TOI)" in line
    assert [compressed(site) for site in sites] == [False, False]
    assert "evaluation" not in line  # the table migrate created compressed is left alone
