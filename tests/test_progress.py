"""Progress on a terminal, under a real pseudo-terminal (util-linux ``script``), and
none at all where cron runs the job (stdout a file): the log stays as it was."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest

from tests.conftest import Site, cli_env

ERASE = "\r\x1b[K"


def on_terminal(site: Site, *args: str) -> str:
    """The job's output as a terminal shows it: ``script`` gives it a pty for stdout."""
    if shutil.which("script") is None:  # util-linux's bsdutils: essential on Debian
        pytest.fail("script (bsdutils) is missing")
    command = shlex.join(
        [sys.executable, "-m", "heartbeat", "--config", str(site.tmp / "heartbeat.ini"), *args]
    )
    done = subprocess.run(
        ["script", "--quiet", "--return", "--command", command, "/dev/null"],
        capture_output=True,  # bytes: text mode would turn each \r into \n
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.decode("utf-8")


def test_a_terminal_sees_one_line_redrawn_per_batch(demo_site: Site) -> None:
    demo_site.write_ini(batch_size=2)
    shown = on_terminal(demo_site, "run", "--dry-run")
    draws = [part for part in shown.split(ERASE)[1:] if part.startswith("Heartbeat: ")]
    assert [d.split(" students")[0] for d in draws] == [
        "Heartbeat: 2 of 8",
        "Heartbeat: 4 of 8",
        "Heartbeat: 6 of 8",
        "Heartbeat: 8 of 8",
    ], repr(shown)
    assert "/s, about " in draws[-1]
    # erased before the summary: the log line starts on a clean line
    tail = shown.split(ERASE)[-1]
    assert tail.lstrip("\r\n").startswith("[") and "Completed: 8 processed" in tail, repr(tail)
    assert "] Progress: " not in shown  # a terminal gets the redrawn line, not log lines


def test_no_progress_on_a_terminal_when_told(demo_site: Site) -> None:
    demo_site.write_ini(batch_size=2)
    shown = on_terminal(demo_site, "run", "--dry-run", "--no-progress")
    assert "\x1b" not in shown and "Heartbeat: " not in shown, repr(shown)
    assert "Completed: 8 processed" in shown


def test_under_cron_the_log_has_no_progress_and_no_control_characters(demo_site: Site) -> None:
    """As cron runs it: stdout and stderr appended to the log file, no terminal."""
    demo_site.write_ini(batch_size=2)
    log = demo_site.tmp / "heartbeat.log"
    command = shlex.join(
        [sys.executable, "-m", "heartbeat", "--config", str(demo_site.tmp / "heartbeat.ini"), "run"]
    )
    subprocess.run(
        ["/bin/sh", "-c", f"{command} >> {shlex.quote(str(log))} 2>&1"],
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=True,
    )
    text = log.read_bytes().decode("utf-8")  # as written: no newline translation
    assert "Completed: 8 processed" in text
    assert not any(ch in text for ch in "\r\x1b"), repr(text)
    assert "Progress" not in text and "Heartbeat: " not in text
    lines = text.splitlines()
    assert all(line.startswith("[") for line in lines), lines
