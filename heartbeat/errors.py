"""Exceptions that carry the process exit code.

The CLI turns each of them into one line on stderr and its exit code; everything
else in the package raises one of these instead of printing, so that there is one
place (``cli``) that decides what the operator sees.
"""

from __future__ import annotations

from typing import Optional

EXIT_OK = 0
EXIT_PARTIAL = 1  # the run finished but some students failed
EXIT_CONFIG = 2  # configuration or usage error
EXIT_DATABASE = 3  # database unreachable, bad credentials, missing table, connection lost
EXIT_ABORTED = 4  # stopped early by its deadline or SIGTERM/SIGINT, after committing its batch
EXIT_INTERNAL = 5  # an unexpected error (a bug): the run is recorded failed all the same

#: What a non-zero exit code of ``run`` means, in the words of the README's table.
EXIT_MEANINGS = {
    EXIT_PARTIAL: "some students failed, or the job's output could not be written",
    EXIT_CONFIG: "configuration or usage error",
    EXIT_DATABASE: "database error",
    EXIT_ABORTED: "aborted by its deadline or a signal",
    EXIT_INTERNAL: "internal error",
}


class HeartbeatError(Exception):
    """Base class: a failure the operator must see as one clear line."""

    exit_code = EXIT_CONFIG


class ConfigError(HeartbeatError):
    """A configuration file, environment value or rule book is wrong (exit 2)."""

    exit_code = EXIT_CONFIG


class DatabaseError(HeartbeatError):
    """The database failed: unreachable, credentials, schema, lost connection (exit 3)."""

    exit_code = EXIT_DATABASE
    code: Optional[int] = None  # the server's error number, when it gave one


class InternalError(HeartbeatError):
    """Something the job did not foresee (a bug): one line, exit 5, the run recorded."""

    exit_code = EXIT_INTERNAL


class TakenOver(HeartbeatError):
    """Another server took this run's claim over: its lease had expired (the run was
    frozen or cut off for longer than ``lease_seconds``). The run stops, writes nothing
    more (exit 4, like any run stopped early)."""

    exit_code = EXIT_ABORTED
