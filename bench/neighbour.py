"""A Moodle-like neighbour on the job's database server, and the latency it sees.

    python -m bench.neighbour --socket S --database D --user U --out FILE [--rate 200]

(the password comes from ``$NEIGHBOUR_PASSWORD``, never argv). ``--connections`` threads
(each its own connection, autocommit, as Moodle's pages) send, between them, ``--rate``
statements per second on a fixed schedule, open loop: each statement has an intended
start, and its latency is measured from that intended start to its end, so a server that
stalls is charged for every statement it delayed (no "coordinated omission"). The mix is
what a Moodle page does to the tables every page touches: indexed point reads of
``mdl_user`` and ``mdl_sessions``, the session touch (an UPDATE by primary key), and a
log event (an INSERT into ``mdl_logstore_standard_log``).

Runs until SIGTERM or SIGINT, then writes one line per statement to ``--out``:
``intended_start_unix_s latency_ms kind``. :func:`create_tables` makes the tables
(``--setup``), with ``--users`` rows in ``mdl_sessions``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import threading
import time
from typing import Any

import pymysql

KINDS = (  # (kind, share of the statements)
    ("user", 0.55),
    ("session_read", 0.2),
    ("session_touch", 0.15),
    ("log_insert", 0.10),
)

TABLES = (
    """CREATE TABLE IF NOT EXISTS mdl_sessions (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        state BIGINT NOT NULL DEFAULT 0,
        sid VARCHAR(128) NOT NULL,
        userid BIGINT NOT NULL,
        sessdata LONGTEXT,
        timecreated BIGINT NOT NULL,
        timemodified BIGINT NOT NULL,
        firstip VARCHAR(45),
        lastip VARCHAR(45),
        UNIQUE KEY mdl_sess_sid_uix (sid),
        KEY mdl_sess_tim_ix (timemodified),
        KEY mdl_sess_use_ix (userid)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS mdl_logstore_standard_log (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        eventname VARCHAR(255) NOT NULL DEFAULT '',
        component VARCHAR(100) NOT NULL DEFAULT '',
        action VARCHAR(100) NOT NULL DEFAULT '',
        target VARCHAR(100) NOT NULL DEFAULT '',
        crud VARCHAR(1) NOT NULL DEFAULT '',
        contextid BIGINT NOT NULL,
        userid BIGINT NOT NULL,
        courseid BIGINT,
        other LONGTEXT,
        timecreated BIGINT NOT NULL,
        origin VARCHAR(10),
        ip VARCHAR(45),
        KEY mdl_logsstanlog_tim_ix (timecreated),
        KEY mdl_logsstanlog_useconconcrucou_ix (userid, contextid, crud, courseid)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
)


def create_tables(conn: Any, users: int) -> None:
    """The neighbour's tables, with one session per user (ids 1..users)."""
    now = int(time.time())
    with conn.cursor() as cur:
        for statement in TABLES:
            cur.execute(statement)
        cur.execute("TRUNCATE TABLE mdl_sessions")
        cur.execute("TRUNCATE TABLE mdl_logstore_standard_log")
        rows = [
            (f"s{user:08d}", user, now, now, "10.0.0.1", "10.0.0.1") for user in range(1, users + 1)
        ]
        for start in range(0, len(rows), 5000):
            cur.executemany(
                "INSERT INTO mdl_sessions (sid, userid, timecreated, timemodified, firstip, lastip)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                rows[start : start + 5000],
            )
    conn.commit()


class Load:
    """``connections`` threads, ``rate`` statements per second between them."""

    def __init__(self, connect: Any, rate: float, connections: int, users: int) -> None:
        self.connect = connect
        self.rate = rate
        self.connections = connections
        self.users = users
        self.stop = threading.Event()
        self.samples: list[list[tuple[float, float, str]]] = [[] for _ in range(connections)]

    def worker(self, index: int, start: float) -> None:
        conn = self.connect()
        rng = random.Random(index)
        period = self.connections / self.rate
        intended = start + index * period / self.connections
        kinds = [kind for kind, _ in KINDS]
        weights = [share for _, share in KINDS]
        out = self.samples[index]
        with conn, conn.cursor() as cur:
            while not self.stop.is_set():
                delay = intended - time.time()
                if delay > 0:
                    self.stop.wait(delay)
                    continue
                kind = rng.choices(kinds, weights)[0]
                user = rng.randint(1, self.users)
                statement(cur, kind, user)
                out.append((intended, (time.time() - intended) * 1000, kind))
                intended += period

    def run(self, start_in: float = 0.5) -> None:
        start = time.time() + start_in
        threads = [
            threading.Thread(target=self.worker, args=(index, start), daemon=True)
            for index in range(self.connections)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def statement(cur: Any, kind: str, user: int) -> None:
    """One statement of a Moodle page, as the page sends it (autocommit)."""
    now = int(time.time())
    if kind == "user":
        cur.execute("SELECT id, username, deleted FROM mdl_user WHERE id = %s", (user,))
        cur.fetchall()
    elif kind == "session_read":
        cur.execute(
            "SELECT id, userid, timemodified FROM mdl_sessions WHERE sid = %s", (f"s{user:08d}",)
        )
        cur.fetchall()
    elif kind == "session_touch":
        cur.execute(
            "UPDATE mdl_sessions SET timemodified = %s WHERE sid = %s", (now, f"s{user:08d}")
        )
    else:
        cur.execute(
            "INSERT INTO mdl_logstore_standard_log (eventname, component, action, target, crud,"
            " contextid, userid, courseid, other, timecreated, origin, ip)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                "\\core\\event\\course_viewed", "core", "viewed", "course", "r",
                1, user, 2, "N;", now, "web", "10.0.0.1",
            ),
        )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--out")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--setup", action="store_true", help="create the tables, then exit")
    parser.add_argument("--start-in", type=float, default=0.5,
                        help="seconds from now to the first statement")  # fmt: skip
    args = parser.parse_args()

    def connect() -> Any:
        return pymysql.connect(
            unix_socket=args.socket,
            user=args.user,
            password=os.environ.get("NEIGHBOUR_PASSWORD", ""),
            database=args.database,
            autocommit=True,
            connect_timeout=10,
            read_timeout=120,
            write_timeout=120,
        )

    if args.setup:
        with connect() as conn:
            conn.autocommit(False)
            create_tables(conn, args.users)
        return 0
    load = Load(connect, args.rate, args.connections, args.users)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: load.stop.set())
    load.run(args.start_in)
    with open(args.out, "w", encoding="utf-8") as out:
        for samples in load.samples:
            for intended, latency, kind in samples:
                out.write(f"{intended:.6f} {latency:.3f} {kind}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
