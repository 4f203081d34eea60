"""Configuration: the INI file, the environment and Moodle's config.php, merged.

Precedence, highest first: ``ALT42_DB_*`` environment variables, explicit keys of the
INI file's ``[database]`` section, values read (as text, never by running PHP) from
the Moodle ``config.php`` named by ``moodle_config``, then built-in defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

DEFAULT_CONFIG_PATH = "/etc/alt42/heartbeat.ini"
CONFIG_ENV = "ALT42_HEARTBEAT_CONFIG"


@dataclass(frozen=True)
class DatabaseConfig:
    """Where and how to reach Moodle's database."""

    host: str = "localhost"
    port: int = 3306
    socket: Optional[str] = None
    name: str = "moodle"
    user: str = "moodle"
    password: str = field(default="", repr=False)
    prefix: str = "mdl_"


@dataclass(frozen=True)
class HeartbeatConfig:
    """How the job behaves."""

    interval_minutes: int = 30
    window_hours: int = 24
    open_session_hours: int = 24
    rules: Optional[str] = None  # path of a rule book replacing the shipped one
    batch_size: int = 1000
    lock_file: str = "/run/lock/alt42-heartbeat.lock"


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration; ``path`` is the INI file it came from."""

    path: str
    database: DatabaseConfig
    heartbeat: HeartbeatConfig


def load_config(path: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Config:
    """Load and validate the configuration (raises ConfigError naming file and key)."""
    raise NotImplementedError
