"""Coordinating runs: one at a time per site, once per scheduled start, never hanging.

* The host lock: an advisory ``flock`` on a lock file of the site (the kernel drops it
  when the process dies, however it dies, so a crashed run never leaves it behind).
* The database lock and the slot: a named lock (``GET_LOCK``, as Moodle's own cron
  uses) keeps runs of several web servers from overlapping, and the run row's unique
  ``slot_start`` keeps a second server from running the same scheduled start again. On
  MariaDB Galera the named lock is per node (or refused), so the slot row decides alone:
  two servers claiming it on different nodes meet as a certification conflict, and the
  loser's retry finds the winner's row.
* Stopping: SIGTERM and SIGINT end a run at any moment with its row recorded
  ``aborted``; while they are held (:meth:`Signals.held`: the batches, recording the
  outcome) they are only noted, and the run stops after the batch in hand is committed.
  Past its deadline a run stops the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import pwd
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any, Optional

from heartbeat import db, schedule, store
from heartbeat.config import Config
from heartbeat.errors import EXIT_ABORTED, ConfigError, DatabaseError, HeartbeatError

log = logging.getLogger(__name__)


class HostLock:
    """Non-blocking exclusive lock; ``acquire`` returns False when another run holds it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self) -> bool:
        try:
            # Read-only is enough for flock. Never through a link.
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot open lock file {self.path}: {exc.strerror}; "
                "fix [heartbeat] lock_file or the directory's permissions"
            ) from None
        try:
            self._check_owner(fd)
        except ConfigError:
            os.close(fd)
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _check_owner(self, fd: int) -> None:
        """A lock file of another user (in a directory others can write to, such as
        /run/lock) lets that user hold the lock and make every run skip: refused. One
        this process owns is made readable by all (root running it by hand with umask 027
        left a file www-data could not open: every later run exited 2)."""
        info = os.fstat(fd)
        directory = os.stat(os.path.dirname(os.path.abspath(self.path)))
        if info.st_uid not in (os.geteuid(), 0, directory.st_uid):
            raise ConfigError(
                f"lock file {self.path} belongs to user {_user_name(info.st_uid)}, not to the"
                " job's user or root: another user could hold it and make every run skip;"
                " remove it, and keep the lock where only the job's user can create files"
                " ([heartbeat] lock_file)"
            )
        if info.st_uid == os.geteuid() and info.st_mode & 0o444 != 0o444:
            os.fchmod(fd, 0o644)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class Interrupted(HeartbeatError):
    """SIGTERM or SIGINT arrived: the run stops, recorded ``aborted`` (exit 4)."""

    exit_code = EXIT_ABORTED


class Signals:
    """SIGTERM/SIGINT while a command runs: raise :class:`Interrupted` where the command
    is, or, while held, note it (the batch loop then stops after the batch in hand).

    A second signal while the first is being handled is only noted, so that recording
    the outcome and releasing the locks are never cut short.
    """

    def __init__(self) -> None:
        self.received: Optional[str] = None
        self._held = 0

    def __call__(self, signum: int, _frame: Optional[FrameType]) -> None:
        first = self.received is None
        self.received = self.received or signal.Signals(signum).name
        if first and not self._held:
            raise Interrupted(f"{self.received} received")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Only note a signal inside the block (it is read by ``stop_reason``)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1


@contextlib.contextmanager
def stop_signals() -> Iterator[Signals]:
    """Catch SIGTERM and SIGINT for the duration of a command, then restore them."""
    handler = Signals()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class TimeLimitReached(DatabaseError):
    """The whole command took longer than it may (``status -t``)."""


@contextlib.contextmanager
def time_limit(seconds: int, message: str) -> Iterator[None]:
    """Raise :class:`TimeLimitReached` (``message``) where the command is once ``seconds``
    have passed: also inside a blocking socket read (the handler's exception ends the
    system call, PEP 475). Each statement has its own limit; a slow link made them add up
    (16.8 s for ``status``, past the 15 s its callers wait)."""

    def expired(_signum: int, _frame: Optional[FrameType]) -> None:
        raise TimeLimitReached(message)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def stop_reason(
    signals: Signals, deadline: float, max_minutes: int, lease: Optional[Lease] = None
) -> Optional[str]:
    """Why the run must stop before its next batch, if it must."""
    if signals.received:
        return f"{signals.received} received"
    if lease is not None and lease.lost:
        return "another server took this run over: its lease had expired"
    if time.monotonic() > deadline:
        return f"deadline of {max_minutes} min reached"
    return None


def slot_of(config: Config, moment: dt.datetime) -> dt.datetime:
    """The schedule slot (naive UTC) a run starting at ``moment`` belongs to."""
    settings = config.heartbeat
    if settings.schedule is not None:
        return schedule.slot_of(moment, settings.schedule)
    return schedule.interval_slot(moment, settings.interval_minutes)


def claim(
    conn: Any, config: Config, tables: db.Tables, run_id: str, run_start: dt.datetime, force: bool
) -> Optional[str]:
    """Take the site-wide lock and the slot; None when this server runs, else who does.

    ``force`` (a manual re-run) claims no slot: it runs even if the slot already ran.
    The named lock of a session whose run stopped renewing its lease (its server died,
    froze or lost the network: the database keeps such a session, and its lock, for
    15 minutes to hours, and forever for a frozen process) no longer stops the site: the
    lease decides, and the expired run is marked failed (which fences it off).
    """
    settings = config.heartbeat
    stale = run_start - dt.timedelta(minutes=settings.max_run_minutes, hours=1)
    if db.named_lock(conn, db.lock_name(config.database, "heartbeat")) is False:
        holder = store.live_run(conn, tables, stale, settings.lease_seconds)
        if holder:
            return f"a run on another server ({holder}; database lock held)"
        log.info(
            "The database lock is held by a session whose run stopped renewing its lease"
            " (%d s): taking over",
            settings.lease_seconds,
        )
    slot = None if force else slot_of(config, run_start)

    def attempt() -> Optional[str]:
        closed = store.close_stale_runs(conn, tables, stale, settings.lease_seconds)
        if closed:
            log.info("Marked %d run(s) failed whose lease had expired", closed)
        return store.claim_slot(conn, tables, run_id, run_start, slot, socket.gethostname())

    return db.retry_deadlocks(conn, attempt)


class Lease:
    """Keeps the run's claim alive: renews its row's lease every third of
    ``lease_seconds`` from a thread of its own, so that a long statement or a pacing wait
    never lets it lapse, and notes when another server took the run over (the run then
    stops before its next batch). It uses the writer's connection between two batches:
    a run needs no connection more than before."""

    def __init__(self, config: Config, writer: store.Writer) -> None:
        self.writer = writer
        self.period = config.heartbeat.lease_seconds / 3
        self.lost = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self, run_id: str) -> None:
        self._thread = threading.Thread(
            target=self._renew, args=(run_id,), name="heartbeat-lease", daemon=True
        )
        self._thread.start()

    def _renew(self, run_id: str) -> None:
        while not self._stop.wait(self.period):
            try:
                if not self.writer.renew_lease(run_id):
                    self.lost = True
                    return
            except db.DRIVER_ERRORS:
                continue  # the run's own statements report a real failure

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period + 5)
