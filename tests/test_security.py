"""Security: the password never in argv, the environment, the output or the database;
an INI file others can read is refused; the job works with exactly the least-privilege
grants the README gives (and ``migrate`` needs more); hostile student ids are stored
verbatim and inject nothing, whatever the server's ``sql_mode``."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from heartbeat import db, evaluate, store
from heartbeat.errors import ConfigError
from tests.conftest import DB_PASSWORD, ROOT, Site, run_cli, start_cli
from tests.mariadb_server import SQL_DIR, MariaDBServer, run_sql_file
from tests.test_schema import PHP_TABLES

README = ROOT / "README.md"
JOB_USER = "alt42_heartbeat"
READ_TABLES = [
    "mdl_user",
    "mdl_alt42_learning_sessions",
    "mdl_alt42_student_activity",
    "mdl_alt42_students",
    "mdl_alt42_student_profiles",
    "mdl_alt42_student_biometrics",
]
OWN_TABLES = [
    "mdl_alt42_heartbeat_log",
    "mdl_alt42_scenario_evaluation_log",
    "mdl_alt42_event_processing_log",
    "mdl_alt42_heartbeat_daily",
]


# --------------------------------------------------------------------------- the password


def test_password_never_in_argv_environment_or_output(demo_site: Site) -> None:
    demo_site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(30000 + n),) for n in range(2000)],
    )
    ini = demo_site.write_ini(batch_size=1)
    process = start_cli("--config", str(ini), "run", "--verbose")
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "] student " in line:
            break
    proc = Path(f"/proc/{process.pid}")
    cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    environ = (proc / "environ").read_bytes()
    # the job is running (not a zombie) while we look
    assert (proc / "status").read_text().split("State:")[1].split()[0] in ("R", "S", "D")
    process.send_signal(signal.SIGTERM)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode == 4
    assert str(ini).encode() in cmdline  # we did read the job's own arguments
    assert not any(DB_PASSWORD.encode() in arg for arg in cmdline)
    assert DB_PASSWORD.encode() not in environ
    output = "".join(seen) + rest + errors
    assert DB_PASSWORD not in output
    # nor in anything the run wrote to the database
    for table in OWN_TABLES:
        dump = json.dumps(demo_site.query(f"SELECT * FROM {table}"), default=str)
        assert DB_PASSWORD not in dump


@pytest.mark.parametrize(
    ("password", "socket_ok"),
    [("not-" + DB_PASSWORD, True), (DB_PASSWORD, False)],
    ids=["wrong-password", "server-unreachable"],
)
def test_password_not_in_verbose_tracebacks(
    demo_site: Site, tmp_path: Path, password: str, socket_ok: bool
) -> None:
    """--verbose prints the traceback of a failure: code lines, never values."""
    ini = demo_site.write_ini(password=password)
    if not socket_ok:
        ini.write_text(ini.read_text().replace(demo_site.server.socket, str(tmp_path / "x.sock")))
    for command in (["run", "--verbose"], ["check"]):
        result = demo_site.cli(*command)
        assert result.returncode == 3, result.stderr
        assert password not in result.stdout + result.stderr
        assert DB_PASSWORD not in result.stdout + result.stderr
    assert "Traceback" in demo_site.cli("run", "--verbose").stderr  # it was printed


@pytest.mark.parametrize("mode", [0o644, 0o604])
def test_world_readable_ini_with_password_is_refused_by_the_cli(demo_site: Site, mode: int) -> None:
    ini = demo_site.write_ini()
    ini.chmod(mode)
    result = demo_site.cli("run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"holds [database] password but is readable by everyone (mode {mode:04o})" in lines[0]
    assert f"run: chmod 0640 {ini}" in lines[0]
    assert DB_PASSWORD not in result.stdout + result.stderr
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 0
    ini.chmod(0o640)  # group-readable (root:www-data 0640, as the role writes it) is fine
    assert demo_site.cli("run").returncode == 0


def test_world_readable_ini_without_password_is_accepted(demo_site: Site) -> None:
    ini = demo_site.write_ini(password=None)
    ini.chmod(0o644)
    result = demo_site.cli("run", env={"ALT42_DB_PASSWORD": DB_PASSWORD})
    assert result.returncode == 0, result.stderr
    assert DB_PASSWORD not in result.stdout + result.stderr


# --------------------------------------------------------------------------- least privilege


def readme_grants() -> tuple[list[str], list[str]]:
    """The two SQL blocks of the README's "Database privileges" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Database privileges\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2, "expected a GRANT block and a REVOKE block"
    statements = []
    for block in blocks:
        sql = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
        statements.append([s.strip().rstrip(";") for s in sql.split(";\n") if s.strip()])
    return statements[0], statements[1]


