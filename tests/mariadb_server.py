"""A private MariaDB server for the tests and the benchmark.

Started from the ``mariadb-server`` package's binaries on a data directory and socket
of its own (never the system server), listening on a free loopback port, and torn down
afterwards. The benchmark imports this module too, so both measure the same set-up.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import pymysql

ROOT_PASSWORD = "root-test-secret"
SQL_DIR = Path(__file__).resolve().parent / "sql"
# InnoDB fills information_schema.innodb_trx from a cache that it refreshes only once
# nobody has read it for 100 ms (CACHE_MIN_IDLE_TIME_NS in trx0i_s.cc), and every read
# restarts that clock: polled faster, the table shows its first snapshot forever and a
# lock wait that began after the first read is never seen.
LOCK_WAIT_POLL_S = 0.25


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MariaDBServer:
    """One mariadbd process with its own data dir, socket and port.

    ``os_user`` is the system user mariadbd runs as (root for a plain test server;
    ``mysql`` for Galera nodes, whose rsync state transfer refuses a root server).
    ``install=False`` leaves the data dir empty: a Galera joiner receives it by SST.
    """

    def __init__(
        self,
        base_dir: Optional[str] = None,
        extra_args: tuple[str, ...] = (),
        os_user: str = "root",
        install: bool = True,
    ) -> None:
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="alt42-mariadb-"))
        self.datadir = self.base / "data"
        self.socket = str(self.base / "mysqld.sock")
        self.port = _free_port()
        self.extra_args = extra_args
        self.os_user = os_user
        self.run_install = install
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.log = self.base / "mysqld.log"

    # ------------------------------------------------------------------ lifecycle
    def install(self) -> None:
        """Create the system tables once (``mariadb-install-db``)."""
        if (self.datadir / "mysql").is_dir():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.os_user != "root":
            account = pwd.getpwnam(self.os_user)
            for path in (self.base, self.datadir):
                os.chown(path, account.pw_uid, account.pw_gid)
        if not self.run_install:
            return
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--user={self.os_user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self, timeout: float = 60) -> MariaDBServer:
        """Start the server and wait until it answers; sets the root password once."""
        self.install()
        self.port = _free_port()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    "mariadbd",
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    f"--socket={self.socket}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--user={self.os_user}",
                    f"--pid-file={self.base / 'mysqld.pid'}",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=256M",
                    "--innodb-flush-log-at-trx-commit=2",
                    "--max-connections=200",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited early; see {self.log}")
            for password in (ROOT_PASSWORD, ""):
                try:
                    conn = pymysql.connect(unix_socket=self.socket, user="root", password=password)
                except pymysql.err.MySQLError:
                    continue
                with conn, conn.cursor() as cur:
                    if password == "":
                        cur.execute(
                            "ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (ROOT_PASSWORD,)
                        )
                        cur.execute(
                            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY %s",
                            (ROOT_PASSWORD,),
                        )
                        cur.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
                return self
            time.sleep(0.2)
        raise RuntimeError(f"mariadbd did not answer within {timeout:.0f} s; see {self.log}")

    def stop(self, hard: bool = False) -> None:
        """Stop the server (SIGKILL with ``hard``, to simulate a crash)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def connect(self, database: Optional[str] = None, **kwargs: Any) -> pymysql.Connection:
        """A root connection over the socket, UTC session, autocommit."""
        return pymysql.connect(
            unix_socket=self.socket,
            user="root",
            password=ROOT_PASSWORD,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
            **kwargs,
        )

    def drop_database(self, name: str) -> None:
        """Drop a test's database, bounded: a test that failed mid-run can leave its own
        connections open in the test process, holding a transaction on the database, and
        DROP DATABASE would wait for their metadata lock for a year (lock_wait_timeout's
        default). Their connections are killed first, and the wait is capped."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 60")
            cur.execute(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = %s AND id <> CONNECTION_ID()",
                (name,),
            )
            for (thread,) in cur.fetchall():
                with contextlib.suppress(pymysql.err.MySQLError):  # gone meanwhile, or a
                    cur.execute("KILL CONNECTION %s", (thread,))  # server thread
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def create_database(self, name: str, prefix: str = "mdl_", demo: bool = False) -> None:
        """A fresh database with the ALT42 read-side schema (and the demo rows)."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            files = ["alt42_schema.sql"] + (["demo_data.sql"] if demo else [])
            for filename in files:
                run_sql_file(cur, SQL_DIR / filename, prefix)

    def create_user(self, user: str, password: str, grants: str) -> None:
        """A MariaDB account reachable over both the socket and 127.0.0.1."""
        with self.connect() as conn, conn.cursor() as cur:
            for host in ("localhost", "127.0.0.1"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
                cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", (password,))
                cur.execute(grants.format(user=f"'{user}'@'{host}'"))


def wait_for_lock_waits(
    servers: Sequence[MariaDBServer],
    timeout: float = 10,
    given_up: Callable[[], bool] = lambda: False,
) -> list[int]:
    """Until each server has a transaction waiting for a row lock, at most ``timeout``
    seconds, or until ``given_up()`` says the waiters cannot come (their process ended).
    Returns the last counts (all >= 1 when every server had one), for the caller's
    message. Polls at ``LOCK_WAIT_POLL_S``, slow enough for InnoDB to refresh the table."""
    deadline = time.monotonic() + timeout
    with contextlib.ExitStack() as stack:
        connections = [stack.enter_context(server.connect()) for server in servers]
        cursors = [stack.enter_context(conn.cursor()) for conn in connections]
        while True:
            counts = []
            for cur in cursors:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.innodb_trx"
                    " WHERE trx_state = 'LOCK WAIT'"
                )
                counts.append(int(cur.fetchone()[0]))
            if all(count >= 1 for count in counts) or given_up() or time.monotonic() >= deadline:
                return counts
            time.sleep(LOCK_WAIT_POLL_S)


