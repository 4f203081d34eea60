"""The dead-man's switch ping (``heartbeat.ping``): its URLs, retries, and a dead monitor
reported in one line, never raised. Pings of a real run: ``test_cluster.py``."""

from __future__ import annotations

from heartbeat import ping
from tests.conftest import Monitor, job_lines


def test_ping_urls_and_retries(monitor: str) -> None:
    with job_lines() as said:
        assert ping.send(monitor, "start", "run-1", timeout=2, retries=0)
        assert ping.send(monitor, "success", "run-1", timeout=2, retries=0)
        assert ping.send(monitor, "3", "run-2", timeout=2, retries=0)
        assert Monitor.hits == [
            "/ping/abc-123/start?rid=run-1",
            "/ping/abc-123?rid=run-1",
            "/ping/abc-123/3?rid=run-2",
        ]
        Monitor.fail_first = 1
        assert ping.send(monitor, "fail", "run-3", timeout=2, retries=1)
        assert said == []
        assert ping.send(None, "start", "run-4") is False


def test_ping_to_a_dead_monitor_is_reported_not_raised() -> None:
    dead = "http://127.0.0.1:9/ping/x"  # discard port: connection refused at once
    with job_lines() as said:
        assert ping.send(dead, "start", "r", timeout=1, retries=1) is False
    assert len(said) == 1 and "Monitor ping 'start' failed" in said[0]
    assert "/ping/x" not in said[0]  # the check's URL can be a secret
