"""``tests/mariadb_server.py``: the private MariaDB the tests start. Its own behaviour
that the suite relies on (the job's tests are elsewhere)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pymysql

from tests.conftest import DB_PASSWORD, DB_USER, make_site
from tests.mariadb_server import MariaDBServer


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
