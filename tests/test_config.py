"""The configuration: INI file, environment overrides, config.php, precedence, and one
clear ConfigError (exit 2) naming file and key for every mistake, never the password."""

from __future__ import annotations

import builtins
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartbeat import config as config_module
from heartbeat.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    Config,
    DatabaseConfig,
    HeartbeatConfig,
    MonitoringConfig,
    PacingConfig,
    ReportConfig,
    RetentionConfig,
    describe_keys,
    load_config,
    release_config_path,
    resolve_config_path,
)
from heartbeat.errors import EXIT_CONFIG, ConfigError
from tests.conftest import cli_env

SECRET = "Zebra-7q!Sup3rS3cret"
#: The database name and user (no default exists), for tests about other keys.
SITE_ENV = {"ALT42_DB_NAME": "moodle", "ALT42_DB_USER": "moodle"}

MOODLE_CONFIG = """<?php  // Moodle configuration file
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype    = 'mysqli';
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'php-host';
$CFG->dbname    = 'php_name';
$CFG->dbuser    = 'php_user';
$CFG->dbpass    = 'php-pass';
$CFG->prefix    = 'php_';
$CFG->dboptions = array (
  'dbpersist' => 0,
  'dbport' => 3307,
  'dbsocket' => '/php/mysqld.sock',
  'dbcollation' => 'utf8mb4_unicode_ci',
);
$CFG->wwwroot   = 'http://localhost/moodle';
require_once(__DIR__ . '/lib/setup.php');
"""


def write_ini(tmp_path: Path, text: str, mode: int = 0o640, name: str = "heartbeat.ini") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return str(path)


def write_php(tmp_path: Path, text: str = MOODLE_CONFIG, name: str = "config.php") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load(tmp_path: Path, text: str, environ: Optional[dict[str, str]] = None) -> Config:
    return load_config(write_ini(tmp_path, text), SITE_ENV if environ is None else environ)


def load_error(path: str, environ: Optional[dict[str, str]] = None) -> str:
    """Load expecting a ConfigError; return its message after the common checks."""
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, SITE_ENV if environ is None else environ)
    assert excinfo.value.exit_code == EXIT_CONFIG
    message = str(excinfo.value)
    assert "\n" not in message
    assert SECRET not in message
    assert SECRET not in repr(excinfo.value)
    return message


# --------------------------------------------------------------------------- defaults and paths


