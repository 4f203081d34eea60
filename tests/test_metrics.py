"""The node_exporter textfile (``heartbeat.metrics``): written atomically, the last success
kept across failed runs. What the alert rules read from it: ``test_monitoring.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartbeat import metrics


def test_metrics_textfile_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "alt42_heartbeat.prom"
    content = metrics.render(
        metrics.Figures("success", 1800000000.5, 2500, students_found=812, students=812),
        1800000000.5,
    )
    metrics.write_atomically(str(path), content)
    text = path.read_text()
    assert "alt42_heartbeat_last_success_timestamp_seconds 1800000000.500" in text
    assert "alt42_heartbeat_last_duration_seconds 2.500" in text
    assert "alt42_heartbeat_students_processed 812" in text
    assert 'alt42_heartbeat_status{status="success"} 1' in text
    assert 'alt42_heartbeat_status{status="failed"} 0' in text
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert metrics.previous_success(str(path)) == pytest.approx(1800000000.5)
    failed = metrics.render(
        metrics.Figures("failed", 1800001800.0, 10), metrics.previous_success(str(path))
    )
    metrics.write_atomically(str(path), failed)
    assert "alt42_heartbeat_last_success_timestamp_seconds 1800000000.500" in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["alt42_heartbeat.prom"]  # no temp left
    assert metrics.previous_success(str(tmp_path / "none.prom")) is None
