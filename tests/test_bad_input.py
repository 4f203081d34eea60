"""Malformed and hostile input, table-driven, through the real command line (a process,
as cron runs it): Moodle config.php files, INI files, environment values, rule books
and database contents.

Each configuration case: the expected exit code, exactly one stderr line that matches a
pattern naming the problem, no traceback, never the password. Each database case: the
exit code and what the rows say. In-process checks of the same readers are in
``test_config.py``, ``test_moodle_config.py`` and ``test_rules.py``; here every case
goes end to end.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from tests.conftest import DB_PASSWORD, DB_USER, ROOT, Site, make_site, run_cli
from tests.mariadb_server import MariaDBServer

# --------------------------------------------------------------------------- helpers


def php(body: str) -> str:
    """A config.php with the usual head; ``{socket}``, ``{name}`` are filled later."""
    return "<?php  // Moodle configuration file\nunset($CFG);\nglobal $CFG;\n" + body


GOOD_PHP = php(
    "$CFG = new stdClass();\n"
    "$CFG->dbtype    = 'mariadb';\n"
    "$CFG->dblibrary = 'native';\n"
    "$CFG->dbhost    = 'localhost';\n"
    "$CFG->dbname    = '{name}';\n"
    "$CFG->dbuser    = '{user}';\n"
    "$CFG->dbpass    = '{password}';\n"
    "$CFG->prefix    = 'mdl_';\n"
    "$CFG->dboptions = array (\n"
    "  'dbpersist' => 0,\n"
    "  'dbsocket' => '{socket}',\n"
    "  'dbcollation' => 'utf8mb4_unicode_ci',\n"
    ");\n"
    "$CFG->wwwroot   = 'https://moodle.example.org';\n"
    "require_once(__DIR__ . '/lib/setup.php');\n"
)


@dataclass
class Case:
    """One hostile input: files to write, environment, and the expected outcome."""

    id: str
    code: int
    line: str = ""  # regex the single stderr line must match ("" = no stderr at all)
    php: Optional[str] = None  # config.php text ({name}, {user}, {password}, {socket})
    php_bytes: Optional[bytes] = None
    ini_extra: str = ""  # lines appended to a working INI
    ini: Optional[str] = None  # a whole INI instead (then no working values)
    ini_bytes: Optional[bytes] = None
    ini_mode: int = 0o600
    rules: Optional[Any] = None  # a rule book: text, or a JSON-able object
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    needs_db: bool = False


def _fill(text: str, site: Site) -> str:
    return (
        text.replace("{name}", site.name)
        .replace("{user}", DB_USER)
        .replace("{password}", DB_PASSWORD)
        .replace("{socket}", site.server.socket)
    )


def run_case(case: Case, site: Site, tmp: Path) -> subprocess.CompletedProcess[str]:
    for name, text in case.files.items():
        (tmp / name).write_text(_fill(text, site), encoding="utf-8")
    if case.php is not None:
        (tmp / "config.php").write_text(_fill(case.php, site), encoding="utf-8")
    if case.php_bytes is not None:
        (tmp / "config.php").write_bytes(case.php_bytes)
    if case.rules is not None:
        text = case.rules if isinstance(case.rules, str) else json.dumps(case.rules)
        (tmp / "rules.json").write_text(text, encoding="utf-8")
    ini = tmp / "heartbeat.ini"
    if case.ini_bytes is not None:
        ini.write_bytes(case.ini_bytes)
    elif case.ini is not None:
        ini.write_text(_fill(case.ini, site), encoding="utf-8")
    else:
        if case.php is not None or case.php_bytes is not None:
            database = "[database]\nmoodle_config = config.php\n"
        else:
            database = (
                f"[database]\nsocket = {site.server.socket}\nname = {site.name}\n"
                f"user = {DB_USER}\npassword = {DB_PASSWORD}\n"
            )
        heartbeat = "[heartbeat]\n"
        if "lock_file" not in case.ini_extra:
            heartbeat += f"lock_file = {tmp / 'heartbeat.lock'}\n"
        if case.rules is not None:
            heartbeat += "rules = rules.json\n"
        extra = _fill(case.ini_extra, site)
        if extra.startswith("[heartbeat]\n"):  # extend the section, do not repeat it
            heartbeat += extra[len("[heartbeat]\n") :]
            extra = ""
        ini.write_text(database + heartbeat + extra, encoding="utf-8")
    ini.chmod(case.ini_mode)
    return run_cli(
        "--config", str(ini), "run", env={k: _fill(v, site) for k, v in case.env.items()}
    )


def assert_outcome(case: Case, result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == case.code, (result.stdout, result.stderr)
    assert "Traceback" not in output
    assert DB_PASSWORD not in output
    if case.line:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert re.search(case.line, lines[0]), lines[0]
    else:
        assert result.stderr == ""


def rule_book(condition: Any = None, **rule: Any) -> dict[str, Any]:
    """A one-rule book; ``condition`` replaces its condition, ``rule`` its fields."""
    body = {
        "priority": 50,
        "confidence": 0.5,
        "action": ["act"],
        "rationale": "test",
        "conditions": [condition or {"field": "stress_level", "operator": ">=", "value": 8}],
        **rule,
    }
    return {
        "version": 1,
        "scenarios": [{"id": "S9", "name": "test", "mode": "priority_first", "rules": ["r1"]}],
        "rules": {"r1": body},
    }


# --------------------------------------------------------------------------- the cases

PHP_CASES = [
    Case("php-works", 0, php=GOOD_PHP, needs_db=True),
    Case(
        "php-truncated-in-a-string",
        2,
        r"config\.php: .*(line 10|unterminated|end of file)",
        php=GOOD_PHP[: GOOD_PHP.index("$CFG->dbpass") + 24],
    ),
    Case(
        "php-truncated-in-dboptions",
        2,
        r"config\.php: ",
        php=GOOD_PHP[: GOOD_PHP.index("'dbsocket'") + 5],
    ),
    Case(
        "php-no-dboptions-socket-from-ini",
        0,
        php=re.sub(r"\$CFG->dboptions = array \([^;]*\);\n", "", GOOD_PHP),
        ini_extra="",
        files={},
        env={"ALT42_DB_SOCKET": "{socket}"},
        needs_db=True,
    ),
    Case(
        "php-double-quotes-and-escapes",
        0,
        php=GOOD_PHP.replace("'{password}'", '"Sw0rdfish\\x2dZ9\\055do-not-print"'),
        needs_db=True,
    ),
    Case(
        "php-concatenated-password",
        0,
        php=GOOD_PHP.replace("'{password}'", "'Sw0rdfish' . '-Z9-' . \"do-not-print\""),
        needs_db=True,
    ),
    Case(
        "php-password-from-getenv",
        2,
        r"config\.php: line \d+: \$CFG->dbpass is not a literal value",
        php=GOOD_PHP.replace("'{password}'", "getenv('MOODLE_DB_PASS')"),
    ),
    Case("php-dbtype-pgsql", 2, r"pgsql", php=GOOD_PHP.replace("'mariadb'", "'pgsql'")),
    Case(
        "php-settings-in-an-included-file",
        2,
        r"config\.php: line 5: \$CFG->dbtype, \$CFG->dbhost, .*\$CFG->prefix may be set in the"
        r" file included here \(includes are not followed\); .* set \[database\] type, host, port,"
        r" socket, name, user, password, prefix \(or their ALT42_DB_\* variables\)$",
        php=php("$CFG = new stdClass();\nrequire(__DIR__ . '/config-db.php');\n"),
        files={"config-db.php": GOOD_PHP},
    ),
    Case("php-huge-file", 2, r"config\.php: is larger than", php="<?php\n" + "// x\n" * 400_000),
    Case(
        "php-binary-garbage",
        2,
        r"config\.php: is a binary file",
        php_bytes=b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
    ),
    Case(
        "php-latin1",
        2,
        r"config\.php: is not UTF-8 text \(first bad byte on line 10\)",
        php_bytes=GOOD_PHP.replace("'{password}'", "'caf\xe9'").encode("latin-1"),
    ),
    Case(
        "php-port-not-a-number",
        2,
        r"dbport",
        php=GOOD_PHP.replace("'dbpersist' => 0,", "'dbport' => 'three thousand',"),
    ),
    Case(
        "php-prefix-with-sql",
        2,
        r"prefix.*is not a table prefix",
        php=GOOD_PHP.replace("'mdl_'", "'mdl_; DROP TABLE mdl_user; --'"),
    ),
    Case("php-crlf-and-bom", 0, php="\ufeff" + GOOD_PHP.replace("\n", "\r\n"), needs_db=True),
    Case("php-empty", 2, r"config\.php: ", php="<?php\n"),
    Case(
        "php-short-array-and-comments",
        0,
        php=GOOD_PHP.replace("array (", "[ /* options */").replace(
            ");\n$CFG->wwwroot", "];\n$CFG->wwwroot"
        ),
        needs_db=True,
    ),
]

INI_CASES = [
    Case(
        "ini-unknown-section",
        2,
        r"section \[databse\] is not known \(did you mean \[database\]\?\)",
        ini="[databse]\nhost = x\n",
    ),
    Case("ini-key-outside-section", 2, r"line 1 is outside any section", ini="host = x\n"),
    Case(
        "ini-duplicate-key",
        2,
        r"\[heartbeat\] batch_size is set twice",
        ini_extra="[heartbeat]\nbatch_size = 5\nbatch_size = 6\n",
    ),
    Case(
        "ini-batch-size-zero",
        2,
        r"batch_size = 0 is out of range",
        ini_extra="[heartbeat]\nbatch_size = 0\n",
    ),
    Case(
        "ini-inline-comment",
        2,
        r"batch_size = '10 ; students' is not a whole number.*comments must be on a line",
        ini_extra="[heartbeat]\nbatch_size = 10 ; students\n",
    ),
    Case(
        "ini-continuation-line",
        2,
        r"spans several lines",
        ini_extra="[heartbeat]\nwindow_hours = 24\n  open_session_hours = 24\n",
    ),
    Case(
        "ini-relative-lock-file",
        2,
        r"lock_file = 'heartbeat\.lock' is not an absolute path",
        ini_extra="[heartbeat]\nlock_file = heartbeat.lock\n",
        ini=None,
    ),
    Case(
        "ini-lock-file-in-missing-directory",
        2,
        r"cannot open lock file /nonexistent/dir/x\.lock: No such file or directory",
        ini_extra="[heartbeat]\nlock_file = /nonexistent/dir/x.lock\n",
    ),
    Case(
        "ini-rules-missing",
        2,
        r"rules = 'no-such-rules\.json': no such file",
        ini_extra="[heartbeat]\nrules = no-such-rules.json\n",
    ),
    Case("ini-binary", 2, r"heartbeat\.ini: is a binary file", ini_bytes=b"[database]\x00\x01\x02"),
    Case(
        "ini-ping-url-not-http",
        2,
        r"\[monitoring\] ping_url is not an http\(s\) URL",
        ini_extra="[monitoring]\nping_url = ftp://example.org/x\n",
    ),
    Case(
        "ini-mail-to-not-an-address",
        2,
        r"\[monitoring\] mail_to: 'ops example\.org' is not a mail address",
        ini_extra="[monitoring]\nmail_to = root, ops example.org\n",
    ),
    Case(
        "ini-mail-header-injection",
        2,
        r"\[monitoring\] mail_from: 'a@b\.org>Bcc:x@y\.org' is not a mail address",
        ini_extra="[monitoring]\nmail_to = root\nmail_from = a@b.org>Bcc:x@y.org\n",
    ),
    Case(
        "ini-sendmail-relative",
        2,
        r"\[monitoring\] sendmail = 'sendmail' is not an absolute path",
        ini_extra="[monitoring]\nmail_to = root\nsendmail = sendmail\n",
    ),
]

ENV_CASES = [
    Case(
        "env-port-not-a-number",
        2,
        r"ALT42_DB_PORT = 'abc' is not a whole number",
        env={"ALT42_DB_PORT": "abc"},
    ),
    Case(
        "env-port-out-of-range",
        2,
        r"ALT42_DB_PORT = 70000 is out of range",
        env={"ALT42_DB_PORT": "70000"},
    ),
    Case(
        "env-prefix-injection",
        2,
        r"ALT42_DB_PREFIX = .* is not a table prefix",
        env={"ALT42_DB_PREFIX": "mdl_` WHERE 1; DROP TABLE mdl_user; --"},
    ),
    Case(
        "env-host-with-space",
        2,
        r"ALT42_DB_HOST = 'db host' is not a host name",
        env={"ALT42_DB_HOST": "db host"},
    ),
    Case("env-name-empty", 2, r"ALT42_DB_NAME = '' is empty", env={"ALT42_DB_NAME": ""}),
    Case(
        "env-socket-control-char",
        2,
        r"ALT42_DB_SOCKET = .* is not a socket path",
        env={"ALT42_DB_SOCKET": "/run/x\x07.sock"},
    ),
    Case(
        "env-unknown-database",
        3,
        r"database error while connecting .*\(1044\) Access denied for user 'alt42'"
        r".*to database 'alt42_nope'",
        env={"ALT42_DB_NAME": "alt42_nope"},
    ),
]

BROKEN_BOOKS: list[tuple[str, Any, str]] = [
    (
        "rules-unknown-operator",
        rule_book({"field": "x", "operator": "=~", "value": 1}),
        r"unknown operator '=~'",
    ),
    (
        "rules-missing-field",
        rule_book({"operator": "==", "value": 1}),
        r"conditions\[0\]: missing field",
    ),
    ("rules-priority-wrong-type", rule_book(priority="high"), r"priority must be a whole number"),
    ("rules-action-wrong-type", rule_book(action="notify"), r"action must be a list of strings"),
    (
        "rules-duplicate-ids",
        '{"version": 1, "scenarios": [], "rules": {"r1": {}, "r1": {}}}',
        r"duplicate key 'r1'",
    ),
    (
        "rules-or-inside-or",
        rule_book(
            {
                "OR": [
                    {"OR": [{"field": "a", "operator": "==", "value": 1}] * 2},
                    {"field": "b", "operator": "==", "value": 2},
                ]
            }
        ),
        r"an OR group cannot contain another OR group",
    ),
    ("rules-not-json", "version: 1\nrules: []\n", r"not a valid rule book \(JSON\)"),
    ("rules-empty-file", "", r"not a valid rule book \(JSON\)"),
    (
        "rules-bad-regex",
        rule_book({"field": "x", "operator": "matches", "value": "(unclosed"}),
        r"invalid regular expression",
    ),
    (
        "rules-huge-number",
        rule_book({"field": "x", "operator": ">", "value": 10**400}),
        r"> needs a number",
    ),
    (
        "rules-unknown-rule-id",
        {
            **rule_book(),
            "scenarios": [{"id": "S9", "name": "t", "mode": "priority_first", "rules": ["r2"]}],
        },
        r"unknown rule id\(s\) r2",
    ),
]
RULE_CASES = [
    Case(name, 2, r"rules\.json: .*" + pattern, rules=book) for name, book, pattern in BROKEN_BOOKS
]

CONFIG_CASES = PHP_CASES + INI_CASES + ENV_CASES + RULE_CASES


@pytest.fixture(scope="module")
def config_site(mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One demo site for the configuration cases that reach the database."""
    created = make_site(mariadb, tmp_path_factory.mktemp("bad-input"), demo=True)
    created.migrate()
    yield created
    mariadb.drop_database(created.name)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_configuration_input(case: Case, config_site: Site, tmp_path: Path) -> None:
    if case.needs_db:
        config_site.execute("DELETE FROM mdl_alt42_heartbeat_log")  # a fresh slot each time
    result = run_case(case, config_site, tmp_path)
    assert_outcome(case, result)
    if case.needs_db:
        assert "Completed: 8 processed, 0 errors" in result.stdout


