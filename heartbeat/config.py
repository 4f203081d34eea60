"""Configuration: the INI file, the environment and Moodle's config.php, merged.

Every key is declared once, in :data:`KEYS` (section, name, parser, default, help):
parsing, validation, the messages, the sections' dataclass defaults, ``alt42-heartbeat``
rejecting unknown keys, the environment variables and the README's list of keys
(``python -m heartbeat.config``) all follow from it.

Precedence for ``[database]``, highest first: ``ALT42_DB_*`` environment variables,
explicit keys of the INI file, values read (as text, never by running PHP) from the
Moodle ``config.php`` named by ``moodle_config``, then Moodle's own defaults (there is
none for the database name or user).

Everything is validated here, once, so that the rest of the job can trust the values:
every mistake becomes one :class:`ConfigError` line (exit code 2) that names the file
or variable, the key and the fix. The database password is never part of a message
or of a ``repr``: cron mails and log files are read by more people than the DB admin.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import hashlib
import os
import re
import shlex
import stat
import sys
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar, Union

from heartbeat.errors import ConfigError
from heartbeat.files import read_text_file
from heartbeat.moodle_config import (
    FIELDS,
    SUPPORTED_DBTYPES,
    MoodleDbSettings,
    ini_key,
    read_moodle_config,
)
from heartbeat.schedule import Schedule, parse_schedule

DEFAULT_CONFIG_PATH = "/etc/alt42/heartbeat.ini"
#: The INI a release installed by the role reads by default: its own, beside its venv
#: (``<release>/venv`` and ``<release>/heartbeat.ini``), so that code and configuration
#: switch together with the release (one rename of ``current``). The path comes from
#: the interpreter's prefix, which the venv's console script names by the release's own
#: directory: a switch of ``current`` while a run starts cannot pair one release's code
#: with the other's configuration.
RELEASE_CONFIG_NAME = "heartbeat.ini"
#: The host locks' directory: the role creates it for the job's user alone (its
#: __alt42_heartbeat_lock_dir), so that no other local user can hold the lock; without
#: it (the job installed by hand), the world-writable /run/lock, where the job refuses a
#: lock file another user owns.
LOCK_DIR = "/var/lib/alt42-heartbeat"
LOCK_DIR_FALLBACK = "/run/lock"
CONFIG_ENV = "ALT42_HEARTBEAT_CONFIG"
MAX_INI_BYTES = 1024 * 1024

#: Where PHP's mysqli on Debian connects for host "localhost" when no socket is set
#: (PHP is built with --with-mysql-sock=/var/run/mysqld/mysqld.sock; /var/run is /run).
DEFAULT_SOCKET = "/run/mysqld/mysqld.sock"
#: Hosts for which mysqli uses the Unix socket; any other host means TCP.
SOCKET_HOSTS = ("localhost", "")

#: How long the per-student rows are kept by default: the longest window a reader of
#: them uses (the plugin's monitoring API, 30 days) and a margin (docs/footprint.md).
DETAIL_DAYS = 35

_Raw = Union[str, int, None]
_T = TypeVar("_T")
#: A dataclass field's default that is its key's default in ``KEYS`` (``_defaults_from_keys``).
FROM_KEYS: Any = object()


#: Names people carry over from Moodle's config.php or other tools, which difflib
#: alone would map badly (``hostname`` is closer to ``name`` than to ``host``).
ALIASES: Mapping[str, str] = {
    "hostname": "host",
    "dbhost": "host",
    "server": "host",
    "dbport": "port",
    "dbsocket": "socket",
    "unix_socket": "socket",
    "dbname": "name",
    "database": "name",
    "dbuser": "user",
    "username": "user",
    "dbpass": "password",
    "passwd": "password",
    "pass": "password",
    "table_prefix": "prefix",
    "dbprefix": "prefix",
    "config_php": "moodle_config",
    "interval": "interval_minutes",
    "lockfile": "lock_file",
    "rulebook": "rules",
    "rule_book": "rules",
    "mailto": "mail_to",
    "email": "mail_to",
    "mail": "mail_to",
    "sendmail_path": "sendmail",
    "max_load": "max_threads_running",  # gh-ost's and pt-online-schema-change's name
    "max_lag": "max_replica_lag_seconds",
    "max_lag_millis": "max_replica_lag_seconds",
    "replica_host": "replica",
}

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_]{0,30}")
#: A mail address as the MTA takes it on a To:/From: line: user@domain, or a local user.
MAIL_ADDRESS = re.compile(r"[A-Za-z0-9._%+=-]+(@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)?")
_NO_DEFAULT_SECTION = "\x00no default section"  # makes a [DEFAULT] section an unknown one


# --------------------------------------------------------------------------- the parsers

#: A parser: (the raw value, where it came from, the INI file's directory) -> the value.
Parser = Callable[[_Raw, str, str], Any]


def whole(low: int, high: int) -> Parser:
    """A whole number from ``low`` to ``high`` (an int from config.php as it is)."""

    def parse(raw: _Raw, where: str, _base: str) -> int:
        if isinstance(raw, int):
            return check_range(raw, where, low, high)
        return parse_int(raw or "", where, low, high)

    parse.bounds = (low, high)  # type: ignore[attr-defined]
    return parse


def _optional(parse: Callable[[str, str, str], _T]) -> Callable[[_Raw, str, str], Optional[_T]]:
    """An empty value means "not set" (the key's default)."""

    def wrapped(raw: _Raw, where: str, base: str) -> Optional[_T]:
        return None if raw in (None, "") else parse(str(raw), where, base)

    if hasattr(parse, "bounds"):
        wrapped.bounds = parse.bounds  # type: ignore[attr-defined]
    return wrapped


def _http_url(raw: str, where: str, _base: str) -> str:
    """An http(s) URL that urllib can send to: a host, a numeric port if any (the URL is
    never quoted in the message: its path is the check's secret)."""
    problem = (
        f"{where} is not an http(s) URL; set e.g. https://hc-ping.com/<uuid> or remove the key"
    )
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", raw):
        raise ConfigError(problem)
    try:
        parts = urllib.parse.urlsplit(raw)
        port = parts.port  # ValueError for a port that is not a number in 0..65535
    except ValueError:
        raise ConfigError(problem) from None
    if not parts.hostname or parts.netloc.endswith(":") or port == 0:
        raise ConfigError(problem)
    return raw


def _metrics_path(raw: str, where: str, _base: str) -> str:
    if not os.path.isabs(raw) or not raw.endswith(".prom"):
        raise ConfigError(
            f"{where} = {raw!r} must be an absolute path ending in .prom; set e.g."
            " /var/lib/prometheus/node-exporter/alt42_heartbeat.prom"
        )
    return raw


def _lock_path(raw: _Raw, where: str, _base: str) -> str:
    text = str(raw or "")
    if not os.path.isabs(text):
        raise ConfigError(
            f"{where} = {text!r} is not an absolute path; set a path such as"
            " /run/lock/alt42-heartbeat.lock"
        )
    return text


def _command_path(raw: _Raw, where: str, _base: str) -> str:
    text = str(raw or "")
    if not os.path.isabs(text) or _has_control(text):
        raise ConfigError(
            f"{where} = {text!r} is not an absolute path; set the path of the MTA's sendmail"
            " command (e.g. /usr/sbin/sendmail) or remove the key"
        )
    return text


def _mail_list(raw: _Raw, where: str, _base: str) -> tuple[str, ...]:
    items = [item.strip() for item in str(raw or "").split(",") if item.strip()]
    return tuple(_mail_address(item, where) for item in items)


def _mail_from(raw: str, where: str, _base: str) -> str:
    return _mail_address(raw.strip(), where)


def _mail_address(value: str, where: str) -> str:
    """One address (``ops@example.org`` or a local user such as ``root``), checked."""
    if not MAIL_ADDRESS.fullmatch(value):
        raise ConfigError(
            f"{where}: {value!r} is not a mail address; set addresses such as "
            "ops@example.org (several separated by commas) or remove the key"
        )
    return value


def _replica(raw: str, where: str, _base: str) -> tuple[str, int]:
    """``host`` or ``host:port`` of a replica (TCP: a replica is another server)."""
    host, _, port = raw.strip().partition(":")
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host) or host == "localhost":
        raise ConfigError(
            f"{where}: {raw!r} is not a replica's host name or address; write host or"
            " host:port (TCP; localhost is this server, not a replica)"
        )
    return host, parse_int(port, where, 1, 65535) if port else 3306


