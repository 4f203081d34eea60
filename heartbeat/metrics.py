"""Prometheus node_exporter textfile output, written atomically.

node_exporter's textfile collector reads every ``*.prom`` file of a directory; writing
to a temporary file in the same directory and renaming it means the collector never
sees a half-written file. The last success time survives failed runs: it is read back
from the previous file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from heartbeat import __version__
from heartbeat.errors import HeartbeatError

if TYPE_CHECKING:
    from heartbeat.config import Config
    from heartbeat.hooks import Run, State
    from heartbeat.run import RunSummary

log = logging.getLogger(__name__)

STATUSES = ("success", "partial", "failed", "aborted", "skipped")
_LAST_SUCCESS = re.compile(r"^alt42_heartbeat_last_success_timestamp_seconds (\S+)$", re.M)


def notify(config: Config, state: State, run: Run, dry_run: bool) -> None:
    """The monitoring hook (``heartbeat.hooks``): after a run that did the work, or one
    that failed, the textfile says so. A file that cannot be written is reported, never
    fatal."""
    path = config.monitoring.metrics_file
    if dry_run or not path or state == "start" or run.summary is None:
        return
    if state == "finish" and not run.ran:
        return  # only the server that ran reports
    try:
        write_atomically(path, content(config, run.summary))
    except HeartbeatError:
        raise  # a signal while writing: the command's to handle
    except Exception as exc:  # noqa: BLE001 - a monitoring hook never changes the outcome
        problem = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
        log.error("ERROR: cannot write metrics file %s: %s", path, problem)


def content(config: Config, summary: RunSummary) -> str:
    """The textfile after ``summary``: its figures, the last success (now, or the one the
    previous file recorded) and the schedule the alert rules compare with."""
    monitoring, settings = config.monitoring, config.heartbeat
    now = time.time()
    succeeded = summary.status in ("success", "partial")
    last_success = now if succeeded else previous_success(str(monitoring.metrics_file))
    return render(
        Figures(
            status=summary.status,
            finished_at=now,
            duration_ms=summary.duration_ms,
            students_found=summary.students_found,
            students=summary.students_processed,
            errors=summary.errors,
            pacing_waits=summary.pacing_waits,
            pacing_wait_ms=summary.pacing_wait_ms,
            pacing_duty=summary.pacing_duty,
            pacing_backoffs=summary.pacing_backoffs,
        ),
        last_success,
        Expected(
            interval_s=settings.interval_minutes * 60,
            grace_s=monitoring.grace_minutes * 60,
            max_run_s=settings.max_run_minutes * 60,
        ),
        table_bytes=summary.table_bytes,
    )


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
    pacing_duty: float = 1.0
    pacing_backoffs: int = 0


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
    table_bytes: Optional[Mapping[str, int]] = None,
) -> str:
    """The textfile content (Prometheus exposition format). Every name here is one the
    rules of monitoring/prometheus/ may use (a test checks that they only use these)."""
    p = "alt42_heartbeat_"
    lines = _gauge(f"{p}build_info", "The release that wrote this file.",
                   f'{p}build_info{{version="{version}"}} 1')  # fmt: skip
    single: list[tuple[str, str, Optional[str]]] = [  # (name, help, value; None: no sample)
        ("last_run_timestamp_seconds", "When the last run finished.", f"{run.finished_at:.3f}"),
        ("last_success_timestamp_seconds", "When the last run without a fatal error finished.",
         f"{last_success:.3f}" if last_success else None),
        ("last_duration_seconds", "Duration of the last run.", f"{run.duration_ms / 1000:.3f}"),
        ("students_found", "Active students the last run found.", str(run.students_found)),
        ("students_processed", "Students processed by the last run.", str(run.students)),
        ("errors", "Students that failed in the last run.", str(run.errors)),
        ("pacing_waits", "Times the last run waited for the database's load ([pacing]).",
         str(run.pacing_waits)),
        ("pacing_wait_seconds",
         "Time the last run spent pacing itself (load waits and the spread of its writes).",
         f"{run.pacing_wait_ms / 1000:.3f}"),
        ("pacing_duty_ratio",
         "The lowest share of the time the last run kept the database working (adaptive"
         " pacing; 1: unpaced throughout).",
         f"{run.pacing_duty:.3f}"),
        ("pacing_backoffs",
         "Times the last run's adaptive pacing cut its duty for the site's sake.",
         str(run.pacing_backoffs)),
    ]  # fmt: skip
    if expected is not None:
        single += [
            ("interval_seconds", "Time between two scheduled starts.", str(expected.interval_s)),
            ("grace_seconds",
             "How late a run may be before it counts as missed ([monitoring] grace_minutes).",
             str(expected.grace_s)),
            ("max_run_seconds", "The deadline of a run (max_run_minutes).",
             str(expected.max_run_s)),
        ]  # fmt: skip
    for name, help_text, value in single:
        lines += _gauge(p + name, help_text, *([f"{p}{name} {value}"] if value else []))
    if table_bytes:
        lines += _gauge(
            f"{p}table_bytes",
            "Bytes of the job's tables, data and indexes (the server's estimate after the run).",
            *(f'{p}table_bytes{{table="{name}"}} {size}' for name, size in table_bytes.items()),
        )
    lines += _gauge(
        f"{p}status",
        "Outcome of the last run (1 for the current one).",
        *(f'{p}status{{status="{name}"}} {int(name == run.status)}' for name in STATUSES),
    )
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