def test_empty_file_gives_moodle_defaults_but_no_name_or_user(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.database == DatabaseConfig(name="moodle", user="moodle")
    assert config.heartbeat == dataclasses.replace(
        HeartbeatConfig(), lock_file=config.heartbeat.lock_file
    )
    assert (config.monitoring, config.pacing, config.retention, config.report) == (
        MonitoringConfig(),
        PacingConfig(),
        RetentionConfig(),
        ReportConfig(),
    )
    assert re.fullmatch(
        r"/run/lock/alt42-heartbeat-moodle-[0-9a-f]{12}\.lock", config.heartbeat.lock_file
    )
    assert (config.database.host, config.database.port, config.database.prefix) == (
        "localhost",
        3306,
        "mdl_",
    )
    assert config.database.password == ""
    assert config.sources["database.host"] == "default"


@pytest.mark.parametrize("key", ["name", "user"])
@pytest.mark.parametrize(
    "text",
    ["", "[database]\nhost = db\n", "[heartbeat]\nbatch_size = 10\n"],
    ids=["empty", "db", "hb"],
)
def test_no_database_name_or_user_anywhere_is_an_error(tmp_path: Path, key: str, text: str) -> None:
    path = write_ini(tmp_path, text)
    other = {"name": "user", "user": "name"}[key]
    message = load_error(path, {f"ALT42_DB_{other.upper()}": "x"})
    assert message.startswith(f"{path}: [database] {key} is not set")
    assert f"environment variable ALT42_DB_{key.upper()}" in message
    assert f"[database] {key} of this file" in message
    assert "[database] moodle_config is not set" in message
    if "[database]" not in text:
        assert "the file has no [database] section" in message


@pytest.mark.parametrize("key", ["name", "user"])
def test_config_php_without_dbname_is_an_error(tmp_path: Path, key: str) -> None:
    php_key = {"name": "dbname", "user": "dbuser"}[key]
    php = write_php(tmp_path, MOODLE_CONFIG.replace(f"$CFG->{php_key} ", "// no "))
    path = write_ini(tmp_path, f"[database]\nmoodle_config = {php}\n")
    message = load_error(path, {})
    assert message.startswith(f"{path}: [database] {key} is not set")
    assert f"{php}: $CFG->{php_key} (not set there)" in message


#: Fields whose default the loader derives instead of taking a key's as it is.
DERIVED = {("database", "socket"), ("database", "name"), ("database", "user"),
           ("heartbeat", "max_run_minutes"), ("retention", "detail_days")}  # fmt: skip


@pytest.mark.parametrize(
    ("section", "kind"),
    [("database", DatabaseConfig), ("heartbeat", HeartbeatConfig),
     ("monitoring", MonitoringConfig), ("pacing", PacingConfig),
     ("retention", RetentionConfig), ("report", ReportConfig)],
)  # fmt: skip
def test_a_sections_defaults_are_its_keys(section: str, kind: type) -> None:
    """One owner: a value's default is its key's in KEYS (0.4.0 had its own copy in each
    dataclass, and max_run_minutes 20 there against 0 in KEYS)."""
    keys = {key.name: key for key in config_module.KEYS if key.section == section}
    for item in dataclasses.fields(kind):
        if item.name in keys and (section, item.name) not in DERIVED:
            assert item.default == keys[item.name].default, item.name
    assert HeartbeatConfig().max_run_minutes == config_module.default_max_run(
        HeartbeatConfig().interval_minutes
    )


def test_every_key(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text("{}", encoding="utf-8")
    config = load(
        tmp_path,
        "# comment\n; another\n"
        "[database]\nhost = db.example.org\nport = 3310\nsocket = /run/db.sock\n"
        "name = lms\nuser = heartbeat\npassword = pw\nprefix = lms_\n\n"
        "[heartbeat]\ninterval_minutes = 15\nwindow_hours = 48\nopen_session_hours = 12\n"
        f"rules = {rules}\nbatch_size = 500\nlock_file = /tmp/hb.lock\n"
        "max_run_minutes = 12\nquery_timeout_seconds = 60\n"
        "[monitoring]\nping_url = http://127.0.0.1:9/ping/abc\nping_timeout_seconds = 3\n"
        "ping_retries = 1\nmetrics_file = /var/lib/node/alt42.prom\ngrace_minutes = 5\n"
        "[retention]\ndays = 30\ndetail_days = 20\nbatch_size = 1000\nmax_size = 2G\n",
        {},
    )
    assert config.database == DatabaseConfig(
        host="db.example.org",
        port=3310,
        socket=None,  # a host other than localhost means TCP, as in PHP's mysqli
        name="lms",
        user="heartbeat",
        password="pw",
        prefix="lms_",
    )
    assert config.heartbeat == HeartbeatConfig(
        interval_minutes=15,
        window_hours=48,
        open_session_hours=12,
        rules=str(rules),
        batch_size=500,
        lock_file="/tmp/hb.lock",
        max_run_minutes=12,
        query_timeout_seconds=60,
    )
    assert config.monitoring == MonitoringConfig(
        ping_url="http://127.0.0.1:9/ping/abc",
        ping_timeout_seconds=3,
        ping_retries=1,
        metrics_file="/var/lib/node/alt42.prom",
        grace_minutes=5,
    )
    assert config.retention == RetentionConfig(
        days=30, detail_days=20, batch_size=1000, max_size=2 * 1024**3
    )


def test_max_run_defaults_to_two_thirds_of_the_interval(tmp_path: Path) -> None:
    config = load(tmp_path, "[heartbeat]\ninterval_minutes = 15\n")
    assert config.heartbeat.max_run_minutes == 10
    config = load(tmp_path, "[heartbeat]\ninterval_minutes = 1\n")
    assert config.heartbeat.max_run_minutes == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[monitoring]\nping_url = ftp://x/y\n", "[monitoring] ping_url is not an http(s) URL"),
        ("[monitoring]\nmetrics_file = alt42.prom\n", "[monitoring] metrics_file"),
        ("[monitoring]\nmetrics_file = /tmp/alt42.txt\n", "ending in .prom"),
        ("[monitoring]\nping_retries = 9\n", "[monitoring] ping_retries = 9 is out of range"),
        ("[retention]\ndays = 0\n", "[retention] days = 0 is out of range"),
        ("[retention]\nbatchsize = 10\n", "did you mean batch_size"),
    ],
)
def test_operations_sections_are_validated(tmp_path: Path, text: str, fragment: str) -> None:
    path = write_ini(tmp_path, text)
    assert fragment in load_error(path)


