"""Failure mail: sent when a run fails, never when it succeeds or is skipped; an MTA that
is missing or refuses never changes the run's result.

The MTA here is a stand-in for ``/usr/sbin/sendmail`` that keeps its arguments and the
message exactly as an MTA receives them (``-t -oi``, the RFC 5322 text on stdin); the
Molecule ``e2e`` scenario delivers the same mail through a real exim4 into a mailbox.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
from pathlib import Path

from heartbeat import mail
from tests.conftest import DB_PASSWORD, Site, mailed, start_cli


def with_mail(site: Site, mta: Path, extra: str = "", **heartbeat: object) -> Path:
    ini = site.write_ini(**heartbeat)
    ini.write_text(
        ini.read_text()
        + "[monitoring]\nmail_to = ops@example.org, root\nmail_from = moodle@example.org\n"
        + f"sendmail = {mta}\n{extra}"
    )
    return ini


def test_a_failed_run_mails_what_it_printed(demo_site: Site, mta: Path) -> None:
    with_mail(demo_site, mta)
    demo_site.execute("DROP TABLE mdl_alt42_student_biometrics")
    result = demo_site.cli("run")
    assert result.returncode == 3
    [message] = mailed(mta)
    assert (mta.parent / "args").read_text() == "-t -oi\n"
    assert message["To"] == "ops@example.org, root"
    assert message["From"] == "moodle@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    raw = next((mta.parent / "outbox").iterdir()).read_text()
    subject = r"^Subject: alt42-heartbeat on \S+: run failed \(exit 3, database error\)$"
    assert re.search(subject, raw, re.MULTILINE), "the Subject on one line, not folded"
    body = message.get_content()
    error_line = result.stderr.strip().splitlines()[-1]
    assert "schema: table" in error_line and error_line in body
    assert DB_PASSWORD not in message.as_string()


def test_a_run_stopped_by_sigterm_mails_exit_4(demo_site: Site, mta: Path) -> None:
    demo_site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES (%s, UNIX_TIMESTAMP() - 60)",
        [(str(30000 + n),) for n in range(2000)],
    )
    ini = with_mail(demo_site, mta, batch_size=1)
    process = start_cli("--config", str(ini), "run", "--verbose")
    assert process.stdout is not None
    for line in process.stdout:
        if "] student " in line:
            process.send_signal(signal.SIGTERM)
            break
    process.stdout.read()
    assert process.wait(timeout=60) == 4
    [message] = mailed(mta)
    assert "run failed (exit 4, aborted by its deadline or a signal)" in message["Subject"]
    assert "Stopping early (SIGTERM received)" in message.get_content()


def test_success_and_skipped_runs_send_nothing(demo_site: Site, mta: Path) -> None:
    with_mail(demo_site, mta)
    first = demo_site.cli("run")
    assert first.returncode == 0 and "Completed: 8 processed" in first.stdout
    second = demo_site.cli("run")
    assert second.returncode == 0 and "Skipped:" in second.stdout
    assert mailed(mta) == []


def test_a_failed_dry_run_sends_nothing(demo_site: Site, mta: Path) -> None:
    with_mail(demo_site, mta)
    demo_site.execute("DROP TABLE mdl_alt42_student_biometrics")
    assert demo_site.cli("run", "--dry-run").returncode == 3
    assert mailed(mta) == []


def test_an_mta_that_refuses_never_changes_the_result(demo_site: Site, mta: Path) -> None:
    with_mail(demo_site, mta)
    demo_site.execute("DROP TABLE mdl_alt42_student_biometrics")
    result = demo_site.cli("run", env={"MTA_EXIT": "75"})
    assert result.returncode == 3
    assert "Failure mail not sent (" in result.stderr and "exited 75" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_mta_never_fails_a_good_run_and_check_names_it(
    demo_site: Site, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-sendmail"
    ini = demo_site.write_ini()
    ini.write_text(ini.read_text() + f"[monitoring]\nmail_to = root\nsendmail = {missing}\n")
    assert demo_site.cli("run").returncode == 0  # nothing to mail
    demo_site.execute("DROP TABLE mdl_alt42_student_biometrics")
    failed = demo_site.cli("run", "--force")
    assert failed.returncode == 3
    assert f"Failure mail not sent ({missing}: No such file or directory)" in failed.stderr
    check = demo_site.cli("check")
    assert check.returncode == 2
    assert f"[monitoring] sendmail = {missing} cannot be run" in check.stderr


def test_check_reports_the_mail_route(demo_site: Site, mta: Path) -> None:
    with_mail(demo_site, mta)
    result = demo_site.cli("check")
    assert result.returncode == 0, result.stderr
    assert f"OK failure mail to ops@example.org, root via {mta}" in result.stdout


def test_message_text() -> None:
    now = dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.timezone.utc)
    message = mail.failure_message(
        ["root"], None, 1, ["[..] Completed: 8 processed, 2 errors"], "The log.", "web1", now
    )
    assert message["Subject"] == (
        "alt42-heartbeat on web1: run failed (exit 1, some students failed, or the job's"
        " output could not be written)"
    )
    assert message["From"] is None  # the MTA chooses the sender
    body = message.get_content()
    assert "on web1 at 2026-12-01 07:30:00 UTC did not succeed" in body
    assert "    [..] Completed: 8 processed, 2 errors\n" in body
    assert "The log." in body
