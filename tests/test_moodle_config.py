"""Reading Moodle's config.php as text: realistic files, every literal form, the
values PHP would compute (kept as per-key problems), and files that are unusable."""

from __future__ import annotations

import builtins
import contextlib
import os
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heartbeat.config import ENV_VARS
from heartbeat.errors import EXIT_CONFIG, ConfigError
from heartbeat.moodle_config import (
    FIELDS,
    MAX_CONFIG_PHP_BYTES,
    MoodleDbSettings,
    ini_key,
    parse_moodle_config,
    read_moodle_config,
    tokenize,
)

SECRET = "Zebra-7q!Sup3rS3cret"
SOURCE = "/var/www/moodle/config.php"

# What the Moodle 4.x installer writes (admin/cli/install.php), verbatim in shape.
DEFAULT_INSTALL = """<?php  // Moodle configuration file

unset($CFG);
global $CFG;
$CFG = new stdClass();

$CFG->dbtype    = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'localhost';
$CFG->dbname    = 'moodle';
$CFG->dbuser    = 'moodleuser';
$CFG->dbpass    = 'Zebra-7q!Sup3rS3cret';
$CFG->prefix    = 'mdl_';
$CFG->dboptions = array (
  'dbpersist' => 0,
  'dbport' => '',
  'dbsocket' => '',
  'dbcollation' => 'utf8mb4_unicode_ci',
);

$CFG->wwwroot   = 'http://localhost/moodle';
$CFG->dataroot  = '/var/www/moodledata';
$CFG->admin     = 'admin';

$CFG->directorypermissions = 0777;

require_once(__DIR__ . '/lib/setup.php');

// There is no php closing tag in this file,
// it is intentional because it prevents trailing whitespace problems!
"""

# An older, hand-edited file: array() syntax, # comments, closing tag, int port.
OLD_SYNTAX = """<?php
# Moodle 2.x era configuration, edited by hand
unset($CFG);  // Ignore this line
global $CFG;  // This is necessary here for PHPUnit execution
$CFG = new stdClass();

$CFG->dbtype    = 'mysqli';      # 'pgsql', 'mariadb', 'mysqli', 'sqlsrv' or 'oci'
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'db1.example.org';
$CFG->dbname    = 'moodle_prod';
$CFG->dbuser    = 'moodle';
$CFG->dbpass    = 'it\\'s a \\\\ secret';
$CFG->prefix    = 'mdl_';
$CFG->dboptions = array(
    'dbpersist' => false,
    'dbsocket'  => false,
    'dbport'    => 3307,
    'connecttimeout' => null,
);
$CFG->wwwroot   = 'https://moodle.example.org';
$CFG->dataroot  = '/srv/moodledata';
$CFG->directorypermissions = 02777;
$CFG->admin = 'admin';
require_once(dirname(__FILE__) . '/lib/setup.php');
?>
"""

# A modern file: [] syntax, nested arrays, trailing commas, /* */ comments, socket path.
SHORT_SYNTAX = """<?php
/*
 * Managed by Ansible. $CFG->dbpass = 'not this one';
 */
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype = 'auroramysql';
$CFG->dbhost = 'localhost'; /* the socket wins */
$CFG->dbname = 'lms';
$CFG->dbuser = 'lms_rw';
$CFG->dbpass = 'short-syntax';
$CFG->prefix = 'lms_';
$CFG->dboptions = [
    'dbpersist' => 0,
    'dbport' => '3307',
    'dbsocket' => '/run/mysqld/mysqld.sock',
    'dbcollation' => 'utf8mb4_unicode_ci',
    'readonly' => [
        'instance' => ['replica1.example.org', 'replica2.example.org',],
        'connecttimeout' => 2,
        'latency' => 0.5,
    ],
];
$CFG->wwwroot = 'https://lms.example.org';
$CFG->dataroot = '/srv/lms-data';
$CFG->sslproxy = true;
$CFG->session_handler_class = '\\\\core\\\\session\\\\redis';
$CFG->forced_plugin_settings = ['auth_ldap' => ['host_url' => 'ldaps://ldap']];
if (getenv('MOODLE_DEBUG')) {
    $CFG->debug = (E_ALL | E_STRICT);
}
require_once(__DIR__ . '/lib/setup.php');
"""

# Double-quoted strings with escapes, and the reset at the top.
DOUBLE_QUOTES = """<?php
$CFG = new stdClass;
$CFG->dbtype = "mysqli";
$CFG->dbhost = "127.0.0.1";
$CFG->dbname = "moodle";
$CFG->dbuser = "moodle";
$CFG->dbpass = "tab\\there \\"quoted\\" \\\\ \\$notavar new\\nline";
$CFG->prefix = "";
$CFG->dboptions = array("dbport" => "", "dbsocket" => true);
"""