ODD_PASSWORD = "p%(x)s ; #'\"$HOME {}\\ é 비밀"


def test_ini_password_with_ini_and_shell_metacharacters(config_site: Site, tmp_path: Path) -> None:
    """%, ;, #, quotes, $ and a backslash are taken verbatim from the INI file."""
    config_site.server.create_user(
        "alt42_odd", ODD_PASSWORD, "GRANT ALL ON `alt42\\_t\\_%`.* TO {user}"
    )
    config_site.execute("DELETE FROM mdl_alt42_heartbeat_log")
    ini = tmp_path / "odd.ini"
    ini.write_text(
        f"[database]\nsocket = {config_site.server.socket}\nname = {config_site.name}\n"
        f"user = alt42_odd\npassword = {ODD_PASSWORD}\n"
        f"[heartbeat]\nlock_file = {tmp_path / 'odd.lock'}\n",
        encoding="utf-8",
    )
    ini.chmod(0o600)
    result = run_cli("--config", str(ini), "run")
    assert result.returncode == 0, result.stderr
    assert "Completed: 8 processed, 0 errors" in result.stdout
    assert ODD_PASSWORD not in result.stdout + result.stderr


def test_there_are_at_least_forty_cases() -> None:
    assert len(CONFIG_CASES) + len(DB_CASES) >= 40