def _sql(statement: str, database: str) -> str:
    lines = [line for line in statement.splitlines() if not line.startswith("--")]
    return "\n".join(lines).rstrip(";").replace("`moodle`.", f"`{database}`.")


@pytest.fixture
def job_user(mariadb: MariaDBServer) -> Iterator[str]:
    yield JOB_USER
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{JOB_USER}'@'localhost'")


def test_readme_grants_are_exactly_the_documented_privileges() -> None:
    grants, revokes = readme_grants()
    assert grants[0].startswith(f"CREATE USER '{JOB_USER}'@'localhost'")
    granted = {}
    for grant in grants[1:]:
        match = re.fullmatch(rf"GRANT (.+) ON `moodle`\.`(\w+)` TO '{JOB_USER}'@'localhost'", grant)
        assert match, grant
        granted[match[2]] = match[1]
    assert {t: granted[t] for t in READ_TABLES} == dict.fromkeys(READ_TABLES, "SELECT")
    assert {t: granted[t] for t in OWN_TABLES} == dict.fromkeys(
        OWN_TABLES, "SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER"
    )
    assert len(granted) == 10 and len(grants) == 11  # nothing database- or server-wide
    assert all("*" not in g for g in grants)
    assert [re.match(r"REVOKE (.+) ON `moodle`\.`(\w+)`", r).groups() for r in revokes] == [
        ("CREATE, ALTER", t) for t in OWN_TABLES
    ]


def _job_ini(site: Site, tmp: Path) -> Path:
    ini = tmp / "least.ini"
    ini.write_text(
        f"[database]\nsocket = {site.server.socket}\nname = {site.name}\nuser = {JOB_USER}\n"
        "password = a long random password\n"
        f"[heartbeat]\nlock_file = {tmp / 'least.lock'}\n",
        encoding="utf-8",
    )
    ini.chmod(0o600)
    return ini


def _as_root(site: Site, statements: list[str]) -> None:
    with site.server.connect(site.name) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(_sql(statement, site.name))


