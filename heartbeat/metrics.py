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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Figures:
    """What the last run did."""

    status: str
    finished_at: float
    duration_ms: float = 0.0
    students_found: int = 0
    students: int = 0
    errors: int = 0
    pacing_waits: int = 0
    pacing_wait_ms: float = 0.0


@dataclass(frozen=True)
class Expected:
    """What the site configured, so that alert rules compare with it instead of holding
    their own copy of the schedule (monitoring/prometheus/)."""

    interval_s: int
    grace_s: int
    max_run_s: int


def _gauge(name: str, help_text: str, *samples: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples]


def render(
    run: Figures,
    last_success: Optional[float],
    expected: Optional[Expected] = None,
    version: str = __version__,
) -> str:
    """The textfile content (Prometheus exposition format). Every name here is one the
    rules of monitoring/prometheus/ may use (a test checks that they only use these)."""
    p = "alt42_heartbeat_"
    lines = _gauge(f"{p}build_info", "The release that wrote this file.",
                   f'{p}build_info{{version="{version}"}} 1')  # fmt: skip
    lines += _gauge(f"{p}last_run_timestamp_seconds", "When the last run finished.",
                    f"{p}last_run_timestamp_seconds {run.finished_at:.3f}")  # fmt: skip
    lines += _gauge(
        f"{p}last_success_timestamp_seconds",
        "When the last run without a fatal error finished.",
        *([f"{p}last_success_timestamp_seconds {last_success:.3f}"] if last_success else []),
    )
    lines += _gauge(f"{p}last_duration_seconds", "Duration of the last run.",
                    f"{p}last_duration_seconds {run.duration_ms / 1000:.3f}")  # fmt: skip
    lines += _gauge(f"{p}students_found", "Active students the last run found.",
                    f"{p}students_found {run.students_found}")  # fmt: skip
    lines += _gauge(f"{p}students_processed", "Students processed by the last run.",
                    f"{p}students_processed {run.students}")  # fmt: skip
    lines += _gauge(f"{p}errors", "Students that failed in the last run.",
                    f"{p}errors {run.errors}")  # fmt: skip
    lines += _gauge(
        f"{p}pacing_waits",
        "Times the last run waited for the database's load ([pacing]).",
        f"{p}pacing_waits {run.pacing_waits}",
    )
    lines += _gauge(
        f"{p}pacing_wait_seconds",
        "Time the last run spent pacing itself (load waits and the spread of its writes).",
        f"{p}pacing_wait_seconds {run.pacing_wait_ms / 1000:.3f}",
    )
    lines += _gauge(
        f"{p}status",
        "Outcome of the last run (1 for the current one).",
        *(f'{p}status{{status="{name}"}} {int(name == run.status)}' for name in STATUSES),
    )
    if expected is not None:
        lines += _gauge(f"{p}interval_seconds", "Time between two scheduled starts.",
                        f"{p}interval_seconds {expected.interval_s}")  # fmt: skip
        lines += _gauge(
            f"{p}grace_seconds",
            "How late a run may be before it counts as missed ([monitoring] grace_minutes).",
            f"{p}grace_seconds {expected.grace_s}",
        )
        lines += _gauge(f"{p}max_run_seconds", "The deadline of a run (max_run_minutes).",
                        f"{p}max_run_seconds {expected.max_run_s}")  # fmt: skip
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