# --------------------------------------------------------------------------- database contents


@dataclass
class DbCase:
    id: str
    setup: Callable[[Site], None]
    code: int
    check: Callable[[Site], None]
    errors: int = 0


def _sessions(site: Site, ids: list[str]) -> None:
    site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(sid,) for sid in ids],
    )


def _events(site: Site) -> dict[str, tuple[str, Any]]:
    rows = site.query(
        "SELECT student_id, status, scenario_results FROM mdl_alt42_event_processing_log"
    )
    return {str(r[0]): (str(r[1]), r[2]) for r in rows}


def _matched(site: Site, student: str) -> set[str]:
    rows = site.query(
        "SELECT evaluation_result FROM mdl_alt42_scenario_evaluation_log WHERE student_id = %s",
        (student,),
    )
    return {m["rule_id"] for (doc,) in rows for m in json.loads(doc)["matched_rules"]}


def _route(site: Site, student: str) -> str:
    doc = site.scalar(
        "SELECT routing_result FROM mdl_alt42_event_processing_log WHERE student_id = %s",
        (student,),
    )
    return str(json.loads(doc)["strategy"])


def setup_nulls(site: Site) -> None:
    site.execute("INSERT INTO mdl_user (id, username, deleted) VALUES (5001, 'n', 0)")
    site.execute(
        "INSERT INTO mdl_alt42_students (student_id, userid, grade, class, mbti, updated_at)"
        " VALUES ('5001', NULL, NULL, NULL, NULL, NULL)"
    )
    site.execute(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, mbti_type, updated_at)"
        " VALUES (5001, NULL, NULL, NULL)"
    )
    site.execute(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time, end_time, session_end)"
        " VALUES ('5001', UNIX_TIMESTAMP() - 60, NULL, NULL)"
    )