def _one_line_exit_3(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 3, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("start", ["fresh", "php-era-tables"])
def test_least_privilege_grants_from_the_readme(
    site: Site, job_user: str, tmp_path: Path, start: str
) -> None:
    grants, revokes = readme_grants()
    if start == "php-era-tables":
        for statement in PHP_TABLES:
            site.execute(statement)
    _as_root(site, grants)
    ini = _job_ini(site, tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("--config", str(ini), *args)

    migrated = cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    php_tables = ("heartbeat_log", "scenario_evaluation_log", "event_processing_log")
    created = re.findall(r"created table mdl_alt42_(\w+)", migrated.stdout)
    assert created == [*(php_tables if start == "fresh" else ()), "heartbeat_daily"]
    assert ("widened" in migrated.stdout) == (start == "php-era-tables")
    _as_root(site, revokes)

    with site.server.connect(site.name) as conn, conn.cursor() as cur:
        run_sql_file(cur, SQL_DIR / "demo_data.sql")
    for command in (["run"], ["check"], ["report"], ["status"], ["prune"], ["migrate"]):
        result = cli(*command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert result.stderr == "", command
    assert "Completed: 8 processed, 0 errors" in cli("run", "--force").stdout
    assert "(no change)" in cli("migrate").stdout

    # a schema change needs what was revoked: migrate stops clearly, exit 3
    site.execute("ALTER TABLE mdl_alt42_event_processing_log DROP INDEX idx_run")
    _one_line_exit_3(cli("migrate"), "ALTER command denied to user 'alt42_heartbeat'")

    # and the account can do nothing else: no DDL, no other Moodle table
    site.execute("CREATE TABLE mdl_config (name VARCHAR(10), value TEXT)")
    with (
        pymysql.connect(
            unix_socket=site.server.socket,
            user=JOB_USER,
            password="a long random password",
            database=site.name,
        ) as conn,
        conn.cursor() as cur,
    ):
        for forbidden in (
            "DROP TABLE mdl_user",
            "DELETE FROM mdl_alt42_students",
            "SELECT * FROM mdl_config",
            "CREATE TABLE mdl_evil (id INT)",
        ):
            with pytest.raises(pymysql.err.OperationalError, match=r"\(114[24],"):
                cur.execute(forbidden)
    assert site.scalar("SELECT COUNT(*) FROM mdl_user") == 10


def test_an_upgrade_that_adds_a_table_names_the_grant_it_needs(
    demo_site: Site, job_user: str, tmp_path: Path
) -> None:
    """A site set up by the README of 0.3.0 (grants on its three tables, CREATE and ALTER
    taken back) upgrades to a release that adds the daily summary's table: migrate stops
    with the one GRANT to run; once the admin runs it, migrate, the run and the summary
    work, and CREATE, ALTER can be taken back again."""
    daily = "mdl_alt42_heartbeat_daily"
    demo_site.execute(f"DROP TABLE {daily}")  # the tables as 0.3.0's migrate left them
    grants, revokes = readme_grants()
    _as_root(demo_site, [g for g in grants if daily not in g])
    _as_root(demo_site, [r for r in revokes if daily not in r])
    ini = _job_ini(demo_site, tmp_path)
    before = demo_site.scalar("SELECT COUNT(*) FROM information_schema.TABLES"
                              " WHERE TABLE_SCHEMA = DATABASE()")  # fmt: skip

    migrated = run_cli("--config", str(ini), "migrate")
    _one_line_exit_3(migrated, f"migrate could not create table {daily}: CREATE command denied")
    grant = re.search(r"run (GRANT .+? TO '[^']+'@'[^']+')", migrated.stderr)
    assert grant, migrated.stderr
    assert grant[1] == (
        f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER ON `{demo_site.name}`.`{daily}`"
        f" TO '{JOB_USER}'@'localhost'"
    )
    assert demo_site.scalar("SELECT COUNT(*) FROM information_schema.TABLES"
                            " WHERE TABLE_SCHEMA = DATABASE()") == before  # fmt: skip

    _as_root(demo_site, [grant[1]])  # what the admin pastes
    migrated = run_cli("--config", str(ini), "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"created table {daily}" in migrated.stdout
    _as_root(
        demo_site, [f"REVOKE CREATE, ALTER ON `moodle`.`{daily}` FROM '{JOB_USER}'@'localhost'"]
    )
    ran = run_cli("--config", str(ini), "run")
    assert ran.returncode == 0, ran.stderr
    assert demo_site.scalar(
        f"SELECT events FROM {daily} WHERE kind = 'status' AND name = 'completed'"
    ) == demo_site.scalar("SELECT students_processed FROM mdl_alt42_heartbeat_log")


def test_check_names_the_grant_the_jobs_account_lacks(
    demo_site: Site, job_user: str, tmp_path: Path
) -> None:
    """The role migrates with an account of its own and then runs the new release's
    check as the job's user before it switches: a table the release added (made by
    migrate's account) without the job's grant on it stops the switch with the GRANT,
    instead of every run failing at its first batch."""
    daily = "mdl_alt42_heartbeat_daily"
    grants, revokes = readme_grants()
    _as_root(demo_site, [g for g in grants if daily not in g])
    _as_root(demo_site, [r for r in revokes if daily not in r])
    ini = _job_ini(demo_site, tmp_path)

    checked = run_cli("--config", str(ini), "check")
    _one_line_exit_3(
        checked, f"this database user may not SELECT, INSERT, UPDATE, DELETE table {daily}"
    )
    assert (
        f"run GRANT SELECT, INSERT, UPDATE, DELETE ON `{demo_site.name}`.`{daily}`"
        f" TO '{JOB_USER}'@'localhost' (README: Database privileges)"
    ) in checked.stderr
    ran = run_cli("--config", str(ini), "run")  # what every run would meet
    _one_line_exit_3(ran, f"may not SELECT, INSERT, UPDATE, DELETE table {daily}; as the")
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 0

    grant = re.search(r"run (GRANT .+? TO '[^']+'@'[^']+')", checked.stderr)
    assert grant, checked.stderr
    _as_root(demo_site, [grant[1]])
    assert run_cli("--config", str(ini), "check").returncode == 0
    # a privilege the job uses taken away elsewhere: named as well
    _as_root(demo_site, [
        f"REVOKE DELETE ON `moodle`.`mdl_alt42_event_processing_log` FROM '{JOB_USER}'@'localhost'"
    ])  # fmt: skip
    _one_line_exit_3(
        run_cli("--config", str(ini), "check"),
        "this database user may not DELETE table mdl_alt42_event_processing_log",
    )


def test_migrate_that_cannot_see_the_columns_says_so(
    site: Site, job_user: str, tmp_path: Path
) -> None:
    """CREATE alone: the PHP job's tables exist but stay invisible; migrate must not
    claim it created them (it used to: CREATE TABLE IF NOT EXISTS was a silent no-op)."""
    for statement in PHP_TABLES:
        site.execute(statement)
    grants, _ = readme_grants()
    _as_root(
        site,
        [grants[0]]
        + [
            f"GRANT CREATE, ALTER ON `moodle`.`{t}` TO '{JOB_USER}'@'localhost'" for t in OWN_TABLES
        ],
    )
    result = run_cli("--config", str(_job_ini(site, tmp_path)), "migrate")
    _one_line_exit_3(result, "mdl_alt42_heartbeat_log: this database user cannot see its columns")
    assert "created table" not in result.stdout


# --------------------------------------------------------------------------- hostile ids

HOSTILE_IDS = [
    "'; DROP TABLE mdl_user; --",
    "1 OR 1=1",
    "1' OR '1'='1",
    'x" OR "x"="x',
    "back\\slash",
    "ends with \\",
    "\\'",
    "%s",
    "%(id)s",
    "?",
    "/* comment */",
    "`backtick`",
    "tab\there",
    "new\nline",
    "cr\r\nlf",
    "nul\x00byte",
    "ctrl-z\x1a",
    "한국어 학생",
    "😱🔥",
    "Ünïcödé",
    "$(reboot)",
    '{"json": 1}',
]


@pytest.fixture(params=["default", "NO_BACKSLASH_ESCAPES"])
def sql_mode(request: pytest.FixtureRequest, mariadb: MariaDBServer) -> Iterator[str]:
    """The server's sql_mode for new sessions (the job's included), restored after."""
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.sql_mode")
        original = cur.fetchone()[0]
        if request.param != "default":
            cur.execute(
                "SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, %s)", (",NO_BACKSLASH_ESCAPES",)
            )
    try:
        yield str(request.param)
    finally:
        with mariadb.connect() as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL sql_mode = %s", (original,))


def test_hostile_student_ids_are_stored_verbatim(demo_site: Site, sql_mode: str) -> None:
    assert all(len(sid) <= 32 for sid in HOSTILE_IDS)
    demo_site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(sid,) for sid in HOSTILE_IDS],
    )
    # one hostile student is fully known: found through the IN lists of every state query
    known = HOSTILE_IDS[0]
    demo_site.execute(
        "INSERT INTO mdl_alt42_students (student_id, grade, mbti) VALUES (%s, 10, 'INTJ')",
        (known,),
    )
    demo_site.execute(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state,"
        " engagement_score, updated_at) VALUES (0, %s, '불안', 0.1, UTC_TIMESTAMP())",
        (known,),
    )
    demo_site.execute(
        "INSERT INTO mdl_alt42_student_biometrics (student_id, stress_level) VALUES (%s, 9)",
        (known,),
    )
    tables_before = sorted(r[0] for r in demo_site.query("SHOW TABLES"))
    result = demo_site.cli("run", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["students_processed"], summary["errors"]) == (8 + len(HOSTILE_IDS), 0)

    assert sorted(r[0] for r in demo_site.query("SHOW TABLES")) == tables_before
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_user") == 10
    stored = [
        r[0]
        for r in demo_site.query(
            "SELECT student_id FROM mdl_alt42_event_processing_log ORDER BY id"
        )
    ]
    demo = ["1001", "1002", "1003", "1004", "1005", "1006", "1007", "guest-77"]
    assert sorted(stored) == sorted(demo + HOSTILE_IDS)  # byte for byte
    evaluated = demo_site.query(
        "SELECT student_id, COUNT(*) FROM mdl_alt42_scenario_evaluation_log"
        " GROUP BY BINARY student_id"
    )
    assert {sid for sid, n in evaluated if n == 5} >= set(HOSTILE_IDS)
    matched = {
        m["rule_id"]
        for (doc,) in demo_site.query(
            "SELECT evaluation_result FROM mdl_alt42_scenario_evaluation_log WHERE student_id = %s",
            (known,),
        )
        for m in json.loads(doc)["matched_rules"]
    }
    assert {"S1R1_emotion_based_reentry", "S3R2_stress_intervention"} <= matched
    routing = demo_site.scalar(
        "SELECT routing_result FROM mdl_alt42_event_processing_log WHERE student_id = %s",
        (known,),
    )
    assert json.loads(routing)["strategy"] == "high_stress"
    # the JSON documents stay valid JSON whatever the id held
    for (doc,) in demo_site.query("SELECT scenario_results FROM mdl_alt42_event_processing_log"):
        assert set(json.loads(doc)) == {"S0", "S1", "S2", "S3", "S4"}


def _text(value: object) -> object:
    return value.text if isinstance(value, evaluate.Json) else value


def test_the_writers_cached_escaping_sends_what_pymysql_itself_would(
    demo_site: Site, sql_mode: str
) -> None:
    """``store.prepare``'s cursor (literals from a cache, documents by pieces) builds
    exactly the statements PyMySQL's ``executemany`` builds alone from the same rows,
    each document passed as its text (PyMySQL escapes an object it does not know with
    backslashes whatever the sql_mode: under NO_BACKSLASH_ESCAPES that would corrupt
    the documents; the cursor escapes them as the text they are)."""
    head = '{"scenario_id":"S0","note":"' + "'\\\"\\n\x00\x1a" + '","duration_ms":'
    rows = evaluate.BatchRows()
    for number, sid in enumerate(HOSTILE_IDS * 2):  # each value twice: a cache hit
        document = evaluate.Json(head, f"{number}.5}}")
        rows.evaluations.append((sid, "S0", sid, number, "all_matching", document, sid))
        rows.events.append(
            (sid, "t", sid, 5, document, evaluate.to_json([sid]), 2, sid, sid, sid, sid)
        )
    # 1, 1.0 and True are one dict key; their literals differ
    rows.events.append((1.0, True, 1, None, b"\x00'", dt.datetime(2024, 5, 1, 10, 0, 0, 5),
                        1, 1.0, True, "x", "x"))  # fmt: skip
    tables = db.Tables("mdl_")
    plain = db.connect(demo_site.config().database, 10)
    prepared = store.prepare(db.connect(demo_site.config().database, 10))
    try:
        as_text = evaluate.BatchRows(
            [tuple(map(_text, row)) for row in rows.evaluations],
            [tuple(map(_text, row)) for row in rows.events],
        )
        expected = store.batch_statements(plain, tables, as_text)  # PyMySQL's own escaping
        assert store.batch_statements(prepared, tables, rows) == expected
        assert store.batch_statements(prepared, tables, rows) == expected  # from the cache
        assert prepared.literals  # the cache was used, not bypassed
        assert (
            b"(1.0e0, 1, 1, NULL, X'0027', '2024-05-01 10:00:00.000005', 1, 1.0e0, 1,"
            in (expected[-1])
        )
    finally:
        db.close_quietly(plain)
        db.close_quietly(prepared)


def test_a_pymysql_without_the_cursor_hook_is_refused(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before 1.2.1 PyMySQL escapes a document itself, with backslashes whatever the
    sql_mode: the writer refuses it (one line, the fix) instead of corrupting them."""
    conn = db.connect(demo_site.config().database, 10)
    monkeypatch.delattr(pymysql.cursors.Cursor, "_mogrify")
    try:
        with pytest.raises(ConfigError, match=r"older than 1\.2\.1.*pip install"):
            store.prepare(conn)
    finally:
        db.close_quietly(conn)


@pytest.mark.parametrize(
    "column, value",
    [
        ("DATETIME", "2024-05-01 10:00:00"),
        ("DATETIME(6)", "2024-05-01 10:00:00.123456"),
        ("DATETIME(1)", "2024-05-01 10:00:00.5"),
        ("DATETIME(3)", "0099-01-01 00:00:00.25"),
        ("DATETIME", "0000-00-00 00:00:00"),  # zero date (lax sql_mode): a string
        ("DATETIME", "2024-00-01 00:00:00"),  # zero month (lax sql_mode): a string
        ("TIMESTAMP", "2024-05-01 10:00:00"),
        ("TIMESTAMP", "0000-00-00 00:00:00"),
    ],
)
def test_dates_are_read_as_pymysql_reads_them(demo_site: Site, column: str, value: str) -> None:
    """``db.connect``'s faster DATETIME/TIMESTAMP decoder returns what PyMySQL's own
    does, for each shape a server sends (zero dates included)."""
    with demo_site.conn() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(f"CREATE TABLE dates (d {column} NULL)")
        cur.execute("INSERT INTO dates VALUES (%s), (NULL)", (value,))
        cur.execute("SELECT d FROM dates")
        expected = cur.fetchall()
    ours = db.connect(demo_site.config().database, 10)
    try:
        with ours.cursor() as cur:
            cur.execute("SELECT d FROM dates")
            got = cur.fetchall()
    finally:
        db.close_quietly(ours)
    assert [(type(v), v) for (v,) in got] == [(type(v), v) for (v,) in expected]
    assert type(expected[0][0]) is (
        str if value[5:7] == "00" or value[:4] == "0000" else dt.datetime
    )