def test_keys_are_case_insensitive_and_values_are_raw(tmp_path: Path) -> None:
    config = load(tmp_path, "[database]\nPassword = 100%${x};#x\nUSER = u\nname = n\n", {})
    assert config.database.password == "100%${x};#x"  # no interpolation, no inline comments
    assert config.database.user == "u"


def test_path_resolution() -> None:
    assert resolve_config_path("/x.ini", {CONFIG_ENV: "/y.ini"}) == "/x.ini"
    assert resolve_config_path(None, {CONFIG_ENV: "/y.ini"}) == "/y.ini"
    assert resolve_config_path(None, {CONFIG_ENV: ""}) == DEFAULT_CONFIG_PATH
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH
    with pytest.raises(ConfigError):
        resolve_config_path("", {})


def test_a_release_reads_its_own_ini_by_default(tmp_path: Path) -> None:
    """The role's layout: <release>/venv and <release>/heartbeat.ini. Without --config
    or the variable, the release's own INI (code and configuration switch together);
    without one, the default; outside a venv there is no release INI."""
    release = tmp_path / "releases" / "0.5.0-abcdef12-py3.11"
    (release / "venv").mkdir(parents=True)
    own = release_config_path(str(release / "venv"), "/usr")
    assert own == str(release / "heartbeat.ini")
    assert resolve_config_path(None, {}, own) == DEFAULT_CONFIG_PATH  # not written yet
    (release / "heartbeat.ini").write_text("[database]\n")
    assert resolve_config_path(None, {}, own) == own
    assert resolve_config_path(None, {CONFIG_ENV: "/y.ini"}, own) == "/y.ini"
    assert resolve_config_path("/x.ini", {}, own) == "/x.ini"
    assert release_config_path("/usr", "/usr") == ""


def test_the_cli_run_from_a_release_venv_reads_the_release_ini(tmp_path: Path) -> None:
    """A real venv made where the role makes one: its console script finds the INI beside
    the venv through the interpreter's prefix (the shebang names the release's own path,
    not `current`)."""
    release = tmp_path / "releases" / "r1"
    venv = release / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
        check=True, timeout=120,
    )  # fmt: skip
    (release / "heartbeat.ini").write_text("[database]\nname = from_release\n")
    code = "from heartbeat import config; print(config.resolve_config_path(None, {}))"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True, text=True, check=True, timeout=60, env=cli_env(),
    )  # fmt: skip
    assert done.stdout.strip() == str(release / "heartbeat.ini")


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[database]\nname = from_env_file\nuser = u\n")
    config = load_config(None, {CONFIG_ENV: path})
    assert config.path == path
    assert config.database.name == "from_env_file"


def test_default_path_is_used() -> None:
    if os.path.exists(DEFAULT_CONFIG_PATH):
        pytest.skip(f"{DEFAULT_CONFIG_PATH} exists on this machine")
    with pytest.raises(ConfigError) as excinfo:
        load_config(None, {})
    assert str(excinfo.value).startswith(f"{DEFAULT_CONFIG_PATH}: no such configuration file")


def test_relative_paths_are_taken_from_the_ini_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    write_php(tmp_path / "etc")
    (tmp_path / "etc" / "book.json").write_text("{}", encoding="utf-8")
    path = write_ini(
        tmp_path / "etc", "[database]\nmoodle_config = config.php\n[heartbeat]\nrules = book.json\n"
    )
    monkeypatch.chdir("/")
    config = load_config(path, {})
    assert config.database.moodle_config == str(tmp_path / "etc" / "config.php")
    assert config.database.name == "php_name"
    assert config.heartbeat.rules == str(tmp_path / "etc" / "book.json")


def test_config_objects_are_hashable_and_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, "[database]\npassword = x\n")
    hash(config)
    with pytest.raises(AttributeError):
        config.database.port = 1  # type: ignore[misc]


