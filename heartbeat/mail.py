"""Failure mail: one message when a run did not succeed, never when it did.

The job's output goes to its log file under cron, so cron's own ``MAILTO`` never sees
it; the job mails by itself instead, through the host's MTA (``sendmail -t -oi``, which
exim4, postfix, msmtp-mta and nullmailer all provide) with the lines that run printed.
Like the pings, mail is best effort: an MTA that is missing or refuses costs one line on
stderr and never changes the run's exit code.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import socket
import subprocess
from collections.abc import Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Optional

from heartbeat.errors import EXIT_MEANINGS, EXIT_OK

if TYPE_CHECKING:
    from heartbeat.config import Config
    from heartbeat.hooks import Run, State

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 30
TRANSCRIPT_LINES = 100  # the run's last lines a mail holds (a --verbose run prints many)


def notify(config: Config, state: State, run: Run, dry_run: bool) -> None:
    """The monitoring hook (``heartbeat.hooks``): a run that ended with an exit code other
    than 0 (``fail``, or ``finish`` with failed students or lost output) mails the lines
    it printed to ``[monitoring] mail_to``."""
    monitoring = config.monitoring
    if dry_run or state == "start" or run.exit_code == EXIT_OK or not monitoring.mail_to:
        return
    message = failure_message(
        monitoring.mail_to, monitoring.mail_from, run.exit_code, run.transcript, run.log_hint
    )
    send(monitoring.sendmail, message)


def failure_message(
    to: Sequence[str],
    sender: Optional[str],
    exit_code: int,
    transcript: Sequence[str],
    log_hint: str,
    host: Optional[str] = None,
    now: Optional[dt.datetime] = None,
) -> EmailMessage:
    """The mail for a run that ended with ``exit_code`` (not 0), with its output lines."""
    host = host or socket.gethostname()  # as in the run's heartbeat_log row
    now = now or dt.datetime.now(dt.timezone.utc)
    meaning = EXIT_MEANINGS.get(exit_code, "unexpected exit code")
    message = EmailMessage()
    message["To"] = ", ".join(to)
    if sender:
        message["From"] = sender
    message["Subject"] = f"alt42-heartbeat on {host}: run failed (exit {exit_code}, {meaning})"
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = email.utils.make_msgid(domain=host)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    lines = [
        f"The ALT42 heartbeat run on {host} at {now:%Y-%m-%d %H:%M:%S} UTC did not succeed.",
        "",
        f"Exit code {exit_code}: {meaning}.",
        "",
        f"What the run printed (its last {TRANSCRIPT_LINES} lines at most):",
        "",
        *(f"    {line}" for line in transcript),
        "",
        log_hint,
        "Run history: alt42-heartbeat report. This mail is sent only for runs that fail.",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def send(sendmail: str, message: EmailMessage) -> bool:
    """Hand ``message`` to the MTA; True when it accepted it. Failures are reported."""
    try:
        result = subprocess.run(  # noqa: S603 - an argv list, no shell; the operator's path
            [sendmail, "-t", "-oi"],  # recipients from the To: header, a lone "." is text
            # Headers unfolded up to RFC 5322's 998: a folded Subject reads badly.
            input=message.as_bytes(policy=message.policy.clone(max_line_length=998)),
            capture_output=True,
            timeout=SEND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        problem = getattr(exc, "strerror", None) or type(exc).__name__
        log.warning(
            "Failure mail not sent (%s: %s); the run's result is unchanged", sendmail, problem
        )
        return False
    if result.returncode != 0:
        said = " ".join(result.stderr.decode("utf-8", "replace").split())[:200]
        log.warning(
            "Failure mail not sent (%s exited %d%s); the run's result is unchanged",
            sendmail,
            result.returncode,
            ": " + said if said else "",
        )
        return False
    return True