def parse(text: str) -> MoodleDbSettings:
    return parse_moodle_config(text, SOURCE)


def php(*statements: str) -> str:
    """A minimal config.php around ``statements``."""
    return (
        "<?php\n$CFG = new stdClass();\n$CFG->dbtype = 'mysqli';\n" + "\n".join(statements) + "\n"
    )


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as excinfo:
        parse(text)
    assert excinfo.value.exit_code == EXIT_CONFIG
    message = str(excinfo.value)
    assert message.startswith(SOURCE + ":"), message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- realistic files


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            DEFAULT_INSTALL,
            {
                "dbtype": "mariadb",
                "host": "localhost",
                "name": "moodle",
                "user": "moodleuser",
                "password": SECRET,
                "prefix": "mdl_",
                "port": None,
                "socket": None,
            },
            id="default-install",
        ),
        pytest.param(
            OLD_SYNTAX,
            {
                "dbtype": "mysqli",
                "host": "db1.example.org",
                "name": "moodle_prod",
                "user": "moodle",
                "password": "it's a \\ secret",
                "prefix": "mdl_",
                "port": 3307,
                "socket": None,
            },
            id="array-syntax-hash-comments-closing-tag",
        ),
        pytest.param(
            SHORT_SYNTAX,
            {
                "dbtype": "auroramysql",
                "host": "localhost",
                "name": "lms",
                "user": "lms_rw",
                "password": "short-syntax",
                "prefix": "lms_",
                "port": 3307,
                "socket": "/run/mysqld/mysqld.sock",
            },
            id="short-syntax-nested-comments",
        ),
        pytest.param(
            DOUBLE_QUOTES,
            {
                "dbtype": "mysqli",
                "host": "127.0.0.1",
                "name": "moodle",
                "user": "moodle",
                "password": 'tab\there "quoted" \\ $notavar new\nline',
                "prefix": "",
                "port": None,
                "socket": None,
            },
            id="double-quotes-escapes",
        ),
    ],
)
def test_realistic_files(text: str, expected: dict[str, Any]) -> None:
    settings = parse(text)
    assert settings.problems == {}
    for key, value in expected.items():
        assert getattr(settings, key) == value, key


def test_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "config.php"
    path.write_text(DEFAULT_INSTALL, encoding="utf-8")
    settings = read_moodle_config(str(path))
    assert settings.source == str(path)
    assert settings.name == "moodle"
    assert settings.label("port") == f"{path}: $CFG->dboptions['dbport']"


def test_utf8_bom_and_non_ascii_password(tmp_path: Path) -> None:
    path = tmp_path / "config.php"
    path.write_bytes("\ufeff<?php\n$CFG->dbtype='mysqli';\n$CFG->dbpass='pässwörd';\n".encode())
    assert read_moodle_config(str(path)).password == "pässwörd"


# --------------------------------------------------------------------------- literal forms


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("'plain'", "plain"),
        (r"'it\'s'", "it's"),
        (r"'back\\slash'", "back\\slash"),
        (r"'no\nescape'", "no\\nescape"),
        (r'"new\nline"', "new\nline"),
        (r'"tab\tstop"', "tab\tstop"),
        (r'"cr\rlf"', "cr\rlf"),
        (r'"quote\"d"', 'quote"d'),
        (r'"dollar\$sign"', "dollar$sign"),
        (r'"back\\slash"', "back\\slash"),
        (r'"unknown\qescape"', "unknown\\qescape"),
        (r'"hex\x41 oct\101"', "hexA octA"),
        (r'"unicode\u{e9}"', "unicodeé"),
        (r'"utf8 bytes \xc3\xa9"', "utf8 bytes é"),
        ('"single \' inside"', "single ' inside"),
        ("'double \" inside'", 'double " inside'),
        ('"price 5$"', "price 5$"),
        ('"50$ or $5"', "50$ or $5"),
        ("'con' . 'cat' . 3", "concat3"),
        ("('paren')", "paren"),
        ("12345", "12345"),
        ("0x1F", "31"),
        ("'#not a comment'", "#not a comment"),
        ("'// nor this'", "// nor this"),
        ("'/* nor this */'", "/* nor this */"),
        ("'?> not a tag'", "?> not a tag"),
        ("<<<'EOT'\n  raw $x \\n\n  EOT", "raw $x \\n"),
        ("<<<EOT\nline1\\tx\nline2\nEOT", "line1\tx\nline2"),
        ("'ünïcödé'", "ünïcödé"),
    ],
)
def test_password_literals(literal: str, expected: str) -> None:
    settings = parse(php(f"$CFG->dbpass = {literal};"))
    assert settings.problems == {}
    assert settings.password == expected