# --------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("key", "env_var", "env_value", "ini_value", "php_value", "default", "expected_env"),
    [
        ("host", "ALT42_DB_HOST", "env-host", "ini-host", "php-host", "localhost", "env-host"),
        ("port", "ALT42_DB_PORT", "3399", "3398", 3307, 3306, 3399),
        (
            "socket",
            "ALT42_DB_SOCKET",
            "/env.sock",
            "/ini.sock",
            "/php/mysqld.sock",
            "/run/mysqld/mysqld.sock",  # mysqli's default for localhost
            "/env.sock",
        ),
        ("name", "ALT42_DB_NAME", "env_name", "ini_name", "php_name", None, "env_name"),
        ("user", "ALT42_DB_USER", "env_user", "ini_user", "php_user", None, "env_user"),
        ("password", "ALT42_DB_PASSWORD", "env-pass", "ini-pass", "php-pass", "", "env-pass"),
        ("prefix", "ALT42_DB_PREFIX", "env_", "ini_", "php_", "mdl_", "env_"),
    ],
)
def test_precedence(
    tmp_path: Path,
    key: str,
    env_var: str,
    env_value: str,
    ini_value: str,
    php_value: Any,
    default: Any,
    expected_env: Any,
) -> None:
    php = write_php(tmp_path)
    ini_with_key = f"[database]\nmoodle_config = {php}\n{key} = {ini_value}\n"
    ini_without_key = f"[database]\nmoodle_config = {php}\n"
    expected_ini: Any = int(ini_value) if key == "port" else ini_value
    # a socket counts for host localhost only (PHP's mysqli), so the socket row uses it
    base = {"ALT42_DB_HOST": "localhost"} if key == "socket" else {}

    def value(ini: str, environ: dict[str, str]) -> Any:
        loaded = load_config(write_ini(tmp_path, ini, 0o600), {**base, **environ})
        return getattr(loaded.database, key)

    assert value(ini_with_key, {env_var: env_value}) == expected_env  # env > INI
    assert value(ini_with_key, {}) == expected_ini  # INI > config.php
    assert value(ini_without_key, {}) == php_value  # config.php > default
    others = {k: v for k, v in SITE_ENV.items() if k != env_var}
    if default is None:  # no default: an error naming the key
        assert f"[database] {key} is not set" in load_error(write_ini(tmp_path, ""), others)
    else:
        assert value("", SITE_ENV) == default
    config = load_config(write_ini(tmp_path, ini_with_key, 0o600), {**base, env_var: env_value})
    assert config.sources[f"database.{key}"] == f"environment variable {env_var}"
    config = load_config(write_ini(tmp_path, ini_without_key, 0o600), base)
    assert config.sources[f"database.{key}"].startswith(f"{php}: $CFG->")


def test_all_environment_overrides(tmp_path: Path) -> None:
    environ = {
        "ALT42_DB_HOST": "localhost",
        "ALT42_DB_PORT": "3311",
        "ALT42_DB_SOCKET": "/s.sock",
        "ALT42_DB_NAME": "n",
        "ALT42_DB_USER": "u",
        "ALT42_DB_PASSWORD": SECRET,
        "ALT42_DB_PREFIX": "p_",
    }
    config = load(tmp_path, "[database]\nhost = x\nport = 1\n", environ)
    assert config.database == DatabaseConfig("localhost", 3311, "/s.sock", "n", "u", SECRET, "p_")
    assert SECRET not in repr(config) and SECRET not in str(config)


@pytest.mark.parametrize(
    ("environ", "attribute", "expected"),
    [
        ({"ALT42_DB_SOCKET": ""}, "socket", None),  # empty: TCP even if config.php has one
        ({"ALT42_DB_PREFIX": ""}, "prefix", ""),
        ({"ALT42_DB_PASSWORD": ""}, "password", ""),
        ({"ALT42_DB_PORT": " 3312 "}, "port", 3312),
    ],
)
def test_empty_and_padded_environment_values(
    tmp_path: Path, environ: dict[str, str], attribute: str, expected: Any
) -> None:
    php = write_php(tmp_path)
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n", environ)
    assert getattr(config.database, attribute) == expected


@pytest.mark.parametrize(
    ("line", "attribute", "expected"),
    [
        ("socket =", "socket", None),  # empty: TCP although config.php names a socket
        ("prefix =", "prefix", ""),
        ("password =", "password", ""),
    ],
)
def test_empty_ini_values_override_config_php(
    tmp_path: Path, line: str, attribute: str, expected: Any
) -> None:
    php = write_php(tmp_path)
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n{line}\n")
    assert getattr(config.database, attribute) == expected


