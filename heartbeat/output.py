"""Where the job's lines go: the standard ``logging`` module, set up once per command.

Every module logs to a child of the ``heartbeat`` logger; :func:`setup` (called by the
CLI only) decides where the lines go, as borgmatic does: INFO lines (and DEBUG with
``--verbose``) on stdout, WARNING and ERROR on stderr, each as
``[YYYY-MM-DD HH:MM:SS] message`` in UTC; with ``--log-file`` (the role's cron line) all
of them are appended to that file, which the job opens itself (and under the systemd
timer also go to the journal). A :class:`Transcript`
keeps the last lines for the failure mail. A stream that cannot take a line (a full disk
under the log, a closed pipe) is noted in :attr:`Output.lost` and never stops a run
half-way.

Why the job opens its log itself: with cron's ``>> LOG 2>&1`` the shell opens the file
before the job starts, so a log that another program (the PHP job run by root) made
unwritable stopped every run before it began, silently. A log the job cannot open now
costs the run its log, not the run: the lines go to syslog and stderr instead, and the
run says so.
"""

from __future__ import annotations

import collections
import contextlib
import grp
import io
import logging
import logging.handlers
import os
import pwd
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional, TextIO

from heartbeat import mail

LOGGER_NAME = "heartbeat"
TRANSCRIPT_LINES = mail.TRANSCRIPT_LINES
SYSLOG_SOCKET = "/dev/log"
SYSLOG_TAG = "alt42-heartbeat"


class StampFormatter(logging.Formatter):
    """``[2026-11-27 19:30:00] message``, UTC, the format of the seed manual's log."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))


class StatusLine:
    """One line at the bottom of a terminal that is redrawn in place (the progress of a
    run): ``show`` replaces it, ``clear`` erases it, so that a log line printed meanwhile
    starts on a clean line and the status line comes back with the next ``show``."""

    ERASE = "\r\x1b[K"  # carriage return, erase to the end of the line (VT100/ECMA-48)

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def show(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(self.ERASE + text)
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.shown = False
            with contextlib.suppress(OSError, ValueError):
                self.stream.write(self.ERASE)
                self.stream.flush()


class SafeStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that survives a stream that fails.

    The failed write is noted in ``lost``, and the stream's descriptor is pointed at
    /dev/null so that its unwritten buffer cannot fail again when Python exits. A
    status line on the terminal is erased before each line.
    """

    def __init__(
        self, stream: TextIO, lost: list[str], status: Optional[StatusLine] = None
    ) -> None:
        super().__init__(stream)
        self.lost = lost
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.status is not None:
                self.status.clear()
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except OSError as exc:
            self.lost.append(f"{getattr(self.stream, 'name', 'output')}: {exc.strerror or exc}")
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)


class Transcript(logging.Handler):
    """The last ``TRANSCRIPT_LINES`` lines printed, for the failure mail."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: collections.deque[str] = collections.deque(maxlen=TRANSCRIPT_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class _Below(logging.Filter):
    """Let through only records below ``level`` (stdout takes what stderr does not)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


@dataclass
class Output:
    """What one command printed and could not print."""

    transcript: Transcript
    lost: list[str] = field(default_factory=list)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    status: Optional[StatusLine] = None  # drawn only by a run's progress on a terminal
    where: str = ""  # where the log lines went, in words (for the failure mail)

    def plain(self, text: str) -> None:
        """Print ``text`` as it is (a report table, the status line, ``--json``): output
        for a reader or a program, not a log line; a stream that fails is noted."""
        self.transcript.lines.append(text)
        try:
            if self.status is not None:
                self.status.clear()
            print(text, file=self.stdout, flush=True)
        except OSError as exc:
            self.lost.append(f"{getattr(self.stdout, 'name', 'output')}: {exc.strerror or exc}")


@dataclass(frozen=True)
class LogFile:
    """The log file of ``--log-file``: its open stream, or why it could not be opened."""

    path: str
    stream: Optional[TextIO]
    problem: str = ""  # e.g. "Permission denied (owner root:root, mode 0644; ...)"
    fix: str = ""


def open_log(path: str) -> LogFile:
    """Open ``path`` for appending, as ``>>`` would (created 0644 under umask 022)."""
    try:
        stream = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        if os.path.lexists(path):
            fix = "make it writable by the job's user (chown it, or remove it: the job creates it)"
        else:
            fix = f"create {os.path.dirname(path) or '.'} writable by the job's user"
        return LogFile(path, None, f"{exc.strerror or exc}{_owner_note(path)}", fix)
    return LogFile(path, stream)