def check_nulls(site: Site) -> None:
    assert _events(site)["5001"][0] == "completed"
    # the profile's defaults: engagement 0.0 < 0.5 and concentration 5.0 -> not S2R1 (< 5)
    assert _matched(site, "5001") == set()


def setup_null_state_columns(site: Site) -> None:
    """A site whose profile/biometrics columns allow NULL, and hold NULL."""
    for column, kind in [
        ("emotion_state", "VARCHAR(20)"),
        ("immersion_level", "DECIMAL(5,2)"),
        ("engagement_score", "DECIMAL(5,2)"),
        ("math_confidence", "DECIMAL(5,2)"),
    ]:
        site.execute(f"ALTER TABLE mdl_alt42_student_profiles MODIFY {column} {kind} NULL")
    for column in ("stress_level", "concentration_level"):
        site.execute(f"ALTER TABLE mdl_alt42_student_biometrics MODIFY {column} DECIMAL(5,2) NULL")
    site.execute("INSERT INTO mdl_user (id, username, deleted) VALUES (5002, 'n', 0)")
    site.execute(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state,"
        " immersion_level, engagement_score, math_confidence, updated_at)"
        " VALUES (5002, '5002', NULL, NULL, NULL, NULL, UTC_TIMESTAMP())"
    )
    site.execute(
        "INSERT INTO mdl_alt42_student_biometrics (student_id, stress_level, concentration_level)"
        " VALUES ('5002', NULL, NULL)"
    )
    _sessions(site, ["5002"])