@pytest.mark.parametrize(
    ("options", "port", "socket"),
    [
        ("array('dbport' => '', 'dbsocket' => '')", None, None),
        ("array('dbport' => 3307)", 3307, None),
        ("array('dbport' => '3307')", 3307, None),
        ("array('dbport' => ' 3308 ')", 3308, None),
        ("array('dbport' => 0)", None, None),
        ("array('dbport' => '0')", None, None),
        ("array('dbport' => null, 'dbsocket' => null)", None, None),
        ("array('dbport' => false, 'dbsocket' => false)", None, None),
        ("array('dbsocket' => true)", None, None),
        ("array('dbsocket' => TRUE)", None, None),
        ("array('dbsocket' => '/var/run/mysqld/mysqld.sock')", None, "/var/run/mysqld/mysqld.sock"),
        ("array('dbpersist' => 1, 'dbcollation' => 'utf8mb4_bin')", None, None),
        ("array()", None, None),
        ("[]", None, None),
        ("['dbport' => 3310, 'dbport' => 3311]", 3311, None),
        ("['dbport' => 3310,]", 3310, None),
        ("ARRAY('dbport' => 3312)", 3312, None),
        ("array(0 => 'x', 'dbport' => 3313, 'y')", 3313, None),
        ("array('dbport' => 70000)", 70000, None),  # range is config.py's to check
    ],
)
def test_dboptions(options: str, port: Optional[int], socket: Optional[str]) -> None:
    settings = parse(php(f"$CFG->dboptions = {options};"))
    assert settings.problems == {}
    assert (settings.port, settings.socket) == (port, socket)


def test_dboptions_element_assignment() -> None:
    settings = parse(
        php(
            "$CFG->dboptions = array('dbport' => 3307, 'dbsocket' => '/a.sock');",
            "$CFG->dboptions['dbport'] = '3309';",
            "$CFG->dboptions['dbcollation'] = 'utf8mb4_bin';",
        )
    )
    assert (settings.port, settings.socket) == (3309, "/a.sock")


def test_reassigning_dboptions_drops_earlier_keys() -> None:
    settings = parse(
        php("$CFG->dboptions = ['dbport' => 3307];", "$CFG->dboptions = ['dbpersist' => 0];")
    )
    assert settings.port is None


def test_last_assignment_wins_and_reset() -> None:
    settings = parse(
        "<?php\n$CFG->dbname = 'before-reset';\n$CFG->dbuser = 'gone';\n"
        "unset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n"
        "$CFG->dbtype = 'mysqli';\n$CFG->dbname = 'first';\n$CFG->dbname = 'second';\n"
    )
    assert settings.name == "second"
    assert settings.user is None


def test_statements_not_understood_are_ignored() -> None:
    settings = parse(
        php(
            "define('CLI_SCRIPT', true);",
            "$CFG->dataroot = __DIR__ . '/../data';",
            "$CFG->theme = getenv('THEME');",
            "$CFG->dboptions_extra = function () { return 1; };",
            "@error_reporting(E_ALL | E_STRICT);",
            "$other = ['dbhost' => 'elsewhere'];",
            "$CFG->wwwroot = \"http://{$_SERVER['HTTP_HOST']}/moodle\";",
            "if (!empty($_SERVER['HTTPS'])) { $CFG->sslproxy = true; }",
            "$CFG->dbname = 'kept';",
        )
    )
    assert settings.name == "kept"
    assert settings.problems == {}


def test_php_mode_switches() -> None:
    text = (
        "<html>not php $CFG->dbname = 'html';</html>\n"
        "<?php $CFG->dbtype = 'mysqli'; // comment ends at the tag ?>"
        "text $CFG->dbname = 'ignored';\n"
        "<?php $CFG->dbname = 'inside' ?>\n"
    )
    assert parse(text).name == "inside"


def test_tokenizer_records_lines() -> None:
    tokens = tokenize("<?php\n\n$CFG->dbhost\n  = 'x';", SOURCE)
    assert [(t.kind, t.line) for t in tokens][:2] == [("var", 3), ("op", 3)]
    assert tokens[-2].value == "x" and tokens[-2].line == 4


def test_absent_keys_are_none() -> None:
    settings = parse("<?php $CFG->dbtype = 'mysqli';")
    assert settings.host is None and settings.port is None
    assert not settings.has("host")
    assert settings.require("host") is None


# --------------------------------------------------------------------------- values PHP computes


