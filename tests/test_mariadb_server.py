"""``tests/mariadb_server.py``: the private MariaDB the tests start. Its own behaviour
that the suite relies on (the job's tests are elsewhere)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pymysql

from tests.conftest import DB_PASSWORD, DB_USER, Site, make_site
from tests.mariadb_server import MariaDBServer, wait_for_lock_waits


def test_a_transaction_a_failed_test_left_open_never_hangs_the_suite(
    mariadb: MariaDBServer, tmp_path: Path
) -> None:
    """A test that failed mid-run left the job's connections open in the test process,
    one holding a transaction on its site: the fixture's DROP DATABASE waited for their
    metadata lock (lock_wait_timeout: a year) and CI hung until its limit. Dropping a
    test's database now ends those connections first."""
    created = make_site(mariadb, tmp_path)
    leaked = pymysql.connect(unix_socket=mariadb.socket, user=DB_USER, password=DB_PASSWORD,
                             database=created.name, autocommit=False)  # fmt: skip
    with leaked.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO t VALUES (1)")  # a transaction left open, as a run's
    dropping = threading.Thread(target=mariadb.drop_database, args=(created.name,), daemon=True)
    dropping.start()
    dropping.join(90)
    assert not dropping.is_alive(), "DROP DATABASE still waits on the leaked transaction"
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (created.name,))
        assert cur.fetchall() == ()
    with contextlib.suppress(pymysql.err.MySQLError):
        leaked.close()


def test_a_lock_wait_that_begins_while_polling_is_seen(site: Site) -> None:
    """InnoDB refreshes information_schema.innodb_trx only once it went unread for
    100 ms. The Galera claims test polled it every 50 ms from before the jobs waited: it
    read its first, empty snapshot for a minute and failed CI (both jobs were in a lock
    wait all along). The poll now leaves the table time to refresh."""
    holder, waiter = site.conn(), site.conn()
    with holder.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO t VALUES (1)")
        holder.autocommit(False)
        cur.execute("SELECT id FROM t WHERE id = 1 FOR UPDATE")

    def wait_for_the_row() -> None:
        time.sleep(1)  # the poll below has read the table (no waiter yet) several times
        with waiter.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 30")
            cur.execute("SELECT id FROM t WHERE id = 1 FOR UPDATE")

    waiting = threading.Thread(target=wait_for_the_row, daemon=True)
    waiting.start()
    try:
        assert wait_for_lock_waits([site.server], timeout=10) == [1]
    finally:
        holder.rollback()
        waiting.join(30)
        holder.close()
        waiter.close()