def check_null_state_columns(site: Site) -> None:
    assert _events(site)["5002"][0] == "completed"
    assert _matched(site, "5002") == set()  # a null field makes every comparison false
    assert _route(site, "5002") == "heartbeat"


LONG_ID = "L" * 40


def setup_long_id(site: Site) -> None:
    """A site whose sessions column is wider than the job's 32 characters."""
    site.execute("ALTER TABLE mdl_alt42_learning_sessions MODIFY student_id VARCHAR(64) NOT NULL")
    _sessions(site, [LONG_ID, "L" * 32])


def check_long_id(site: Site) -> None:
    # the 32-character id is a valid student; the 40-character one failed, its row
    # carrying the first 32 characters
    assert (
        site.scalar(
            "SELECT COUNT(*) FROM mdl_alt42_event_processing_log WHERE status = 'completed'"
            " AND student_id = %s",
            ("L" * 32,),
        )
        == 1
    )
    failed = site.query(
        "SELECT student_id, scenario_results FROM mdl_alt42_event_processing_log"
        " WHERE status = 'failed'"
    )
    assert len(failed) == 1
    assert failed[0][0] == LONG_ID[:32]
    assert "student_id is longer than 32 characters" in failed[0][1]
    assert site.scalar("SELECT errors FROM mdl_alt42_heartbeat_log") == 1