@pytest.mark.parametrize(
    ("statements", "key", "fragments"),
    [
        (["$CFG->dbpass = getenv('DBPASS');"], "password", ["$CFG->dbpass", "not a literal"]),
        ([f'$CFG->dbpass = "{SECRET}$suffix";'], "password", ["$CFG->dbpass", "PHP variable"]),
        ([f"$CFG->dbpass = \"{SECRET}{{$a['x']}}\";"], "password", ["PHP variable"]),
        (['$CFG->dbpass = "${x}";'], "password", ["PHP variable"]),
        (["$CFG->dbpass = `cat /etc/secret`;"], "password", ["shell command"]),
        (["$CFG->dbhost = DB_HOST;"], "host", ["$CFG->dbhost", "ALT42_DB_HOST"]),
        (["$CFG->dbhost = $_ENV['H'] ?? 'x';"], "host", ["$CFG->dbhost"]),
        (["$CFG->dbname = true;"], "name", ["$CFG->dbname", "a boolean, not a string"]),
        (["$CFG->dbuser = ['a'];"], "user", ["$CFG->dbuser", "an array"]),
        (["$CFG->prefix = null;"], "prefix", ["$CFG->prefix", "null"]),
        (["if ($x) { $CFG->dbhost = 'a'; }"], "host", ["inside a block"]),
        (["if ($x) $CFG->dbhost = 'a';"], "host", ["cannot be read as text"]),
        (["if ($x): $CFG->dbhost = 'a'; endif;"], "host", ["cannot be read as text"]),
        (["$CFG->dbname = 'a';", "$CFG->dbname .= '_b';"], "name", ["cannot be read as text"]),
        (["$a = $CFG->dbuser = 'x';"], "user", ["cannot be read as text"]),
        (["$CFG->dbhost = $CFG->dbname = 'x';"], "name", ["cannot be read as text"]),
        (["function f() { global $CFG; $CFG->dbpass = 'x'; }"], "password", ["inside a block"]),
        (["$CFG->dboptions = $opts;"], "port", ["$CFG->dboptions['dbport']"]),
        (["$CFG->dboptions = $opts;"], "socket", ["$CFG->dboptions['dbsocket']"]),
        (["$CFG->dboptions = 'x';"], "port", ["is not an array"]),
        (["$CFG->dboptions = ['dbport' => getenv('P')];"], "port", ["not a literal"]),
        (["$CFG->dboptions = ['dbport' => 'abc'];"], "port", ["'abc', not a port number"]),
        (["$CFG->dboptions = ['dbport' => true];"], "port", ["a boolean, not a port"]),
        (["$CFG->dboptions = ['dbsocket' => 5];"], "socket", ["a number, not a socket path"]),
        (["$CFG->dboptions = [KEY => 1];"], "port", ["keys that are not literal"]),
        (["$CFG->dboptions = [...$defaults];"], "socket", ["keys that are not literal"]),
        (["$CFG->dboptions[$k] = 1;"], "port", ["key that is not literal"]),
        (["if ($x) { $CFG->dboptions['dbport'] = 1; }"], "port", ["inside a block"]),
    ],
)
def test_values_php_would_compute_are_problems(
    statements: list[str], key: str, fragments: list[str]
) -> None:
    settings = parse(php(*statements))
    assert settings.has(key)
    with pytest.raises(ConfigError) as excinfo:
        settings.require(key)
    message = str(excinfo.value)
    assert excinfo.value.exit_code == EXIT_CONFIG
    assert message.startswith(SOURCE + ": ")
    assert "line " in message
    for fragment in fragments:
        assert fragment in message
    assert SECRET not in message
    assert SECRET not in repr(settings)


def test_problem_only_concerns_its_key() -> None:
    settings = parse(php("$CFG->dbpass = getenv('P');", "$CFG->dbhost = 'db';"))
    assert settings.require("host") == "db"
    assert set(settings.problems) == {"password"}


def test_later_plain_assignment_clears_a_problem() -> None:
    settings = parse(php("if ($x) { $CFG->dbhost = 'a'; }", "$CFG->dbhost = 'b';"))
    assert settings.problems == {}
    assert settings.host == "b"