def test_no_password_anywhere_is_allowed(tmp_path: Path) -> None:
    php = write_php(tmp_path, "<?php $CFG->dbtype = 'mariadb'; $CFG->dbhost = 'h';")
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n")
    assert config.database.password == ""
    assert (config.database.name, config.database.user) == ("moodle", "moodle")


def test_config_php_empty_port_and_true_socket_mean_defaults(tmp_path: Path) -> None:
    php = write_php(
        tmp_path,
        "<?php $CFG->dbtype='mysqli'; $CFG->dboptions = ['dbport' => '', 'dbsocket' => true];",
    )
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n")
    assert (config.database.port, config.database.socket) == (3306, "/run/mysqld/mysqld.sock")
    assert config.sources["database.port"] == "default"
    assert config.sources["database.socket"] == "default: PHP mysqli's socket for host localhost"


# --------------------------------------------------------------------------- config.php via the INI


def test_unsupported_dbtype_even_when_everything_is_explicit(tmp_path: Path) -> None:
    php = write_php(tmp_path, MOODLE_CONFIG.replace("'mysqli'", "'pgsql'"))
    path = write_ini(tmp_path, f"[database]\nmoodle_config = {php}\nhost = h\nname = n\n")
    message = load_error(path)
    assert message == (
        f"{php}: $CFG->dbtype is 'pgsql'; alt42-heartbeat supports mysqli, mariadb and auroramysql"
    )


def test_non_literal_password_fails_only_when_needed(tmp_path: Path) -> None:
    php = write_php(
        tmp_path, MOODLE_CONFIG.replace("'php-pass'", f"getenv('DB_PASS') ?: '{SECRET}'")
    )
    path = write_ini(tmp_path, f"[database]\nmoodle_config = {php}\n")
    message = load_error(path)
    assert message.startswith(f"{php}: line 10: $CFG->dbpass is not a literal value")
    assert "ALT42_DB_PASSWORD" in message and "[database] password" in message
    config = load_config(path, {"ALT42_DB_PASSWORD": "from-env"})
    assert config.database.password == "from-env"
    path = write_ini(tmp_path, f"[database]\nmoodle_config = {php}\npassword = ini\n", 0o600)
    assert load_config(path, {}).database.password == "ini"


@pytest.mark.parametrize(
    ("php_text", "fragments"),
    [
        (
            MOODLE_CONFIG.replace("3307", "70000"),
            ["$CFG->dboptions['dbport'] = 70000", "out of range"],
        ),
        (
            MOODLE_CONFIG.replace("3307", "'x'"),
            ["$CFG->dboptions['dbport'] is 'x'", "ALT42_DB_PORT"],
        ),
        (MOODLE_CONFIG.replace("'php_'", "'bad-prefix'"), ["$CFG->prefix = 'bad-prefix'"]),
        (MOODLE_CONFIG.replace("'php_user'", "''"), ["$CFG->dbuser = ''", "non-empty"]),
        (MOODLE_CONFIG.replace("'php_name'", "false"), ["$CFG->dbname is a boolean"]),
        (MOODLE_CONFIG[: MOODLE_CONFIG.index("'dbport'")], ["truncated"]),
    ],
)
def test_bad_values_in_config_php_name_it(
    tmp_path: Path, php_text: str, fragments: list[str]
) -> None:
    php = write_php(tmp_path, php_text)
    message = load_error(write_ini(tmp_path, f"[database]\nmoodle_config = {php}\n"), {})
    assert message.startswith(f"{php}: ")
    for fragment in fragments:
        assert fragment in message