ODD_IDS = [
    "abc",
    "guest-1",
    "12abc",
    "1e3",
    "-5",
    "007",
    "99999999999999999999",
    " x",
    "\uff21\uff22\uff23",
]


def check_odd_ids(site: Site) -> None:
    events = _events(site)
    for sid in ODD_IDS:
        assert events[sid][0] == "completed", sid
    # "007" is user 7 only if such a user exists; numeric-looking text is never a crash
    order = [
        str(r[0])
        for r in site.query("SELECT student_id FROM mdl_alt42_event_processing_log ORDER BY id")
    ]
    assert order.index("007") < order.index("1001") < order.index("99999999999999999999")


def setup_unicode_emotions(site: Site) -> None:
    for uid, emotion in [(5003, "불안"), (5004, "😱"), (5005, "Ärger\u200b")]:
        site.execute("INSERT INTO mdl_user (id, username, deleted) VALUES (%s, 'u', 0)", (uid,))
        site.execute(
            "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state,"
            " updated_at) VALUES (%s, %s, %s, UTC_TIMESTAMP())",
            (uid, str(uid), emotion),
        )
        _sessions(site, [str(uid)])


def check_unicode_emotions(site: Site) -> None:
    assert "S4R1_emotion_management" in _matched(site, "5003")
    assert "S4R1_emotion_management" not in _matched(site, "5004")
    assert all(_events(site)[s][0] == "completed" for s in ("5003", "5004", "5005"))


def setup_duplicate_profiles(site: Site) -> None:
    site.execute("INSERT INTO mdl_user (id, username, deleted) VALUES (5006, 'd', 0)")
    site.executemany(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state,"
        " engagement_score, updated_at) VALUES (5006, '5006', %s, %s, '2026-01-01 00:00:00')",
        [("neutral", 0.9), ("불안", 0.1), ("neutral", 0.9)],
    )
    _sessions(site, ["5006"])