# --------------------------------------------------------------------------- unusable files


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "<?php $CFG->dbtype = 'pgsql';",
            ["$CFG->dbtype is 'pgsql'", "mysqli, mariadb and auroramysql"],
        ),
        ("<?php $CFG->dbtype = 'sqlsrv'; $CFG->dbname = 'x';", ["'sqlsrv'"]),
        ("no php here, $CFG->dbname = 'x';", ["no <?php tag"]),
        ("", ["no <?php tag"]),
        ("<?php\n// only comments\n$CFG->wwwroot = 'http://x';\n", ["sets none of"]),
        ("<?php }", ["closes a block that was never opened"]),
    ],
)
def test_unusable_files(text: str, fragments: list[str]) -> None:
    message = config_error(text)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (DEFAULT_INSTALL[: DEFAULT_INSTALL.index(SECRET) + 5], "'...' string starting on line 12"),
        ("<?php $CFG->dbtype = 'mysqli';\n$CFG->dbpass = \"" + SECRET, '"..." string'),
        ("<?php $CFG->dbtype = 'mysqli';\n$CFG->dbname = ", "middle of a statement"),
        ("<?php $CFG->dbtype = 'mysqli';\n$CFG->dbname = 'x'", "middle of a statement"),
        ("<?php $CFG->dbtype = 'mysqli'; $CFG->dboptions = array('dbport' => 1,", "middle"),
        ("<?php $CFG->dbtype = 'mysqli'; $CFG->dboptions = ['dbport' => 1", "middle"),
        ("<?php $CFG->dbtype = 'mysqli'; if ($x) { $CFG->dbname = 'x';", "middle"),
        ("<?php $CFG->dbtype = 'mysqli'; require_once(__DIR__", "middle"),
        ("<?php $CFG->dbtype = 'mysqli'; /* unterminated", "/* comment"),
        ("<?php $CFG->dbtype = 'mysqli'; $CFG->dbpass = 'escaped end\\';", "'...' string"),
        ("<?php $CFG->dbtype = 'mysqli'; $CFG->dbpass = <<<EOT\nabc\n", "heredoc"),
        ("<?php $CFG->dbtype = 'mysqli'; $x = `ls", "backtick"),
    ],
)
def test_truncated_files(text: str, fragment: str) -> None:
    message = config_error(text)
    assert fragment in message
    assert "truncated" in message or "not valid PHP" in message
    assert SECRET not in message
    assert SECRET[:5] not in message


# --------------------------------------------------------------------------- reading the file


def read_error(path: Path) -> str:
    with pytest.raises(ConfigError) as excinfo:
        read_moodle_config(str(path), "[database] moodle_config in /etc/alt42/heartbeat.ini")
    assert excinfo.value.exit_code == EXIT_CONFIG
    message = str(excinfo.value)
    assert message.startswith(f"{path}: "), message
    assert SECRET not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    message = read_error(tmp_path / "nope" / "config.php")
    assert "no such Moodle config.php" in message
    assert "[database] moodle_config in /etc/alt42/heartbeat.ini" in message


def test_directory(tmp_path: Path) -> None:
    assert "is a directory" in read_error(tmp_path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "config.php"
    path.write_bytes(b"<?php\x00\x01\x02" + SECRET.encode())
    assert "binary" in read_error(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.php"
    path.write_bytes(b"<?php\n$CFG->dbtype = 'mysqli';\n$CFG->dbpass = 'caf\xe9';\n")
    message = read_error(path)
    assert "not UTF-8" in message and "line 3" in message


def test_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "config.php"
    path.write_text("<?php\n" + "//" + "x" * MAX_CONFIG_PHP_BYTES + "\n", encoding="utf-8")
    assert "larger than" in read_error(path)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.php"
    path.write_text(DEFAULT_INSTALL, encoding="utf-8")
    path.chmod(0o000)
    if os.geteuid() == 0:  # root reads anything: simulate what www-data would see
        real_open = builtins.open

        def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", deny)
    message = read_error(path)
    assert "permission denied" in message and "chmod 0640" in message


def test_password_not_in_repr() -> None:
    settings = parse(DEFAULT_INSTALL)
    assert settings.password == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


# --------------------------------------------------------------------------- properties


def php_single_quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_double_quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped + '"'


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from([php_single_quoted, php_double_quoted]))
def test_any_string_round_trips(text: str, quote: Any) -> None:
    settings_ = parse(php(f"$CFG->dbpass = {quote(text)};"))
    assert settings_.problems == {}
    assert settings_.password == text


_PIECES = st.sampled_from(
    [
        "$CFG", "->", "dbpass", "dboptions", "dbport", "=", "'x'", '"a$b"', '"\\x', "[", "]",
        "(", ")", "{", "}", ";", ",", "=>", "array", "true", "<<<EOT\n", "\nEOT", "?>",
        "<?php ", "//", "#", "/*", "*/", "'", '"', "`", "3307", "-", ".", "if", "\n", " ",
        "{$", "${", "\\", "0x", "1e", "089", "unset", "$x",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=40))
def test_arbitrary_php_never_crashes(parts: list[str]) -> None:
    """Whatever the file holds, the outcome is settings or one ConfigError line."""
    try:
        parse("<?php " + "".join(parts))
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(SHORT_SYNTAX)), st.integers(0, len(SHORT_SYNTAX)), st.text(max_size=4))
def test_damaged_files_never_crash(cut: int, resume: int, insert: str) -> None:
    with contextlib.suppress(ConfigError):
        parse(SHORT_SYNTAX[:cut] + insert + SHORT_SYNTAX[resume:])


