"""Reliability over months (issue 21): faults that cost a site its runs, each tried for
real (docs/reliability.md's fault table lists them with the figures before and after)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import Site

# --------------------------------------------------------------------------- monitors


@pytest.fixture
def garbage_monitor() -> Iterator[str]:
    """A "monitor" on loopback that answers every request with something not HTTP."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2 not a web server\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/ping/abc"
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_a_monitor_that_answers_garbage_never_changes_the_run(
    demo_site: Site, garbage_monitor: str
) -> None:
    """Before: BadStatusLine escaped the ping, the run exited 5 with a traceback and was
    recorded failed with 0 students."""
    ini = demo_site.write_ini(
        sections={"monitoring": {"ping_url": garbage_monitor, "ping_retries": 0}}
    )
    result = demo_site.cli("run")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "Monitor ping" in line]
    assert len(warnings) == 2, result.stderr  # start and success, one line each
    assert "BadStatusLine" in warnings[0] and "/ping/abc" not in warnings[0]
    assert demo_site.query(
        "SELECT status, students_processed FROM mdl_alt42_heartbeat_log"
    ) == [("success", 8)]
    assert ini.exists()


@pytest.mark.parametrize(
    "url", ["http://[::1/ping", "https://monitor.example.org:/ping", "https://host:99999/x"]
)
def test_a_ping_url_urllib_cannot_send_to_is_refused_when_read(demo_site: Site, url: str) -> None:
    demo_site.write_ini(sections={"monitoring": {"ping_url": url}})
    result = demo_site.cli("check", "--config-only")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.endswith(
        "[monitoring] ping_url is not an http(s) URL; set e.g. https://hc-ping.com/<uuid>"
        " or remove the key"
    )
    assert url not in line  # the URL holds the check's secret