def check_duplicate_profiles(site: Site) -> None:
    assert (
        site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log WHERE student_id = '5006'")
        == 1
    )
    # equal times: the highest id wins (the third row), deterministically
    assert _matched(site, "5006") == {"S2R2_progress_tracking"}


def setup_many_biometrics(site: Site) -> None:
    site.execute("INSERT INTO mdl_user (id, username, deleted) VALUES (5007, 'b', 0)")
    rows = [("5007", 1.0, f"2026-01-01 00:{n // 60:02d}:{n % 60:02d}") for n in range(3599)]
    rows.append(("5007", 9.5, "2026-01-02 00:00:00"))  # the latest measurement
    site.executemany(
        "INSERT INTO mdl_alt42_student_biometrics (student_id, stress_level, created_at)"
        " VALUES (%s, %s, %s)",
        rows,
    )
    _sessions(site, ["5007"])


def check_many_biometrics(site: Site) -> None:
    assert "S3R2_stress_intervention" in _matched(site, "5007")
    assert _route(site, "5007") == "high_stress"


def setup_blank_ids(site: Site) -> None:
    _sessions(site, ["   ", "\t"])


def check_blank_ids(site: Site) -> None:
    failed = site.query(
        "SELECT scenario_results FROM mdl_alt42_event_processing_log WHERE status = 'failed'"
    )
    assert len(failed) == 2
    assert all("student_id is empty" in doc for (doc,) in failed)


DB_CASES = [
    DbCase("db-nulls-where-allowed", setup_nulls, 0, check_nulls),
    DbCase("db-null-state-columns", setup_null_state_columns, 0, check_null_state_columns),
    DbCase("db-id-longer-than-32", setup_long_id, 1, check_long_id, errors=1),
    DbCase("db-non-numeric-ids", lambda s: _sessions(s, ODD_IDS), 0, check_odd_ids),
    DbCase("db-unicode-emotions", setup_unicode_emotions, 0, check_unicode_emotions),
    DbCase("db-duplicate-profiles", setup_duplicate_profiles, 0, check_duplicate_profiles),
    DbCase("db-3600-biometrics-rows", setup_many_biometrics, 0, check_many_biometrics),
    DbCase("db-blank-ids", setup_blank_ids, 1, check_blank_ids, errors=2),
]


@pytest.mark.parametrize("case", DB_CASES, ids=[c.id for c in DB_CASES])
def test_database_contents(case: DbCase, demo_site: Site) -> None:
    case.setup(demo_site)
    result = demo_site.cli("run")
    output = result.stdout + result.stderr
    assert result.returncode == case.code, output
    assert "Traceback" not in output and DB_PASSWORD not in output
    assert result.stderr == ""  # student failures are rows, not error lines
    counted = re.search(r"Completed: (\d+) processed, (\d+) errors", result.stdout)
    assert counted is not None, result.stdout
    processed, errors = int(counted[1]), int(counted[2])
    evaluations = demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log")
    events = demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log")
    assert events == processed + errors
    assert evaluations == 5 * processed  # a failed student has an event row only
    assert errors == case.errors
    case.check(demo_site)


def test_reliability_doc_counts_match_the_cases() -> None:
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip().split(":")[0]: line
        for line in doc.splitlines()
        if line.startswith("| ")
    }
    php_ok = sum(case.code == 0 for case in PHP_CASES)
    assert f"| {len(PHP_CASES)} | {php_ok} work" in rows["Moodle `config.php`"]
    assert f"{len(PHP_CASES) - php_ok} refused" in rows["Moodle `config.php`"]
    assert f"| {len(INI_CASES)} |" in rows["INI"]
    assert f"| {len(ENV_CASES)} |" in rows["environment"]
    assert f"| {len(RULE_CASES)} |" in rows["rule books"]
    assert f"| {len(DB_CASES)} |" in rows["database contents"]