# --------------------------------------------------------------------------- files in the wild

# Shaped like Moodle's config-dist.php once renamed and edited: a long comment banner,
# a comment on every line of the database block, commented-out settings and defines
# everywhere (also ones that look like database settings), and the bootstrap at the end.
CONFIG_DIST = (
    "<?php\n"
    + "/////////////////////////////////////////////////////////////////\n" * 3
    + "// Moodle configuration file                                   //\n"
    + "unset($CFG);  // Ignore this line\n"
    + "global $CFG;  // This is necessary here for PHPUnit execution\n"
    + "$CFG = new stdClass();\n"
    + "//=========================================================================\n"
    + "// 1. DATABASE SETUP\n"
    + "$CFG->dbtype    = 'mariadb';      // 'pgsql', 'mariadb', 'mysqli', 'sqlsrv' or 'oci'\n"
    + "$CFG->dblibrary = 'native';     // 'native' only at the moment\n"
    + "$CFG->dbhost    = 'db.example.org';  // eg 'localhost' or 'db.isp.com' or IP\n"
    + "$CFG->dbname    = 'moodle_dist';     // database name, eg moodle\n"
    + "$CFG->dbuser    = 'dist_user';   // your database username\n"
    + f"$CFG->dbpass    = '{SECRET}';   // your database password\n"
    + "$CFG->prefix    = 'dst_';       // prefix to use for all table names\n"
    + "$CFG->dboptions = array(\n"
    + "    'dbpersist' => false,       // should persistent database connections be\n"
    + "                                //  used? 'true' can improve performance\n"
    + "    'dbsocket'  => false,       // should connection via UNIX socket be used?\n"
    + "                                //  (please note mysql is always using socket\n"
    + "                                //  if dbhost is 'localhost' - if you need\n"
    + "                                //  local port connection use '127.0.0.1')\n"
    + "    'dbport'    => '3310',      // the TCP port number to use when connecting\n"
    + "    'dbhandlesoptions' => false,// On PostgreSQL poolers like pgbouncer don't\n"
    + "    'dbcollation' => 'utf8mb4_unicode_ci', // MySQL has partial and full UTF-8\n"
    + "    // 'fetchbuffersize' => 100000, // On PostgreSQL, this option sets a limit\n"
    + ");\n"
    + "$CFG->wwwroot   = 'http://example.com/moodle';\n"
    + "$CFG->dataroot  = '/home/example/moodledata';\n"
    + "$CFG->directorypermissions = 02777;\n"
    + "$CFG->admin = 'admin';\n"
    + "//     $CFG->dbhost = 'commented.example.org';\n"
    + "//   define('MDL_PERF'  , true);\n"
    + "// RewriteRule (^.*/theme/yui_combo\\.php)(/.*) $1?file=$2\n"
    + "//      $CFG->session_file_save_path = $CFG->dataroot.'/sessions';\n"
    + "//     $CFG->xsendfilealiases = array(\n"
    + "//         '/dataroot/' => $CFG->dataroot,\n"
    + "//     );\n"
    + "//   $CFG->behat_parallel_run = array (array ('dbtype' => 'mysqli', 'dbhost' => 'x'));\n"
    + "//      $CFG->alternative_file_system_class = '\\\\local_myfilestorage\\\\file_system';\n"
    + "require_once(__DIR__ . '/lib/setup.php'); // Do not edit\n"
    + "// There is no php closing tag in this file,\n"
    + "// it is intentional because it prevents trailing whitespace problems!\n"
)

# moodle-docker's config template: the database settings come from the environment.
DOCKER_GETENV = """<?php  // Moodle configuration file
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype    = getenv('MOODLE_DOCKER_DBTYPE');
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'db';
$CFG->dbname    = getenv('MOODLE_DOCKER_DBNAME');
$CFG->dbuser    = getenv('MOODLE_DOCKER_DBUSER');
$CFG->dbpass    = getenv('MOODLE_DOCKER_DBPASS');
$CFG->prefix    = 'm_';
$CFG->dboptions = ['dbcollation' => getenv('MOODLE_DOCKER_DBCOLLATION')];
if (getenv('MOODLE_DOCKER_DBTYPE') === 'sqlsrv') {
    $CFG->dboptions['extrainfo'] = [
        'encrypt' => false,
    ];
}
$host = 'localhost';
if (!empty(getenv('MOODLE_DOCKER_WEB_HOST'))) {
    $host = getenv('MOODLE_DOCKER_WEB_HOST');
}
$CFG->wwwroot   = "http://{$host}";
require_once(__DIR__ . '/lib/setup.php');
"""