def run_sql_file(cursor: Any, path: Path, prefix: str = "mdl_") -> None:
    """Run each ``;``-terminated statement of a file, with ``mdl_`` replaced by ``prefix``."""
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    for chunk in "\n".join(lines).split(";\n"):
        statement = chunk.strip().rstrip(";")
        if statement:
            cursor.execute(statement.replace("mdl_", prefix))


def galera_provider() -> str:
    """Path of the Galera library (Debian's ``galera-4``, a dependency of mariadb-server)."""
    found = sorted(glob.glob("/usr/lib/galera*/libgalera_smm.so"))
    if not found:
        raise RuntimeError(
            "no libgalera_smm.so under /usr/lib/galera*: install galera-4 (scripts/bootstrap)"
        )
    return found[0]


class GaleraCluster:
    """A real MariaDB Galera cluster of ``size`` nodes on loopback, for the tests.

    The first node bootstraps the cluster (``--wsrep-new-cluster``), the others join it
    and receive their data by rsync SST, exactly as a production node does. Every node
    has its own socket and SQL port; the root account is the first node's, replicated.
    """

    def __init__(self, size: int = 2) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="alt42-galera-"))
        self.nodes: list[MariaDBServer] = []
        provider = galera_provider()
        first_gcomm = 0
        for index in range(size):
            gcomm, ist, sst = _free_port(), _free_port(), _free_port()
            if index == 0:
                first_gcomm = gcomm
            address = "gcomm://" if index == 0 else f"gcomm://127.0.0.1:{first_gcomm}"
            args = (
                "--wsrep_on=ON",
                f"--wsrep_provider={provider}",
                "--wsrep_cluster_name=alt42-test",
                f"--wsrep_cluster_address={address}",
                "--wsrep_node_address=127.0.0.1",
                f"--wsrep_node_name=node{index + 1}",
                "--wsrep_provider_options="
                f"gmcast.listen_addr=tcp://127.0.0.1:{gcomm};ist.recv_addr=127.0.0.1:{ist}",
                "--wsrep_sst_method=rsync",
                f"--wsrep_sst_receive_address=127.0.0.1:{sst}",
                "--binlog_format=ROW",
                "--innodb_autoinc_lock_mode=2",
                *(("--wsrep-new-cluster",) if index == 0 else ()),
            )
            self.nodes.append(
                MariaDBServer(
                    str(self.base / f"node{index + 1}"),
                    extra_args=args,
                    os_user="mysql",
                    install=index == 0,
                )
            )

    def start(self) -> GaleraCluster:
        """Start node 1, then each joiner; return once every node is Synced."""
        self.base.chmod(0o755)  # the mysql user walks into its node's directory
        for node in self.nodes:
            node.base.mkdir(parents=True, exist_ok=True)
            node.start(timeout=120)
            self.wait_synced(node)
        return self

    def wait_synced(self, node: MariaDBServer, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = size = ""
        while time.monotonic() < deadline:
            with node.connect() as conn, conn.cursor() as cur:
                cur.execute("SHOW STATUS LIKE 'wsrep_local_state_comment'")
                state = cur.fetchone()[1]
                cur.execute("SHOW STATUS LIKE 'wsrep_cluster_size'")
                size = cur.fetchone()[1]
            if state == "Synced" and int(size) == self.nodes.index(node) + 1:
                return
            time.sleep(0.3)
        raise RuntimeError(f"Galera node {node.base} is {state!r} in a cluster of {size}")

    def destroy(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)