def _time_zone(raw: str, where: str, _base: str) -> str:
    """An IANA zone (Asia/Seoul) or a UTC offset (+09:00)."""
    if re.fullmatch(r"[+-](0[0-9]|1[0-4]):[0-5][0-9]", raw):
        return raw
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where} = {raw!r} is not a time zone; set a name such as Asia/Seoul, an"
            " offset such as +09:00, or remove the key (the database server's zone)"
        ) from None
    return raw


def _schedule(raw: str, where: str, _base: str) -> Schedule:
    return parse_schedule(raw, where)


def release_config_path(prefix: str = sys.prefix, base_prefix: str = sys.base_prefix) -> str:
    """The INI of the release this process runs from (``RELEASE_CONFIG_NAME`` beside its
    venv), or "" outside a venv (a system-wide install has no release of its own)."""
    if prefix == base_prefix:
        return ""
    return os.path.join(os.path.dirname(os.path.normpath(prefix)), RELEASE_CONFIG_NAME)


def resolve_config_path(
    path: Optional[str], environ: Mapping[str, str], release_config: Optional[str] = None
) -> str:
    """The INI file to read: ``path``, else ``$ALT42_HEARTBEAT_CONFIG``, else the release's
    own INI when it exists, else the default."""
    if path is not None:
        if not path:
            raise ConfigError("the configuration file path is empty; pass --config FILE")
        return path
    if environ.get(CONFIG_ENV):
        return environ[CONFIG_ENV]
    own = release_config_path() if release_config is None else release_config
    return own if own and os.path.isfile(own) else DEFAULT_CONFIG_PATH