# Bitnami's image: int port, an if/else on $_SERVER for the web root only.
BITNAMI = """<?php  // Moodle configuration file
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype    = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'mariadb';
$CFG->dbname    = 'bitnami_moodle';
$CFG->dbuser    = 'bn_moodle';
$CFG->dbpass    = '';
$CFG->prefix    = 'mdl_';
$CFG->dboptions = array (
  'dbpersist' => 0,
  'dbport' => 3306,
  'dbsocket' => '',
  'dbcollation' => 'utf8mb4_unicode_ci',
);
if (empty($_SERVER['HTTP_HOST'])) {
  $_SERVER['HTTP_HOST'] = '127.0.0.1:8080';
}
if (isset($_SERVER['HTTPS']) && $_SERVER['HTTPS'] == 'on') {
  $CFG->wwwroot   = 'https://' . $_SERVER['HTTP_HOST'];
} else {
  $CFG->wwwroot   = 'http://' . $_SERVER['HTTP_HOST'];
}
$CFG->dataroot  = '/bitnami/moodledata';
require_once(__DIR__ . '/lib/setup.php');
"""


def test_config_dist_with_all_its_comments() -> None:
    settings = parse(CONFIG_DIST)
    assert settings.problems == {}
    assert (settings.dbtype, settings.host, settings.name, settings.user) == (
        "mariadb",
        "db.example.org",
        "moodle_dist",
        "dist_user",
    )
    assert (settings.password, settings.prefix, settings.port, settings.socket) == (
        SECRET,
        "dst_",
        3310,
        None,
    )


def test_docker_getenv_values_are_problems_only_where_computed() -> None:
    settings = parse(DOCKER_GETENV)
    assert set(settings.problems) == {"dbtype", "name", "user", "password"}
    assert (settings.host, settings.prefix, settings.port, settings.socket) == (
        "db",
        "m_",
        None,
        None,
    )
    with pytest.raises(ConfigError) as excinfo:
        settings.require("dbtype")
    message = str(excinfo.value)
    assert "line 5: $CFG->dbtype is not a literal value" in message
    assert "[database] type or ALT42_DB_TYPE" in message


def test_bitnami() -> None:
    settings = parse(BITNAMI)
    assert settings.problems == {}
    assert (settings.host, settings.name, settings.password, settings.port) == (
        "mariadb",
        "bitnami_moodle",
        "",
        3306,
    )


@pytest.mark.parametrize(
    "statements",
    [
        # the second assignment inside the alternative syntax is just as conditional
        ["if ($x):", "$CFG->dbhost = 'a';", "$CFG->dbhost = 'b';", "endif;"],
        ["if ($x):", "$y = 1;", "elseif ($z):", "$CFG->dbhost = 'b';", "else:", "endif;"],
        ["if ($x):", "$y = 1;", "else:", "$CFG->dbhost = 'b';", "endif;"],
        ["if ($x) {", "$CFG->dbhost = 'a';", "} else {", "$CFG->dbhost = 'b';", "}"],
        ["if ($x) { $y = 1; } elseif ($z) { $CFG->dbhost = 'b'; }"],
        ["if ($x) $y = 1; else $CFG->dbhost = 'b';"],
        ["if ($x) { $y = 1; } else if ($z) $CFG->dbhost = 'b';"],
        ["foreach ($hosts as $h):", "$CFG->dbhost = $h;", "endforeach;"],
        ["while ($x):", "$CFG->dbhost = 'w';", "endwhile;"],
        ["switch ($env):", "case 'prod':", "$CFG->dbhost = 'p';", "break;", "endswitch;"],
        ["switch ($env) { case 'prod': $CFG->dbhost = 'p'; break; }"],
        ["$CFG->dbhost = 'a';", "if ($x) { $CFG->dbhost = 'b'; }"],
        ["$CFG->dbhost = 'a';", "if ($x):", "$CFG->{'dbhost'} = 'b';", "endif;"],
        ["$CFG->dbhost = 'a';", "foreach ($settings as $key => $value) { $CFG->$key = $value; }"],
        ["$CFG->dbhost = 'a';", "$key = 'dbhost';", "$CFG->$key = 'b';"],
    ],
)
def test_assignments_under_a_condition_are_problems(statements: list[str]) -> None:
    settings = parse(php(*statements))
    with pytest.raises(ConfigError) as excinfo:
        settings.require("host")
    assert "cannot be read as text" in str(excinfo.value)
    assert "[database] host or ALT42_DB_HOST" in str(excinfo.value)


