"""Prometheus node_exporter textfile output, written atomically.

node_exporter's textfile collector reads every ``*.prom`` file of a directory; writing
to a temporary file in the same directory and renaming it means the collector never
sees a half-written file. The last success time survives failed runs: it is read back
from the previous file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from typing import Optional

from heartbeat import __version__

STATUSES = ("success", "partial", "failed", "aborted", "skipped")
_LAST_SUCCESS = re.compile(r"^alt42_heartbeat_last_success_timestamp_seconds (\S+)$", re.M)


def previous_success(path: str) -> Optional[float]:
    """The last success timestamp recorded in an existing metrics file, if any."""
    try:
        with open(path, encoding="utf-8") as handle:
            match = _LAST_SUCCESS.search(handle.read(65536))
    except OSError:
        return None
    try:
        return float(match.group(1)) if match else None
    except ValueError:
        return None


def render(
    status: str,
    finished_at: float,
    duration_ms: float,
    students: int,
    errors: int,
    last_success: Optional[float],
    version: str = __version__,
    pacing_waits: int = 0,
    pacing_wait_ms: float = 0.0,
) -> str:
    """The textfile content (Prometheus exposition format)."""
    lines = [
        "# HELP alt42_heartbeat_build_info The release that wrote this file.",
        "# TYPE alt42_heartbeat_build_info gauge",
        f'alt42_heartbeat_build_info{{version="{version}"}} 1',
        "# HELP alt42_heartbeat_last_run_timestamp_seconds When the last run finished.",
        "# TYPE alt42_heartbeat_last_run_timestamp_seconds gauge",
        f"alt42_heartbeat_last_run_timestamp_seconds {finished_at:.3f}",
        "# HELP alt42_heartbeat_last_success_timestamp_seconds When the last run without"
        " a fatal error finished.",
        "# TYPE alt42_heartbeat_last_success_timestamp_seconds gauge",
    ]
    if last_success is not None:
        lines.append(f"alt42_heartbeat_last_success_timestamp_seconds {last_success:.3f}")
    lines += [
        "# HELP alt42_heartbeat_last_duration_seconds Duration of the last run.",
        "# TYPE alt42_heartbeat_last_duration_seconds gauge",
        f"alt42_heartbeat_last_duration_seconds {duration_ms / 1000:.3f}",
        "# HELP alt42_heartbeat_students_processed Students processed by the last run.",
        "# TYPE alt42_heartbeat_students_processed gauge",
        f"alt42_heartbeat_students_processed {students}",
        "# HELP alt42_heartbeat_errors Students that failed in the last run.",
        "# TYPE alt42_heartbeat_errors gauge",
        f"alt42_heartbeat_errors {errors}",
        "# HELP alt42_heartbeat_pacing_waits Times the last run waited for the database's"
        " load ([pacing]).",
        "# TYPE alt42_heartbeat_pacing_waits gauge",
        f"alt42_heartbeat_pacing_waits {pacing_waits}",
        "# HELP alt42_heartbeat_pacing_wait_seconds Time the last run spent pacing itself"
        " (load waits and the spread of its writes).",
        "# TYPE alt42_heartbeat_pacing_wait_seconds gauge",
        f"alt42_heartbeat_pacing_wait_seconds {pacing_wait_ms / 1000:.3f}",
        "# HELP alt42_heartbeat_status Outcome of the last run (1 for the current one).",
        "# TYPE alt42_heartbeat_status gauge",
    ]
    lines += [
        f'alt42_heartbeat_status{{status="{name}"}} {int(name == status)}' for name in STATUSES
    ]
    return "\n".join(lines) + "\n"


def write_atomically(path: str, content: str) -> None:
    """Replace ``path`` with ``content`` in one rename (mode 0644: metrics hold no secret)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".alt42-heartbeat.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