def _owner_note(path: str) -> str:
    """`` (owner root:root, mode 0644; this job runs as www-data)``, or "" if unknown."""
    try:
        info = os.stat(path)
    except OSError:
        return ""
    return (
        f" (owner {_name(pwd.getpwuid, info.st_uid)}:{_name(grp.getgrgid, info.st_gid)},"
        f" mode {info.st_mode & 0o7777:04o}; this job runs as {_name(pwd.getpwuid, os.geteuid())})"
    )


def _name(lookup: Any, number: int) -> str:
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def _instead_of(log_file: LogFile, out: Output) -> tuple[logging.Handler, str]:
    """Where the lines of a run whose log cannot be opened go besides stderr: the local
    syslog (the journal on systemd), or nowhere more without one. Notes the loss."""
    handler: logging.Handler = logging.NullHandler()
    instead = "stdout and stderr (under cron: mailed to MAILTO, if set)"
    if os.path.exists(SYSLOG_SOCKET):
        with contextlib.suppress(OSError):
            handler = logging.handlers.SysLogHandler(
                address=SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_CRON
            )
            handler.setFormatter(logging.Formatter(f"{SYSLOG_TAG}[%(process)d]: %(message)s"))
            instead = (
                f"syslog (tag {SYSLOG_TAG}: journalctl -t {SYSLOG_TAG}, or /var/log/syslog)"
                " and stdout and stderr"
            )
    out.lost.append(f"{log_file.path}: {log_file.problem}")
    out.where = f"The log {log_file.path} could not be opened: this run's lines went to {instead}."
    return handler, instead


def stderr_is_journal() -> bool:
    """Whether stderr is systemd's journal (the timer's service): then the lines go to
    the journal as well as to the log file. systemd names the stream in
    ``JOURNAL_STREAM`` (device:inode); comparing it with stderr's own tells a child that
    merely inherited the variable (cron started by systemd) from the service itself."""
    try:
        device, inode = (int(part) for part in os.environ["JOURNAL_STREAM"].split(":"))
        found = os.fstat(sys.stderr.fileno())
    except (KeyError, ValueError, OSError, AttributeError, io.UnsupportedOperation):
        return False
    return (found.st_dev, found.st_ino) == (device, inode)


def setup(
    verbose: bool = False,
    quiet: bool = False,
    stdout: Optional[TextIO] = None,
    log_file: Optional[LogFile] = None,
) -> Output:
    """Route the ``heartbeat`` logger for one command (replacing earlier handlers).

    ``quiet`` (``run --json``) keeps stdout for the JSON alone; errors still go to stderr.
    ``log_file``: every line goes there; if it could not be opened, to syslog and the
    usual streams, and the first line says so (the command goes on).
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    formatter = StampFormatter()
    stream = stdout or sys.stdout
    out = Output(transcript=Transcript(), stdout=stream, status=StatusLine(stream))
    handlers: list[logging.Handler] = [out.transcript]
    logged = log_file is not None and log_file.stream is not None
    if log_file is not None and log_file.stream is not None:
        handlers.append(SafeStreamHandler(log_file.stream, out.lost))
        out.where = f"The whole output is in {log_file.path}."
    if not logged or stderr_is_journal():
        if not quiet:
            to_stdout = SafeStreamHandler(stream, out.lost, out.status)
            to_stdout.addFilter(_Below(logging.WARNING))
            handlers.append(to_stdout)
        to_stderr = SafeStreamHandler(sys.stderr, out.lost, out.status)
        to_stderr.setLevel(logging.WARNING)
        handlers.append(to_stderr)
    for handler in handlers:
        handler.setFormatter(formatter)
    instead = ""
    if log_file is not None and log_file.stream is None:
        handler, instead = _instead_of(log_file, out)
        handlers.append(handler)
    for handler in handlers:
        logger.addHandler(handler)
    if log_file is not None and instead:
        logger.error(
            "ERROR: cannot append to the log %s: %s; the command goes on, its lines go to %s;"
            " fix: %s",
            log_file.path,
            log_file.problem,
            instead,
            log_file.fix,
        )
    return out