def test_statements_after_a_closed_block_are_certain_again() -> None:
    settings = parse(
        php(
            "if ($x): $CFG->dbhost = 'a'; endif;",
            "while ($y) { $z++; }",
            "if ($w) $q = 1;",
            "$CFG->dbhost = 'after';",
            "$CFG->dbname = 'n';",
        )
    )
    assert settings.problems == {}
    assert (settings.host, settings.name) == ("after", "n")


def test_an_include_may_set_every_key() -> None:
    settings = parse(
        php(
            "$CFG->dbhost = 'before';",
            "require_once('/etc/moodle/db-local.php');",
            "$CFG->dbname = 'after';",
        )
    )
    assert settings.name == "after"
    for key in ("host", "user", "password", "prefix", "port", "socket"):
        with pytest.raises(ConfigError) as excinfo:
            settings.require(key)
        message = str(excinfo.value)
        assert "line 5: $CFG->" in message, message
        assert "may be set in the file included here" in message
        assert "includes are not followed" in message


@pytest.mark.parametrize(
    "include",
    [
        "include '/etc/moodle/local.php';",
        "include_once __DIR__ . '/local.php';",
        "require(dirname(__FILE__) . '/config-local.php');",
        "if (file_exists('/etc/moodle/local.php')) { require '/etc/moodle/local.php'; }",
        "if (file_exists($f)) require $f;",
    ],
)
def test_every_include_form_is_named(include: str) -> None:
    settings = parse(php("$CFG->dbname = 'n';", include))
    with pytest.raises(ConfigError) as excinfo:
        settings.require("name")
    assert "may be set in the file included here" in str(excinfo.value)


def test_an_include_alone_names_the_include() -> None:
    settings = parse("<?php require('/etc/moodle/db.php');")
    with pytest.raises(ConfigError) as excinfo:
        settings.require("name")
    assert "line 1: $CFG->dbname may be set in the file included here" in str(excinfo.value)


def test_lib_setup_ends_the_configuration() -> None:
    settings = parse(
        php(
            "$CFG->dbhost = 'before';",
            "require_once(__DIR__ . '/lib/setup.php');",
            "$CFG->dbhost = 'after setup: the connection is already made';",
            "require_once($CFG->dirroot . '/local/extra.php');",
        )
    )
    assert settings.problems == {}
    assert settings.host == "before"


def test_a_conditional_setup_does_not_end_it() -> None:
    settings = parse(
        php("if ($x) { require_once(__DIR__ . '/lib/setup.php'); }", "$CFG->dbhost = 'h';")
    )
    assert settings.host == "h"


@pytest.mark.parametrize(
    ("statements", "host"),
    [
        (["define('DB_HOST', 'db.example.org');", "$CFG->dbhost = DB_HOST;"], "db.example.org"),
        (
            ['define("DB_HOST", "db" . ".example.org");', "$CFG->dbhost = DB_HOST;"],
            "db.example.org",
        ),
        (["const DB_HOST = 'c.example.org';", "$CFG->dbhost = DB_HOST;"], "c.example.org"),
        (
            ["define('DB_SUFFIX', '.example.org');", "$CFG->dbhost = 'db' . DB_SUFFIX;"],
            "db.example.org",
        ),
    ],
)
def test_defined_constants(statements: list[str], host: str) -> None:
    settings = parse(php(*statements))
    assert settings.problems == {}
    assert settings.host == host


@pytest.mark.parametrize(
    ("statements", "fragment"),
    [
        (
            ["$CFG->dbhost = DB_HOST;"],
            "is the constant DB_HOST, which config.php does not define()",
        ),
        (["$CFG->dbhost = DB_HOST;", "define('DB_HOST', 'late');"], "does not define()"),
        (
            ["define('DB_HOST', getenv('H'));", "$CFG->dbhost = DB_HOST;"],
            "with a value PHP computes",
        ),
        (["if ($x) { define('DB_HOST', 'a'); }", "$CFG->dbhost = DB_HOST;"], "does not define()"),
    ],
)
def test_constants_that_cannot_be_read(statements: list[str], fragment: str) -> None:
    settings = parse(php(*statements))
    with pytest.raises(ConfigError) as excinfo:
        settings.require("host")
    assert fragment in str(excinfo.value)


def test_each_field_names_the_ini_key_and_variable_config_py_reads() -> None:
    """A problem's fix names `[database] <key> or ALT42_DB_<KEY>`: config.py's own."""
    for field in FIELDS:
        assert ENV_VARS[ini_key(field)] == f"ALT42_DB_{ini_key(field).upper()}", field
