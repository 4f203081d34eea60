"""`alt42-heartbeat prune` (``heartbeat.retention``): old rows deleted in batches, recent
ones kept, one server pruning at a time. The summary's days: ``test_daily.py``; the
retention settings: ``test_config.py``."""

from __future__ import annotations

from heartbeat import db
from tests.conftest import Site


def test_prune_deletes_old_rows_in_batches_and_keeps_recent_ones(demo_site: Site) -> None:
    assert demo_site.cli("run").returncode == 0
    old = "UTC_TIMESTAMP() - INTERVAL 100 DAY"
    demo_site.executemany(
        "INSERT INTO mdl_alt42_scenario_evaluation_log (scenario_id, student_id, rules_count,"
        " evaluation_mode, evaluation_result, evaluated_at)"
        f" VALUES (%s, %s, 0, 'x', '{{}}', {old})",
        [("S0", str(n)) for n in range(250)],
    )
    demo_site.executemany(
        "INSERT INTO mdl_alt42_event_processing_log (event_id, event_type, student_id,"
        f" status, created_at) VALUES (%s, 'x', %s, 'completed', {old})",
        [(f"e{n}", str(n)) for n in range(120)],
    )
    demo_site.execute(
        f"INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at) VALUES ({old}, {old})"
    )
    demo_site.write_ini()
    ini = demo_site.tmp / "heartbeat.ini"
    ini.write_text(ini.read_text() + "[retention]\ndays = 90\nbatch_size = 100\n")
    result = demo_site.cli("prune")
    assert result.returncode == 0, result.stderr
    assert "Pruned 250 row(s) from mdl_alt42_scenario_evaluation_log" in result.stdout
    assert "Pruned 120 row(s) from mdl_alt42_event_processing_log" in result.stdout
    assert "Pruned 1 row(s) from mdl_alt42_heartbeat_log" in result.stdout
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_scenario_evaluation_log") == 40
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_event_processing_log") == 8
    assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1
    assert "0 row(s) deleted" in demo_site.cli("prune", "--days", "1").stdout


def test_prune_skips_while_another_server_prunes(demo_site: Site) -> None:
    """Every web server schedules prune at the same minute: the named lock lets one work."""
    old = "UTC_TIMESTAMP() - INTERVAL 500 DAY"  # past the run rows' 400 days
    demo_site.execute(
        f"INSERT INTO mdl_alt42_heartbeat_log (execution_time, created_at) VALUES ({old}, {old})"
    )
    name = db.lock_name(demo_site.config().database, "prune")
    with demo_site.conn() as other, other.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        assert cur.fetchone()[0] == 1
        held = demo_site.cli("prune")
        assert held.returncode == 0, held.stderr
        assert "Skipped: another server is pruning" in held.stdout
        assert demo_site.scalar("SELECT COUNT(*) FROM mdl_alt42_heartbeat_log") == 1
    freed = demo_site.cli("prune")  # the lock went with the other session
    assert "Pruned 1 row(s) from mdl_alt42_heartbeat_log" in freed.stdout