def test_missing_config_php_names_both_files(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[database]\nmoodle_config = /nonexistent/config.php\n")
    message = load_error(path)
    assert message.startswith("/nonexistent/config.php: no such Moodle config.php")
    assert f"[database] moodle_config in {path}" in message


# --------------------------------------------------------------------------- INI value errors


@pytest.mark.parametrize(
    ("section", "key", "value", "fragments"),
    [
        ("heartbeat", "batch_size", "abc", ["= 'abc' is not a whole number", "from 1 to 100000"]),
        ("heartbeat", "batch_size", "0", ["= 0 is out of range", "from 1 to 100000"]),
        ("heartbeat", "batch_size", "100001", ["out of range"]),
        ("heartbeat", "batch_size", "-5", ["out of range"]),
        ("heartbeat", "batch_size", "1.5", ["not a whole number"]),
        ("heartbeat", "batch_size", "", ["= '' is not a whole number"]),
        ("heartbeat", "batch_size", "10 # ten", ["comments must be on a line of their own"]),
        ("heartbeat", "batch_size", "9" * 40, ["not a whole number"]),
        ("heartbeat", "interval_minutes", "0", ["out of range", "from 1 to"]),
        ("heartbeat", "interval_minutes", "thirty", ["not a whole number"]),
        ("heartbeat", "window_hours", "0", ["out of range"]),
        ("heartbeat", "window_hours", "1e3", ["not a whole number"]),
        ("heartbeat", "open_session_hours", "-1", ["out of range"]),
        ("heartbeat", "lock_file", "run/x.lock", ["not an absolute path"]),
        ("heartbeat", "rules", "/nonexistent/rules.json", ["no such file", "remove the key"]),
        ("heartbeat", "rules", "", ["is empty"]),
        ("heartbeat", "rules", "/", ["is a directory"]),
        ("database", "port", "0", ["= 0 is out of range", "from 1 to 65535"]),
        ("database", "port", "65536", ["out of range"]),
        ("database", "port", "mysql", ["not a whole number"]),
        ("database", "prefix", "mdl-", ["= 'mdl-' is not a table prefix", "underscores"]),
        ("database", "prefix", "x" * 31, ["is not a table prefix"]),
        ("database", "prefix", "mdl_; DROP TABLE x", ["is not a table prefix"]),
        ("database", "host", "two words", ["is not a host name"]),
        ("database", "name", "", ["is empty or not a name"]),
        ("database", "user", "", ["is empty or not a name"]),
        ("database", "moodle_config", "", ["moodle_config is empty"]),
    ],
)
def test_value_errors_name_file_section_and_key(
    tmp_path: Path, section: str, key: str, value: str, fragments: list[str]
) -> None:
    path = write_ini(tmp_path, f"[{section}]\n{key} = {value}\n")
    message = load_error(
        path, {k: v for k, v in SITE_ENV.items() if k != f"ALT42_DB_{key.upper()}"}
    )
    assert message.startswith(f"{path}: [{section}] {key}"), message
    for fragment in fragments:
        assert fragment in message, message


def test_example_message_from_the_brief(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[heartbeat]\nbatch_size = abc\n")
    assert load_error(path) == (
        f"{path}: [heartbeat] batch_size = 'abc' is not a whole number; set an integer from "
        "1 to 100000"
    )


def test_rule_book_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text("{}", encoding="utf-8")
    rules.chmod(0)
    deny_open(monkeypatch, rules)
    path = write_ini(tmp_path, f"[heartbeat]\nrules = {rules}\n")
    message = load_error(path)
    assert message.startswith(f"{path}: [heartbeat] rules") and "permission denied" in message


@pytest.mark.parametrize(
    ("var", "value", "fragments"),
    [
        ("ALT42_DB_PORT", "abc", ["not a whole number", "from 1 to 65535"]),
        ("ALT42_DB_PORT", "0", ["out of range"]),
        ("ALT42_DB_PORT", "65536", ["out of range"]),
        ("ALT42_DB_PORT", "", ["not a whole number"]),
        ("ALT42_DB_PREFIX", "bad prefix", ["is not a table prefix"]),
        ("ALT42_DB_HOST", "two words", ["is not a host name"]),
        ("ALT42_DB_NAME", "", ["is empty or not a name"]),
        ("ALT42_DB_USER", " ", ["is empty or not a name"]),
        ("ALT42_DB_SOCKET", "/tmp/a\nb", ["is not a socket path"]),
    ],
)
def test_environment_errors_name_the_variable(
    tmp_path: Path, var: str, value: str, fragments: list[str]
) -> None:
    message = load_error(write_ini(tmp_path, "[database]\nport = 3306\n"), {**SITE_ENV, var: value})
    assert message.startswith(f"environment variable {var} = "), message
    for fragment in fragments:
        assert fragment in message


# --------------------------------------------------------------------------- INI structure errors


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[databse]\nhost = x\n", ["section [databse] is not known", "(did you mean [database]?)"]),
        ("[Heartbeat]\n", ["section [Heartbeat] is not known", "did you mean [heartbeat]?"]),
        ("[mysql]\n", ["section [mysql] is not known", "[database], [heartbeat], [monitoring]"]),
        ("[DEFAULT]\nhost = x\n", ["section [DEFAULT] is not known"]),
        (
            "[heartbeat]\nbatchsize = 5\n",
            ["[heartbeat] batchsize is not a known key", "(did you mean batch_size?)"],
        ),
        ("[database]\nhostname = x\n", ["[database] hostname is not a known key", "host?"]),
        ("[database]\ndbpass = x\n", ["(did you mean password?)"]),
        ("[database]\ndbname = x\n", ["(did you mean name?)"]),
        ("[database]\nusername = x\n", ["(did you mean user?)"]),
        ("[database]\ndbsocket = x\n", ["(did you mean socket?)"]),
        ("[database]\npasword = x\n", ["[database] pasword", "did you mean password?"]),
        ("[database]\nfoo = x\n", ["[database] foo is not a known key", "the keys of [database]"]),
        ("[database]\nhost = a\nhost = b\n", ["line 3", "[database] host is set twice"]),
        ("[database]\n[heartbeat]\n[database]\n", ["line 3", "section [database] appears twice"]),
        ("host = x\n[database]\n", ["line 1 is outside any section"]),
        ("[database]\nhost x\n", ["line 2 is not 'key = value'"]),
        ("[database\nhost = x\n", ["line 1"]),
        ("[database]\nhost = a\n  b\n", ["[database] host spans several lines"]),
    ],
)
def test_structure_errors(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write_ini(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.ini")
    message = load_error(path)
    assert message.startswith(f"{path}: no such configuration file")
    assert "--config" in message and CONFIG_ENV in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    message = load_error(str(tmp_path))
    assert message.startswith(f"{tmp_path}: is a directory")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.ini"
    path.write_bytes(b"[database]\nuser = moodle\npassword = caf\xe9\n")
    path.chmod(0o600)
    message = load_error(str(path))
    assert message == f"{path}: is not UTF-8 text (first bad byte on line 3); save it as UTF-8"


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.ini"
    path.write_bytes(b"\x7fELF\x00\x00")
    assert "binary" in load_error(str(path))


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.ini"
    path.write_bytes("\ufeff[database]\nname = bom\nuser = u\n".encode())
    assert load_config(str(path), {}).database.name == "bom"


def deny_open(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make ``open(denied)`` fail as for an unprivileged user (root reads anything)."""
    if os.geteuid() != 0:
        return
    real_open = builtins.open

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(denied):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_ini(tmp_path, "[database]\npassword = x\n", mode=0o000)
    deny_open(monkeypatch, Path(path))
    message = load_error(path)
    assert message.startswith(f"{path}: permission denied for user ")
    assert "chmod 0640" in message


# --------------------------------------------------------------------------- the password


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o666, 0o755])
def test_world_readable_file_with_password_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_ini(tmp_path, f"[database]\npassword = {SECRET}\n", mode=mode)
    message = load_error(path)
    assert message == (
        f"{path}: holds [database] password but is readable by everyone (mode {mode:04o}); "
        f"run: chmod 0640 {path} (and chgrp it to the job's group)"
    )


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        (0o640, f"[database]\npassword = {SECRET}\n"),
        (0o600, f"[database]\npassword = {SECRET}\n"),
        (0o644, "[database]\nhost = db\n"),  # no password: may be world-readable
    ],
)
def test_private_file_or_no_password_is_fine(tmp_path: Path, mode: int, text: str) -> None:
    load_config(write_ini(tmp_path, text, mode=mode), SITE_ENV)


@pytest.mark.parametrize(
    "text",
    [
        f"[database]\npassword {SECRET}\n",  # no '=': a parse error quoting nothing
        f"password = {SECRET}\n",  # outside any section
        f"[database]\npassword = {SECRET}\n  {SECRET}\n",  # continuation line
        f"[database]\npassword = {SECRET}\npassword = {SECRET}\n",  # duplicate
        f"[database]\npassword = {SECRET}\nport = x\n",  # another key's error
        f"[{SECRET}\n",
    ],
)
def test_password_never_in_messages(tmp_path: Path, text: str) -> None:
    load_error(write_ini(tmp_path, text))  # load_error asserts SECRET is absent


def test_password_never_in_repr(tmp_path: Path) -> None:
    php = write_php(tmp_path, MOODLE_CONFIG.replace("php-pass", SECRET))
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n")
    assert config.database.password == SECRET
    for text in (repr(config), str(config), repr(config.database), str(config.sources)):
        assert SECRET not in text


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool)
)
def test_any_ini_password_is_kept_verbatim(tmp_path: Path, password: str) -> None:
    config = load(tmp_path, f"[database]\npassword = {password}\n")
    assert config.database.password == password
    assert "password" not in repr(config.database)  # the field is hidden from repr


@pytest.mark.parametrize("host", ["localhost", ""])
def test_localhost_uses_the_socket_of_config_php(tmp_path: Path, host: str) -> None:
    php = write_php(tmp_path, MOODLE_CONFIG.replace("'php-host'", repr(host)))
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n", {})
    assert (config.database.host, config.database.socket) == ("localhost", "/php/mysqld.sock")


@pytest.mark.parametrize("host", ["127.0.0.1", "db.example.org"])
def test_a_tcp_host_ignores_a_stale_socket(tmp_path: Path, host: str) -> None:
    """PHP's mysqli uses dboptions['dbsocket'] only for localhost: so does the job."""
    php = write_php(tmp_path, MOODLE_CONFIG.replace("'php-host'", repr(host)))
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n", {})
    assert (config.database.host, config.database.port, config.database.socket) == (
        host,
        3307,
        None,
    )
    assert config.sources["database.socket"] == (
        f"ignored ({php}: $CFG->dboptions['dbsocket']): host {host} means TCP, as PHP's mysqli does"
    )


def test_localhost_without_a_socket_uses_mysqli_default(tmp_path: Path) -> None:
    php = write_php(tmp_path, MOODLE_CONFIG.replace("'/php/mysqld.sock'", "''"))
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\nhost = localhost\n", {})
    assert config.database.socket == "/run/mysqld/mysqld.sock"


@pytest.mark.parametrize(
    ("env", "ini", "fragment"),
    [
        ({}, "", "line 5: $CFG->dbtype is not a literal value"),
        ({}, "type = pgsql\n", "[database] type = 'pgsql' is not supported"),
        (
            {"ALT42_DB_TYPE": "oci"},
            "",
            "environment variable ALT42_DB_TYPE = 'oci' is not supported",
        ),
    ],
)
def test_a_dbtype_that_cannot_be_read(
    tmp_path: Path, env: dict[str, str], ini: str, fragment: str
) -> None:
    php = write_php(tmp_path, MOODLE_CONFIG.replace("'mysqli'", "getenv('MOODLE_DOCKER_DBTYPE')"))
    message = load_error(write_ini(tmp_path, f"[database]\nmoodle_config = {php}\n{ini}"), env)
    assert fragment in message
    if not ini and not env:
        assert "set [database] type or ALT42_DB_TYPE" in message


@pytest.mark.parametrize(
    ("env", "ini"), [({}, "type = mariadb\n"), ({"ALT42_DB_TYPE": "mysqli"}, "")]
)
def test_a_computed_dbtype_is_fine_when_set_elsewhere(
    tmp_path: Path, env: dict[str, str], ini: str
) -> None:
    php = write_php(tmp_path, MOODLE_CONFIG.replace("'mysqli'", "getenv('MOODLE_DOCKER_DBTYPE')"))
    config = load(tmp_path, f"[database]\nmoodle_config = {php}\n{ini}", env)
    assert config.database.name == "php_name"


def test_the_host_lock_is_per_site(tmp_path: Path) -> None:
    """Two Moodle sites on one web server never skip each other's runs."""

    def lock(env: dict[str, str], text: str = "") -> str:
        return load(tmp_path, text, {**SITE_ENV, **env}).heartbeat.lock_file

    site_a = lock({"ALT42_DB_NAME": "moodle_a"})
    assert site_a == lock({"ALT42_DB_NAME": "moodle_a"})
    assert site_a != lock({"ALT42_DB_NAME": "moodle_b"})
    assert site_a != lock({"ALT42_DB_NAME": "moodle_a", "ALT42_DB_PREFIX": "lms_"})
    assert site_a != lock({"ALT42_DB_NAME": "moodle_a", "ALT42_DB_HOST": "db2.example.org"})
    assert lock({}, "[heartbeat]\nlock_file = /tmp/mine.lock\n") == "/tmp/mine.lock"


def test_the_readme_lists_every_key_as_declared() -> None:
    """The README's key list is config.KEYS, printed by python -m heartbeat.config."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- keys:begin (python -m heartbeat.config) -->\n", 1)[1]
    assert block.split("\n<!-- keys:end -->", 1)[0] == describe_keys()