def load_config(path: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Config:
    """Load and validate the configuration (raises ConfigError naming file and key)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    ini_path = resolve_config_path(path, env)
    text, mode = read_text_file(
        ini_path,
        limit=MAX_INI_BYTES,
        hint=f"create it (see the README), pass --config FILE or set {CONFIG_ENV}",
        what="configuration file",
    )
    sections = parse_ini(text, ini_path)
    check_password_permissions(sections, ini_path, mode)
    base_dir = os.path.dirname(os.path.abspath(ini_path))
    database, sources = database_config(sections.get("database"), ini_path, env, base_dir)
    heartbeat = heartbeat_config(sections.get("heartbeat", {}), ini_path, base_dir)
    if not heartbeat.lock_file:
        heartbeat = dataclasses.replace(heartbeat, lock_file=site_lock_file(database))

    def plain(name: str, kind: type[_T]) -> _T:
        return kind(**section_values(sections.get(name, {}), name, ini_path, base_dir))

    return Config(
        path=ini_path,
        database=database,
        heartbeat=heartbeat,
        monitoring=plain("monitoring", MonitoringConfig),
        pacing=plain("pacing", PacingConfig),
        retention=retention_config(sections.get("retention", {}), ini_path, base_dir),
        report=plain("report", ReportConfig),
        sources=sources,
    )


# --------------------------------------------------------------------------- the INI file


def parse_ini(text: str, path: str) -> dict[str, dict[str, str]]:
    """Parse the INI text into {section: {key: value}}, rejecting anything unknown.

    configparser's own messages quote the offending line, which may hold the
    password: they are replaced by messages that give the line number only.
    """
    parser = configparser.ConfigParser(
        interpolation=None, default_section=_NO_DEFAULT_SECTION, strict=True
    )
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno} is outside any section; start the file with "
            "[database] or [heartbeat]"
        ) from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else "?"
        raise ConfigError(
            f"{path}: line {line} is not 'key = value', '[section]' or a comment; fix or "
            "remove it (comments start with # or ; at the beginning of a line)"
        ) from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno}: section [{exc.section}] appears twice; merge them into one"
        ) from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno}: [{exc.section}] {exc.option} is set twice; keep "
            "only one of them"
        ) from None
    except configparser.Error as exc:  # pragma: no cover - every subclass is handled above
        raise ConfigError(f"{path}: cannot be parsed ({type(exc).__name__})") from None
    sections: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        known = KNOWN_KEYS.get(section)
        if known is None:
            hint = _did_you_mean(section, list(KNOWN_KEYS), "[{}]")
            raise ConfigError(
                f"{path}: section [{section}] is not known{hint}; the sections are "
                + ", ".join(f"[{name}]" for name in KNOWN_KEYS)
            )
        values: dict[str, str] = {}
        for key, value in parser.items(section):
            if key not in known:
                hint = _did_you_mean(key, list(known), "{}")
                raise ConfigError(
                    f"{path}: [{section}] {key} is not a known key{hint}; the keys of "
                    f"[{section}] are {', '.join(known)}"
                )
            if "\n" in value:
                raise ConfigError(
                    f"{path}: [{section}] {key} spans several lines (an indented line "
                    "continues the value above it); put the value on one line and do not "
                    "indent the next key"
                )
            values[key] = value
        sections[section] = values
    _refuse_cut_password(text, path)
    password = sections.get("database", {}).get("password")
    if password is not None and _quoted(password):
        sections["database"]["password"] = password[1:-1]
    return sections


def _quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] == '"'


def _refuse_cut_password(text: str, path: str) -> None:
    """An INI file cannot keep spaces at the end of a value (configparser strips them):
    a password ending in a space was cut, so that ``check`` passed and every run got
    "Access denied". Such a password is written in double quotes (``parse_ini`` takes
    the text between them)."""
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[([^]]+)\]", line)
        if header:
            section = header.group(1).strip()
            continue
        match = re.match(r"\s*password\s*[=:](.*)$", line)
        raw = match.group(1) if match and section == "database" else ""
        if raw.strip() and raw != raw.rstrip() and not _quoted(raw.strip()):
            raise ConfigError(
                f"{path}: line {number}: [database] password ends with a space, which an"
                ' INI file cannot keep; put the password in double quotes: password = "..."'
            )


def _did_you_mean(word: str, choices: list[str], form: str) -> str:
    """`` (did you mean [database]?)`` for a near miss, else nothing."""
    alias = ALIASES.get(word.lower())
    if alias in choices:
        return f" (did you mean {form.format(alias)}?)"
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {form.format(lowered[close[0]])}?)" if close else ""


def check_password_permissions(
    sections: Mapping[str, Mapping[str, str]], path: str, mode: int
) -> None:
    """A file holding the DB password must not be readable by every local user."""
    if "password" in sections.get("database", {}) and mode & stat.S_IROTH:
        quoted = shlex.quote(path)
        raise ConfigError(
            f"{path}: holds [database] password but is readable by everyone (mode "
            f"{stat.S_IMODE(mode):04o}); run: chmod 0640 {quoted} (and chgrp it to the "
            "job's group)"
        )


# --------------------------------------------------------------------------- [heartbeat]


def heartbeat_config(section: Mapping[str, str], path: str, base_dir: str) -> HeartbeatConfig:
    """Validate ``[heartbeat]``; relative paths are taken from the INI file's directory.

    With ``schedule`` (the cron expression the role writes beside the cron entry) the
    interval is the shortest gap between two of its starts: given as well, it must agree.
    A run may not last into the next start (it would make that start skip).
    """
    values = section_values(section, "heartbeat", path, base_dir)
    interval, cron = values["interval_minutes"], values["schedule"]
    if cron is not None:
        gap = cron.shortest_gap_minutes()
        if "interval_minutes" in section and interval != gap:
            raise ConfigError(
                f"{path}: [heartbeat] interval_minutes = {interval} disagrees with schedule = "
                f"{cron.expression} (starts as little as {gap} min apart), which would skip "
                "runs; remove interval_minutes: the job takes it from the schedule"
            )
        interval = gap
    max_run = values["max_run_minutes"]
    if max_run >= interval:
        raise ConfigError(
            f"{path}: [heartbeat] max_run_minutes = {max_run} is not below the "
            f"{interval} min between two starts, so a slow run would make the next start "
            f"skip; set it below {interval} or remove it (default: two thirds)"
        )
    return HeartbeatConfig(
        **{
            **values,
            "interval_minutes": interval,
            "max_run_minutes": max_run or default_max_run(interval),
        }
    )


def default_max_run(interval_minutes: int) -> int:
    """A run's deadline when the file sets none: two thirds of the interval."""
    return max(1, interval_minutes * 2 // 3)


def retention_config(section: Mapping[str, str], path: str, base_dir: str) -> RetentionConfig:
    """Validate ``[retention]``. A file that sets ``days`` alone keeps every row that long,
    as it did before ``detail_days`` existed: a default never shortens what a site chose."""
    values = section_values(section, "retention", path, base_dir)
    days, detail = values["days"], values["detail_days"]
    if detail is None:
        detail = days if "days" in section else min(DETAIL_DAYS, days)
    elif detail > days:
        raise ConfigError(
            f"{path}: [retention] detail_days = {detail} is longer than days = {days}: the"
            f" per-student rows would outlive their runs; set days to {detail} or more, or"
            " detail_days to at most days"
        )
    return RetentionConfig(**{**values, "detail_days": detail})


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _size(raw: str, where: str, _base: str) -> int:
    """A size in bytes: a whole number with an optional K, M, G or T (powers of 1024,
    as ``du -h`` prints them; ``20G``, ``20 GB`` and ``20GiB`` are the same)."""
    match = re.fullmatch(r"\s*([0-9]{1,15})\s*(?:([KMGTkmgt])i?)?[Bb]?\s*", raw)
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(
            f"{where} = {raw!r} is not a size; set a whole number of bytes with K, M, G or"
            " T, e.g. 20G, or remove the key (no limit)"
        )
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").upper()]


def site_lock_file(database: DatabaseConfig) -> str:
    """The host lock of one site: two Moodle sites on one server never skip each other.

    Named after the database (readable in ``ls``) plus a digest of everything that tells
    sites apart (server, name, prefix)."""
    identity = "|".join(
        [database.host, str(database.port), database.socket or "", database.name, database.prefix]
    )
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_]", "_", database.name)[:32]
    directory = LOCK_DIR if os.path.isdir(LOCK_DIR) else LOCK_DIR_FALLBACK
    return f"{directory}/alt42-heartbeat-{name}-{digest}.lock"


def _readable_rule_book(raw: _Raw, key: str, base_dir: str) -> str:
    """The rule book path, checked now so that a typo stops the job before it starts."""
    value = str(raw or "")
    where = f"{key} = {value!r}"
    fix = "set the path of a rule book file, or remove the key to use the shipped one"
    if not value:
        raise ConfigError(f"{where} is empty; {fix}")
    full = os.path.join(base_dir, value)
    try:
        with open(full, "rb"):
            pass
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{where}: no such file; {fix}") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is a directory; {fix}") from None
    except PermissionError:
        raise ConfigError(
            f"{where}: permission denied; let the job's user read it "
            f"(chmod 0644 {shlex.quote(full)})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror or exc}); {fix}") from None
    return full


