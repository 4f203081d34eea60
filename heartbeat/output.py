"""Where the job's lines go: the standard ``logging`` module, set up once per command.

Every module logs to a child of the ``heartbeat`` logger; :func:`setup` (called by the
CLI only) decides where the lines go, as borgmatic does: INFO lines (and DEBUG with
``--verbose``) on stdout, which cron appends to the log, WARNING and ERROR on stderr,
each as ``[YYYY-MM-DD HH:MM:SS] message`` in UTC. A :class:`Transcript` keeps the last
lines for the failure mail. A stream that cannot take a line (a full disk under cron's
log, a closed pipe) is noted in :attr:`Output.lost` and never stops a run half-way.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional, TextIO

from heartbeat import mail

LOGGER_NAME = "heartbeat"
TRANSCRIPT_LINES = mail.TRANSCRIPT_LINES


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


def setup(verbose: bool = False, quiet: bool = False, stdout: Optional[TextIO] = None) -> Output:
    """Route the ``heartbeat`` logger for one command (replacing earlier handlers).

    ``quiet`` (``run --json``) keeps stdout for the JSON alone; errors still go to stderr.
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
    if not quiet:
        to_stdout = SafeStreamHandler(stream, out.lost, out.status)
        to_stdout.addFilter(_Below(logging.WARNING))
        handlers.append(to_stdout)
    to_stderr = SafeStreamHandler(sys.stderr, out.lost, out.status)
    to_stderr.setLevel(logging.WARNING)
    handlers.append(to_stderr)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return out
