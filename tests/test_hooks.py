"""The monitoring hooks (``heartbeat.hooks``): ping, metrics file and failure mail are
modules of one shape, told alike how a run started and ended, never able to change it.

Each hook's own behaviour is tested beside it: ``test_ping.py``, ``test_metrics.py``,
``test_mail.py`` (and a real run's pings and metrics in ``test_cluster.py``).
"""

from __future__ import annotations

import inspect
import logging
import signal
import socket
import types
from pathlib import Path

import pytest

from heartbeat import hooks, mail, metrics, ping
from heartbeat.config import load_config
from heartbeat.run import RunSummary
from tests.conftest import Monitor, Site, mailed, start_cli


def monitored(site: Site, monitor: str, mta: Path, prom: Path) -> Path:
    ini = site.write_ini()
    ini.write_text(
        ini.read_text() + f"[monitoring]\nping_url = {monitor}\nping_retries = 0\n"
        f"metrics_file = {prom}\nmail_to = root\nsendmail = {mta}\n"
    )
    return ini


def test_every_hook_is_a_module_with_the_same_notify() -> None:
    assert (ping, metrics, mail) == hooks.HOOKS
    shapes = {str(inspect.signature(hook.notify)) for hook in hooks.HOOKS}
    assert shapes == {"(config: 'Config', state: 'State', run: 'Run', dry_run: 'bool') -> 'None'"}


def test_one_failed_run_is_told_to_every_hook(
    demo_site: Site, monitor: str, mta: Path, tmp_path: Path
) -> None:
    prom = tmp_path / "alt42.prom"
    monitored(demo_site, monitor, mta, prom)
    demo_site.execute("DROP TABLE mdl_alt42_student_biometrics")
    result = demo_site.cli("run")
    assert result.returncode == 3
    assert Monitor.hits == ["/ping/abc-123/3?rid="]
    assert 'alt42_heartbeat_status{status="failed"} 1' in prom.read_text()
    [message] = mailed(mta)
    assert "exit 3, database error" in message["Subject"]


def test_a_dry_run_tells_no_hook(demo_site: Site, monitor: str, mta: Path, tmp_path: Path) -> None:
    prom = tmp_path / "alt42.prom"
    monitored(demo_site, monitor, mta, prom)
    assert demo_site.cli("run", "--dry-run").returncode == 0
    demo_site.execute("DROP TABLE mdl_alt42_student_biometrics")
    assert demo_site.cli("run", "--dry-run").returncode == 3
    assert Monitor.hits == []
    assert not prom.exists()
    assert mailed(mta) == []


def test_a_hook_that_breaks_unforeseen_is_one_warning_and_the_others_still_run(
    demo_site: Site,
    monitor: str,
    mta: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stand-in hook that raises what no hook catches: the dispatcher reports it in one
    line and goes on to the real ones."""

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug in a hook")

    stand_in = types.ModuleType("heartbeat.broken")
    stand_in.notify = broken  # type: ignore[attr-defined]
    monkeypatch.setattr(hooks, "HOOKS", (stand_in, *hooks.HOOKS))
    config = load_config(str(monitored(demo_site, monitor, mta, tmp_path / "alt42.prom")))
    failed = RunSummary(run_id="", status="failed")
    with caplog.at_level(logging.WARNING):
        hooks.notify(config, "fail", hooks.Run(summary=failed, exit_code=3, error="x"), False)
    assert [record.getMessage() for record in caplog.records] == [
        "Monitoring hook broken failed (RuntimeError: a bug in a hook); the run itself is"
        " not affected"
    ]
    assert Monitor.hits == ["/ping/abc-123/3?rid="]
    assert len(mailed(mta)) == 1


def test_sigterm_while_a_ping_waits_on_a_silent_monitor_stops_the_run(demo_site: Site) -> None:
    """A monitor that accepts and never answers: SIGTERM during the start ping stops the
    run there (aborted, exit 4, nothing processed), as anywhere else. A hook's own catch
    once took the signal for a failed ping, and the run went on."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        ini = demo_site.write_ini()
        ini.write_text(
            ini.read_text() + f"[monitoring]\nping_url = http://127.0.0.1:"
            f"{silent.getsockname()[1]}/ping/x\nping_timeout_seconds = 5\nping_retries = 0\n"
        )
        process = start_cli("--config", str(ini), "run")
        silent.settimeout(60)
        connection, _ = silent.accept()  # the start ping is waiting for its answer
        with connection:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 4, err
    assert "Monitor ping 'start' failed" not in err
    assert "SIGTERM received" in err
    [(status, processed)] = demo_site.query(
        "SELECT status, students_processed FROM mdl_alt42_heartbeat_log"
    )
    assert (status, processed) == ("aborted", 0), out