def parse_int(text: str, where: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``; ``where`` names file and key (or variable)."""
    fix = f"set an integer from {low} to {high}"
    if re.search(r"\s[#;]", text):
        fix += " (comments must be on a line of their own)"
    stripped = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", stripped):
        raise ConfigError(f"{where} = {text!r} is not a whole number; {fix}")
    return check_range(int(stripped), where, low, high)


def check_range(value: int, where: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ConfigError(f"{where} = {value} is out of range; set an integer from {low} to {high}")
    return value


# --------------------------------------------------------------------------- [database]


def database_config(
    section: Optional[Mapping[str, str]], path: str, environ: Mapping[str, str], base_dir: str
) -> tuple[DatabaseConfig, dict[str, str]]:
    """Merge environment, ``[database]``, config.php and Moodle's defaults; validate.

    config.php is read whenever ``moodle_config`` is set (a missing file or a pgsql
    site is an error even if every key is set elsewhere), but a key it cannot give as
    text only matters when nothing with higher precedence sets it. The database name
    and user have no default: when no source gives them, the error says where it looked.
    """
    has_section = section is not None
    section = section or {}
    moodle: Optional[MoodleDbSettings] = None
    moodle_path: Optional[str] = None
    if "moodle_config" in section:
        value = section["moodle_config"]
        if not value:
            raise ConfigError(
                f"{path}: [database] moodle_config is empty; set the path of Moodle's "
                "config.php (e.g. /var/www/moodle/config.php) or remove the key"
            )
        moodle_path = os.path.join(base_dir, value)
        moodle = read_moodle_config(moodle_path, f"[database] moodle_config in {path}")

    sources: dict[str, str] = {}
    if moodle is not None:
        unreadable = [
            _PHP_FIELD.get(key, key)
            for key in ENV_VARS
            if ENV_VARS[key] not in environ
            and key not in section
            and _PHP_FIELD.get(key, key) in moodle.problems
        ]
        if unreadable:  # needed, and config.php cannot give it as text
            raise ConfigError(moodle.problem_message(unreadable))

    def pick(key: str) -> tuple[_Raw, str]:
        """The winning raw value of ``key`` and a label naming where it came from."""
        env_name = ENV_VARS[key]
        if env_name in environ:
            label = f"environment variable {env_name}"
            raw: _Raw = environ[env_name]
        elif key in section:
            label = f"{path}: [database] {key}"
            raw = section[key]
        elif moodle is not None and moodle.has(_PHP_FIELD.get(key, key)):
            label = moodle.label(_PHP_FIELD.get(key, key))
            raw = moodle.require(_PHP_FIELD.get(key, key))
        elif key in MOODLE_DEFAULTS:
            label = "default"
            raw = MOODLE_DEFAULTS[key]
        else:
            raise ConfigError(_not_set(key, path, moodle, has_section))
        sources[f"database.{key}"] = label
        return raw, label

    def get(key: str) -> Any:
        raw, label = pick(key)
        return _KEY["database", key].parse(raw, label, base_dir)

    get("type")
    host = get("host")
    socket, sources["database.socket"] = _socket_for(host, pick("socket"))
    database = DatabaseConfig(
        host=host or "localhost",
        port=get("port"),
        socket=socket,
        name=get("name"),
        user=get("user"),
        password=get("password"),
        prefix=get("prefix"),
        moodle_config=moodle_path,
    )
    return database, sources


#: INI key -> the MoodleDbSettings field, where they differ (moodle_config.ini_key).
_PHP_FIELD: Mapping[str, str] = {ini_key(field): field for field in FIELDS}


def _not_set(key: str, path: str, moodle: Optional[MoodleDbSettings], has_section: bool) -> str:
    """The one line for a database key that no source gives: every place looked."""
    places = [f"environment variable {ENV_VARS[key]}", f"[database] {key} of this file"]
    if moodle is not None:
        places.append(f"{moodle.label(_PHP_FIELD.get(key, key))} (not set there)")
    else:
        places.append("Moodle's config.php (none: [database] moodle_config is not set)")
    lacking = "" if has_section else " (the file has no [database] section)"
    return (
        f"{path}: [database] {key} is not set{lacking}; looked in {', '.join(places)}; set "
        f"[database] {key}, or moodle_config to the path of Moodle's config.php"
    )


def _socket_for(host: str, picked: tuple[_Raw, str]) -> tuple[Optional[str], str]:
    """The socket PHP's mysqli would use, and where it came from (for ``check``).

    mysqli takes the socket only for host "localhost" (or empty) and then falls back to
    its built-in default; any other host, 127.0.0.1 included, means TCP, whatever
    ``dboptions['dbsocket']`` still says.
    """
    socket = _check_socket(*picked)
    label = picked[1]
    if host not in SOCKET_HOSTS:
        if socket is None:
            return None, f"none: host {host} means TCP"
        return None, f"ignored ({label}): host {host} means TCP, as PHP's mysqli does"
    if socket is None:
        return DEFAULT_SOCKET, "default: PHP mysqli's socket for host localhost"
    return socket, label


def _has_control(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


def _check_type(raw: _Raw, label: str, _base: str = "") -> Optional[str]:
    """Moodle's dbtype: only the MySQL family is spoken (None: not said anywhere)."""
    if raw is None:
        return None
    if raw not in SUPPORTED_DBTYPES:
        raise ConfigError(
            f"{label} = {raw!r} is not supported; alt42-heartbeat supports "
            + ", ".join(SUPPORTED_DBTYPES)
        )
    return str(raw)


def _check_host(raw: _Raw, label: str, _base: str = "") -> str:
    """A host name or address; empty means localhost, as in PHP's mysqli."""
    if raw == "":
        return ""
    if not isinstance(raw, str) or _has_control(raw) or re.search(r"\s", raw):
        raise ConfigError(
            f"{label} = {raw!r} is not a host name; set a host name or IP address (for a "
            "Unix socket set socket instead)"
        )
    return raw


def _check_socket(raw: _Raw, label: str, _base: str = "") -> Optional[str]:
    """A socket path; empty means "none given" (mysqli's default for localhost)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or _has_control(raw):
        raise ConfigError(f"{label} = {raw!r} is not a socket path; set the path of a socket")
    return raw


def _check_name(raw: _Raw, label: str, _base: str = "") -> str:
    """Database and user names: non-empty text (the server judges the rest)."""
    if not isinstance(raw, str) or not raw.strip() or _has_control(raw):
        raise ConfigError(f"{label} = {raw!r} is empty or not a name; set a non-empty name")
    return raw


def _check_password(raw: _Raw, label: str, _base: str = "") -> str:
    """Any text is a valid password (none at all means an empty one); never quoted."""
    del label
    return "" if raw is None else str(raw)


def _check_prefix(raw: _Raw, label: str, _base: str = "") -> str:
    """The prefix goes into SQL table names unquoted by Moodle: letters, digits, _."""
    if not isinstance(raw, str) or not PREFIX_PATTERN.fullmatch(raw):
        raise ConfigError(
            f"{label} = {raw!r} is not a table prefix; use at most 30 letters, digits and "
            "underscores (Moodle's default is mdl_)"
        )
    return raw


# --------------------------------------------------------------------------- the keys


@dataclass(frozen=True)
class Key:
    """One key of the INI file: where it lives, how it is read, what it does."""

    section: str
    name: str
    parse: Parser
    default: Any
    help: str
    env: Optional[str] = None  # the ALT42_DB_* variable that overrides it ([database])
    shown: str = ""  # the default as the README shows it, where repr would mislead

    @property
    def default_text(self) -> str:
        if self.shown:
            return self.shown
        if self.default in (None, "", ()):
            return "(none)"
        return str(self.default)


_DB_HELP = "a key set here wins over config.php; ALT42_DB_{} wins over both"

#: Every key of the INI file, in the order of the README's list.
KEYS: tuple[Key, ...] = (
    Key("database", "moodle_config", _optional(lambda raw, _w, base: os.path.join(base, raw)), None,
        "Moodle's config.php: the database settings are read from it, as text"),
    Key("database", "type", _check_type, None,
        "Moodle's dbtype: mysqli, mariadb or auroramysql", env="ALT42_DB_TYPE",
        shown="config.php's"),
    Key("database", "host", _check_host, "localhost",
        "database host; localhost (or empty) means the Unix socket, as PHP's mysqli",
        env="ALT42_DB_HOST"),
    Key("database", "port", whole(1, 65535), 3306, "TCP port (a host other than localhost)",
        env="ALT42_DB_PORT"),
    Key("database", "socket", _check_socket, None,
        "Unix socket for host localhost", env="ALT42_DB_SOCKET", shown=DEFAULT_SOCKET),
    Key("database", "name", _check_name, None,
        "database name (required: from here or config.php)", env="ALT42_DB_NAME"),
    Key("database", "user", _check_name, None,
        "database user (required: from here or config.php)", env="ALT42_DB_USER"),
    Key("database", "password", _check_password, "",
        "database password; the file must then not be world-readable (chmod 0640)",
        env="ALT42_DB_PASSWORD"),
    Key("database", "prefix", _check_prefix, "mdl_",
        "Moodle's table prefix", env="ALT42_DB_PREFIX"),
    Key("heartbeat", "schedule", _optional(_schedule), None,
        "the cron expression that starts the job (the role writes it): each start runs once"),
    Key("heartbeat", "interval_minutes", whole(1, 525_600), 30,
        "minutes between two starts; with schedule: its shortest gap, must agree",
        shown="30, or the schedule's"),
    Key("heartbeat", "window_hours", whole(1, 87_600), 24,
        "sessions ended within this many hours make a student active"),
    Key("heartbeat", "open_session_hours", whole(1, 87_600), 24,
        "open sessions count only if they started this recently"),
    Key("heartbeat", "rules", _readable_rule_book, None,
        "a rule book file replacing the shipped one", shown="the shipped one"),
    Key("heartbeat", "batch_size", whole(1, 100_000), 1000, "students per transaction"),
    Key("heartbeat", "lock_file", _lock_path, "",
        "the host lock",
        shown="/var/lib/alt42-heartbeat/alt42-heartbeat-<name>-<digest>.lock, one per site"
        " (the role makes the directory; else in /run/lock)"),
    Key("heartbeat", "max_run_minutes", whole(0, 525_600), 0,
        "stop (exit 4) after this; below the interval", shown="2/3 of the interval"),
    Key("heartbeat", "query_timeout_seconds", whole(1, 86_400), 300,
        "time limit per SQL statement (MariaDB max_statement_time)"),
    Key("heartbeat", "lease_seconds", whole(6, 3600), 90,
        "a run renews its claim every third of this; once a claim was not renewed for this"
        " long (its server died, froze or lost the network), the next server to start takes"
        " over"),
    Key("monitoring", "ping_url", _optional(_http_url), None,
        "dead-man's switch (healthchecks.io-compatible)"),
    Key("monitoring", "ping_timeout_seconds", whole(1, 60), 5, "time limit per ping"),
    Key("monitoring", "ping_retries", whole(0, 5), 2, "retries per ping"),
    Key("monitoring", "metrics_file", _optional(_metrics_path), None,
        "node_exporter textfile written after each run"),
    Key("monitoring", "grace_minutes", whole(0, 1440), 10,
        "status: CRITICAL when two starts in a row did not run, plus this grace"),
    Key("monitoring", "mail_to", _mail_list, (),
        "failure mail: only when a run fails, never on success"),
    Key("monitoring", "mail_from", _optional(_mail_from), None,
        "From: of the failure mail", shown="the MTA's choice"),
    Key("monitoring", "sendmail", _command_path, "/usr/sbin/sendmail",
        "the MTA's sendmail command (exim4, postfix, msmtp-mta)"),
    Key("pacing", "max_threads_running", whole(0, 100_000), 25,
        "wait before a batch while more statements than this run on the server (0: off)"),
    Key("pacing", "max_flow_control_percent", whole(0, 100), 10,
        "Galera: wait while flow control paused the cluster more than this share of the time"),
    Key("pacing", "max_recv_queue", whole(0, 1_000_000), 8,
        "Galera: wait while this node's wsrep_local_recv_queue is longer"),
    Key("pacing", "replica", _optional(_replica), None,
        "host[:port] of a replica whose lag to watch (the job's user needs REPLICA MONITOR)"),
    Key("pacing", "max_replica_lag_seconds", whole(0, 86_400), 5,
        "wait while the replica is further behind (or not replicating)"),
    Key("pacing", "max_rows_per_second", whole(0, 100_000_000), 0,
        "a fixed cap: spread the writes to this rate on average, in small batches, but"
        " finish within 3/4 of max_run_minutes (0: no fixed cap)"),
    Key("pacing", "max_bytes_per_second", whole(0, 10_000_000_000), 0,
        "the same, in bytes of SQL sent (0: off)"),
    Key("pacing", "max_delay_percent", whole(0, 1000), 25,
        "adaptive pacing: while the site is busy, keep its statements' p99 (the job's"
        " probe) within this much of their idle p99: back off past it, speed up within it"
        " (0: off)"),
    Key("pacing", "quiet_statements_per_second", whole(0, 1_000_000), 20,
        "adaptive pacing: the site's own statements per second (the job's not counted) at"
        " or below which the server is quiet and the run goes unpaced"),
    Key("retention", "days", whole(1, 3650), 400,
        "prune keeps the run rows (one per run) this many days"),
    Key("retention", "detail_days", _optional(whole(1, 3650)), None,
        "prune keeps the per-student rows (event and evaluation rows: nearly all the bytes)"
        " this many days; at most days",
        shown=f"{DETAIL_DAYS}, or days where only that is set"),
    Key("retention", "batch_size", whole(100, 100_000), 5000, "rows per DELETE transaction"),
    Key("retention", "max_size", _optional(_size), None,
        "check warns when the job's tables would pass this size at the retention settings"
        " (e.g. 20G)", shown="no limit"),
    Key("report", "time_zone", _optional(_time_zone), None,
        "the zone report's per-day view counts days in", shown="the database server's"),
)  # fmt: skip

#: Known sections and keys of the INI file (anything else is a typo to report).
KNOWN_KEYS: Mapping[str, tuple[str, ...]] = {
    section: tuple(key.name for key in KEYS if key.section == section)
    for section in dict.fromkeys(key.section for key in KEYS)
}
#: ``[database]`` key -> the environment variable that overrides it.
ENV_VARS: Mapping[str, str] = {key.name: key.env for key in KEYS if key.env}
_KEY: Mapping[tuple[str, str], Key] = {(key.section, key.name): key for key in KEYS}


# --------------------------------------------------------------------------- the values
#
# Each section's validated values. A field's default is its key's (``KEYS``), filled in
# by ``_defaults_from_keys`` where the field says ``FROM_KEYS``: a default is declared
# once. The few that differ are values the loader derives (the socket, max_run_minutes,
# detail_days) and say from what.


def _defaults_from_keys(section: str) -> Callable[[type[_T]], type[_T]]:
    """Class decorator (under ``@dataclass``): each ``FROM_KEYS`` default becomes the
    default of the key of the same name in ``section``."""

    def fill(kind: type[_T]) -> type[_T]:
        for name, value in list(vars(kind).items()):
            if value is FROM_KEYS:
                setattr(kind, name, _KEY[section, name].default)
            elif isinstance(value, dataclasses.Field) and value.default is FROM_KEYS:
                value.default = _KEY[section, name].default
        return kind

    return fill


@dataclass(frozen=True)
@_defaults_from_keys("database")
class DatabaseConfig:
    """Where and how to reach Moodle's database.

    ``socket`` is where the connection goes for host ``localhost`` (None: TCP to
    host:port), decided as PHP's mysqli decides. ``name`` and ``user`` have no default:
    Moodle has none either, so a site that gives neither is misconfigured, not "moodle".
    """

    host: str = FROM_KEYS
    port: int = FROM_KEYS
    socket: Optional[str] = DEFAULT_SOCKET  # PHP mysqli's, where no key gives one
    name: str = ""  # no default: "" until a source gives it
    user: str = ""
    password: str = field(default=FROM_KEYS, repr=False)
    prefix: str = FROM_KEYS
    moodle_config: Optional[str] = None  # the config.php values were read from, if any


@dataclass(frozen=True)
@_defaults_from_keys("heartbeat")
class HeartbeatConfig:
    """How the job behaves."""

    interval_minutes: int = FROM_KEYS
    # The cron expression that starts the job (None: an INI without it; slots are then
    # UTC intervals of interval_minutes, as before schedules were known).
    schedule: Optional[Schedule] = FROM_KEYS
    window_hours: int = FROM_KEYS
    open_session_hours: int = FROM_KEYS
    rules: Optional[str] = FROM_KEYS  # path of a rule book replacing the shipped one
    batch_size: int = FROM_KEYS
    # "" until load_config derives it from the database (one lock per site, see
    # site_lock_file), unless the INI sets one.
    lock_file: str = FROM_KEYS
    # Past this the run stops after the batch in hand (status aborted, exit 4); not set
    # (0 in the file), two thirds of the interval, so a slow run ends before the next start.
    max_run_minutes: int = default_max_run(_KEY["heartbeat", "interval_minutes"].default)
    query_timeout_seconds: int = FROM_KEYS  # per statement: one stuck query cannot hold the slot
    # A run renews its claim every third of this; a claim not renewed for this long (its
    # host died, froze or lost the network) is taken over by the next server that starts.
    lease_seconds: int = FROM_KEYS


@dataclass(frozen=True)
@_defaults_from_keys("monitoring")
class MonitoringConfig:
    """Dead-man's switch pings, the Prometheus textfile, the status check, failure mail."""

    ping_url: Optional[str] = field(default=FROM_KEYS, repr=False)  # holds a secret id
    ping_timeout_seconds: int = FROM_KEYS
    ping_retries: int = FROM_KEYS
    metrics_file: Optional[str] = FROM_KEYS
    grace_minutes: int = FROM_KEYS
    mail_to: tuple[str, ...] = FROM_KEYS  # failure mail recipients; empty: no mail
    mail_from: Optional[str] = FROM_KEYS  # From: header; None lets the MTA choose
    sendmail: str = FROM_KEYS


@dataclass(frozen=True)
@_defaults_from_keys("pacing")
class PacingConfig:
    """How a run spares the database it shares with the site (``heartbeat.pacing``):
    between batches it waits while the server is past a limit, and it spreads its
    writes to a rate. 0 (or no ``replica``) turns a check off."""

    max_threads_running: int = FROM_KEYS
    max_flow_control_percent: int = FROM_KEYS
    max_recv_queue: int = FROM_KEYS
    replica: Optional[tuple[str, int]] = FROM_KEYS  # (host, port) whose lag is watched
    max_replica_lag_seconds: int = FROM_KEYS
    max_rows_per_second: int = FROM_KEYS  # a fixed cap, off by default (adaptive instead)
    max_bytes_per_second: int = FROM_KEYS
    max_delay_percent: int = FROM_KEYS  # heartbeat.adaptive
    quiet_statements_per_second: int = FROM_KEYS


@dataclass(frozen=True)
@_defaults_from_keys("retention")
class RetentionConfig:
    """How long ``prune`` keeps rows, how many it deletes per transaction, and the size
    the job's tables may reach (``check`` warns past it).

    Run rows (one per run, tiny) are kept ``days``; the per-student rows (the event and
    evaluation rows, nearly all the bytes) ``detail_days``."""

    days: int = FROM_KEYS
    detail_days: int = DETAIL_DAYS  # not set (None in the file): this, or days (retention_config)
    batch_size: int = FROM_KEYS
    max_size: Optional[int] = FROM_KEYS  # bytes


@dataclass(frozen=True)
@_defaults_from_keys("report")
class ReportConfig:
    """``report``: the time zone its per-day view counts days in (None: the server's)."""

    time_zone: Optional[str] = FROM_KEYS


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration; ``path`` is the INI file it came from.

    ``sources`` says where each database value came from ("database.host" ->
    "environment variable ALT42_DB_HOST", "/var/www/moodle/config.php: $CFG->dbhost",
    "default", ...), so that ``check`` can tell the operator which setting won.
    """

    path: str
    database: DatabaseConfig
    heartbeat: HeartbeatConfig
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    pacing: PacingConfig = field(default_factory=PacingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    sources: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


def describe_keys() -> str:
    """The README's list of keys, as a Markdown table (``python -m heartbeat.config``)."""
    lines = ["| section | key | default | what it does |", "|---|---|---|---|"]
    for key in KEYS:
        bounds = getattr(key.parse, "bounds", None)
        what = key.help + (f" ({bounds[0]} to {bounds[1]})" if bounds else "")
        if key.env:
            what += f"; `{key.env}` overrides it"
        lines.append(f"| `[{key.section}]` | `{key.name}` | {key.default_text} | {what} |")
    return "\n".join(lines)


def section_values(
    section: Mapping[str, str], name: str, path: str, base_dir: str
) -> dict[str, Any]:
    """Every key of section ``name``: parsed where the file sets it, else its default."""
    return {
        key.name: key.parse(section[key.name], f"{path}: [{name}] {key.name}", base_dir)
        if key.name in section
        else key.default
        for key in KEYS
        if key.section == name
    }


#: Moodle's own defaults (lib/dml): no database name and no user among them.
MOODLE_DEFAULTS: Mapping[str, _Raw] = {
    key.name: key.default for key in KEYS if key.env and key.name not in ("name", "user")
}

if __name__ == "__main__":  # the README's list of keys
    sys.stdout.write(describe_keys() + "\n")
