"""What the job's rows cost a site over months (issue 22): retention split by what is
kept, the tables' sizes shown and budgeted, the per-student tables created compressed.

Real MariaDB; the sizes are the server's own (information_schema)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heartbeat import config as config_module
from heartbeat import schema, sizes
from heartbeat.errors import ConfigError
from tests import plugin_readers
from tests.conftest import DB_PASSWORD, ROLE, Site, make_site, role_adhoc, start_cli
from tests.mariadb_server import MariaDBServer
from tests.test_plugin_tables import PLUGIN_LOG_TABLES

EVALUATIONS = "mdl_alt42_scenario_evaluation_log"
EVENTS = "mdl_alt42_event_processing_log"
RUNS = "mdl_alt42_heartbeat_log"
DAILY = "mdl_alt42_heartbeat_daily"
OWN_TABLES = (EVALUATIONS, EVENTS, RUNS, DAILY)


def _age_rows(site: Site, days: int, count: int = 3) -> None:
    """``count`` rows of each table dated ``days`` ago (as a site's history has them)."""
    old = f"UTC_TIMESTAMP() - INTERVAL {days} DAY"
    site.executemany(
        f"INSERT INTO {EVALUATIONS} (scenario_id, student_id, rules_count, evaluation_mode,"
        f" evaluation_result, evaluated_at) VALUES ('S0', %s, 0, 'x', '{{}}', {old})",
        [(f"s{days}-{n}",) for n in range(count)],
    )
    site.executemany(
        f"INSERT INTO {EVENTS} (event_id, event_type, student_id, status, created_at)"
        f" VALUES (%s, 'x', %s, 'completed', {old})",
        [(f"e{days}-{n}", f"s{days}-{n}") for n in range(count)],
    )
    site.execute(f"INSERT INTO {RUNS} (execution_time, created_at) VALUES ({old}, {old})")


def _counts(site: Site, days: int) -> tuple[int, int, int]:
    """Rows of each table (evaluations, events, runs) dated about ``days`` ago."""
    between = "BETWEEN UTC_TIMESTAMP() - INTERVAL {} DAY - INTERVAL 1 HOUR AND UTC_TIMESTAMP()"
    between += " - INTERVAL {} DAY + INTERVAL 1 HOUR"
    window = between.format(days, days)
    return (
        site.scalar(f"SELECT COUNT(*) FROM {EVALUATIONS} WHERE evaluated_at {window}"),
        site.scalar(f"SELECT COUNT(*) FROM {EVENTS} WHERE created_at {window}"),
        site.scalar(f"SELECT COUNT(*) FROM {RUNS} WHERE created_at {window}"),
    )


def test_prune_keeps_run_rows_for_long_and_per_student_rows_for_the_readers_window(
    demo_site: Site,
) -> None:
    """At the defaults: the per-student rows 35 days (the plugin's pages read 30 at
    most), the run rows (one a run, what report's months of history read) 400 days."""
    for days in (20, 40, 300, 500):
        _age_rows(demo_site, days)
    demo_site.write_ini()
    result = demo_site.cli("prune")
    assert result.returncode == 0, result.stderr
    assert "keeping 400 day(s) of run rows, 35 of per-student rows" in result.stdout
    assert _counts(demo_site, 20) == (3, 3, 1)
    assert _counts(demo_site, 40) == (0, 0, 1)
    assert _counts(demo_site, 300) == (0, 0, 1)
    assert _counts(demo_site, 500) == (0, 0, 0)


def test_a_site_that_set_days_alone_keeps_every_row_that_long(demo_site: Site) -> None:
    """A default never shortens what a site chose: before detail_days existed, days was
    the retention of every row."""
    for days in (40, 100):
        _age_rows(demo_site, days)
    demo_site.write_ini(sections={"retention": {"days": 90}})
    result = demo_site.cli("prune")
    assert result.returncode == 0, result.stderr
    assert "keeping 90 day(s) of run rows, 90 of per-student rows" in result.stdout
    assert _counts(demo_site, 40) == (3, 3, 1)
    assert _counts(demo_site, 100) == (0, 0, 0)
    demo_site.write_ini(sections={"retention": {"days": 90, "detail_days": 31}})
    assert demo_site.cli("prune").returncode == 0
    assert _counts(demo_site, 40) == (0, 0, 1)


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        (
            "days = 30\ndetail_days = 60",
            "[retention] detail_days = 60 is longer than days = 30: the per-student rows would"
            " outlive their runs; set days to 60 or more, or detail_days to at most days",
        ),
        ("detail_days = 0", "[retention] detail_days = 0 is out of range"),
        ("max_size = 1.5G", "[retention] max_size = '1.5G' is not a size"),
        ("max_size = 0", "[retention] max_size = '0' is not a size"),
        ("max_size = -5G", "[retention] max_size = '-5G' is not a size"),
    ],
)
def test_retention_settings_are_checked_with_one_line(
    tmp_path: Path, retention: str, message: str
) -> None:
    ini = tmp_path / "heartbeat.ini"
    ini.write_text(f"[database]\nname = moodle\nuser = moodle\n[retention]\n{retention}\n")
    with pytest.raises(ConfigError) as raised:
        config_module.load_config(str(ini), environ={})
    assert str(raised.value).startswith(f"{ini}: {message}")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ("20G", 20 * 1024**3),
        ("20 GB", 20 * 1024**3),
        ("20GiB", 20 * 1024**3),
        ("512m", 512 * 1024**2),
        ("1T", 1024**4),
        ("900", 900),
    ],
)
def test_max_size_takes_the_units_du_prints(tmp_path: Path, raw: str, size: int) -> None:
    ini = tmp_path / "heartbeat.ini"
    ini.write_text(f"[database]\nname = moodle\nuser = moodle\n[retention]\nmax_size = {raw}\n")
    assert config_module.load_config(str(ini), environ={}).retention.max_size == size


def _a_days_rows(site: Site, students: int) -> None:
    """A day of rows for ``students`` students (as 48 runs of a small site leave them):
    enough pages for the server's per-row figure to mean something."""
    site.execute(
        f"INSERT INTO {EVALUATIONS} (event_id, scenario_id, student_id, rules_count,"
        " evaluation_mode, evaluation_result, evaluated_at) SELECT UUID(), 'S2', seq % 997, 2,"
        ' \'all_matching\', \'{"scenario_id": "S2", "rules_matched": 0}\','
        f" UTC_TIMESTAMP() - INTERVAL seq SECOND FROM seq_1_to_{5 * students}"
    )
    site.execute(
        f"INSERT INTO {EVENTS} (event_id, event_type, student_id, scenarios_evaluated,"
        " routing_result, status, processed_at, created_at) SELECT UUID(), 'cron.heartbeat_30m',"
        " seq % 997, 5, '{\"selected_agent\": \"agent10\"}', 'completed', UTC_TIMESTAMP(),"
        f" UTC_TIMESTAMP() - INTERVAL seq SECOND FROM seq_1_to_{students}"
    )
    site.execute(f"ANALYZE TABLE {EVALUATIONS}, {EVENTS}, {RUNS}")


def test_report_shows_each_tables_size_growth_and_size_to_come(demo_site: Site) -> None:
    demo_site.write_ini()
    assert demo_site.cli("run").returncode == 0
    students = demo_site.scalar(f"SELECT students_processed FROM {RUNS}")
    _a_days_rows(demo_site, 15000)
    result = demo_site.cli("report", "--tables", "--format", "json")
    assert result.returncode == 0, result.stderr
    tables = {row["table"]: row for row in json.loads(result.stdout)["tables"]}
    assert list(tables) == [EVALUATIONS, EVENTS, RUNS, DAILY]
    assert tables[EVALUATIONS]["rows_last_day"] == 5 * (15000 + students)
    assert tables[EVENTS]["rows_last_day"] == 15000 + students
    assert tables[RUNS]["rows_last_day"] == 1
    assert [row["keep_days"] for row in tables.values()] == [35, 35, 400, 400]
    for row in (tables[EVALUATIONS], tables[EVENTS]):
        assert row["bytes"] >= sizes.MIN_BYTES_TO_ESTIMATE
        per_row = row["bytes"] / row["rows"]
        assert row["growth_bytes_per_day"] == round(row["rows_last_day"] * per_row)
        assert row["projected_bytes"] == round(row["rows_last_day"] * per_row * 35)
    # one run row in a few empty pages: no per-row figure to project from
    assert tables[RUNS]["bytes"] > 0
    assert tables[RUNS]["projected_bytes"] is None
    text = demo_site.cli("report").stdout
    assert "Runs in the last 24 hour(s):" in text and "Per day over the last 7 day(s)" in text
    line = next(line for line in text.splitlines() if line.startswith(EVENTS))
    assert line.split()[-2:] == [
        f"{tables[EVENTS]['projected_bytes'] / 1024**2:.1f}",
        "MiB",
    ], text
    run_line = next(line for line in text.splitlines() if line.startswith(RUNS))
    assert run_line.split()[-2:] == ["400", "-"], text


def test_check_warns_when_the_tables_would_pass_max_size(demo_site: Site) -> None:
    demo_site.write_ini()
    assert demo_site.cli("run").returncode == 0
    _a_days_rows(demo_site, 15000)
    fits = demo_site.cli("check")
    assert fits.returncode == 0, fits.stderr
    assert "OK table sizes: " in fits.stdout and "at the retention settings" in fits.stdout
    demo_site.write_ini(sections={"retention": {"max_size": "10M"}})
    over = demo_site.cli("check")
    assert over.returncode == 0, over.stderr
    output = over.stdout + over.stderr
    assert "OK table sizes" not in output
    warnings = [line for line in output.splitlines() if "WARNING:" in line]
    assert len(warnings) == 1, output
    assert "more than [retention] max_size (10.0 MiB)" in warnings[0]
    assert f"most of it is {EVALUATIONS}" in warnings[0]
    assert "lower [retention] detail_days" in warnings[0]
    demo_site.write_ini(sections={"retention": {"max_size": "10T"}})
    assert "(max_size 10.0 TiB)" in demo_site.cli("check").stdout


def _options(site: Site) -> dict[str, str]:
    return dict(
        site.query(
            "SELECT TABLE_NAME, CREATE_OPTIONS FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN %s",
            (OWN_TABLES,),
        )
    )


def test_tables_migrate_creates_are_compressed(site: Site) -> None:
    result = site.cli("migrate")
    assert result.returncode == 0, result.stderr
    assert f"created table {EVENTS} (compressed)" in result.stdout
    options = _options(site)
    assert schema.is_compressed(options[EVALUATIONS])
    assert schema.is_compressed(options[EVENTS])
    assert not schema.is_compressed(options[RUNS])  # a row per run: nothing to gain


def test_a_server_that_cannot_compress_gets_plain_tables_and_one_line(site: Site) -> None:
    with site.server.connect() as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL innodb_file_per_table = OFF")
        try:
            result = site.cli("migrate")
        finally:
            cur.execute("SET GLOBAL innodb_file_per_table = ON")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "uncompressed" in line]
    assert "innodb_file_per_table is OFF" in line
    assert "(compressed)" not in result.stdout
    assert not any(schema.is_compressed(options) for options in _options(site).values())
    # a later migrate on a capable server leaves the tables as they are (only when asked)
    assert site.cli("migrate").stdout.strip().endswith("Schema is up to date (no change)")


def test_the_metrics_file_holds_each_tables_bytes(demo_site: Site, tmp_path: Path) -> None:
    metrics = tmp_path / "alt42_heartbeat.prom"
    demo_site.write_ini(sections={"monitoring": {"metrics_file": metrics}})
    assert demo_site.cli("run").returncode == 0
    written = dict(
        re.findall(
            r'^alt42_heartbeat_table_bytes\{table="([^"]+)"\} ([0-9]+)$', metrics.read_text(), re.M
        )
    )
    server = dict(
        demo_site.query(
            "SELECT TABLE_NAME, DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN %s",
            (OWN_TABLES,),
        )
    )
    assert written == {name: str(size) for name, size in server.items()}
    assert set(written) == set(OWN_TABLES)


@pytest.mark.parametrize(("release", "written"), [("0.4.0", True), ("0.3.0", False)])
def test_the_role_writes_the_retention_keys_a_release_knows(
    tmp_path: Path, release: str, written: bool
) -> None:
    """The role's template (real Ansible) writes detail_days and max_size for a release
    that knows them, and the job reads them back; an older release (a roll back) would
    refuse them, so it gets neither."""
    out = tmp_path / "heartbeat.ini"
    role_adhoc(
        "ansible.builtin.template",
        f"src={ROLE / 'templates' / 'heartbeat.ini.j2'} dest={out}",
        {
            "alt42_heartbeat_db_name": "moodle",
            "alt42_heartbeat_db_user": "alt42",
            "alt42_heartbeat_retention_days": 120,
            "alt42_heartbeat_retention_detail_days": 31,
            "alt42_heartbeat_retention_max_size": "20G",
            "__alt42_heartbeat_target_version": release,
            "__alt42_heartbeat_schedule": "*/30 * * * *",
        },
    )
    out.chmod(0o600)
    retention = config_module.load_config(str(out), environ={}).retention
    if written:
        assert (retention.days, retention.detail_days) == (120, 31)
        assert retention.max_size == 20 * 1024**3
    else:
        assert "detail_days" not in out.read_text() and "max_size" not in out.read_text()
        assert (retention.days, retention.detail_days, retention.max_size) == (120, 120, None)


# ------------------------------------------------------------------ the readers' answers

#: Minutes back at which a site's history holds a copy of the runs' rows: inside and
#: outside each window the plugin's pages use (1 h, 24 h, 7 days, 30 days), and past the
#: 35 days prune now keeps.
HISTORY_MINUTES = (20, 150, 60 * 20, 60 * 24 * 3, 60 * 24 * 8, 60 * 24 * 29, 60 * 24 * 33,
                   60 * 24 * 40, 60 * 24 * 60, 60 * 24 * 85)  # fmt: skip
EVENT_COLUMNS = (
    "id, event_id, event_type, student_id, scenarios_evaluated, scenario_results,"
    " routing_result, priority, status, processed_at, created_at, run_id"
)


def _history(site: Site) -> None:
    """Three runs of the job, their rows copied back in time as a site's history holds
    them, one event in seven failed (the pages list the failures)."""
    site.write_ini()
    for _ in range(3):
        assert site.cli("run", "--force").returncode == 0
    columns = EVENT_COLUMNS.replace("id, event_id", "event_id").replace(
        "processed_at, created_at",
        "processed_at - INTERVAL %s MINUTE, created_at - INTERVAL %s MINUTE",
    )
    plain = EVENT_COLUMNS.replace("id, event_id", "event_id")
    for minutes in HISTORY_MINUTES:
        site.execute(
            f"INSERT INTO {EVENTS} ({plain}) SELECT {columns} FROM {EVENTS}"
            " WHERE created_at > UTC_TIMESTAMP() - INTERVAL 10 MINUTE",
            (minutes, minutes),
        )
        site.execute(
            f"INSERT INTO {RUNS} (execution_time, students_processed, errors, duration_ms,"
            " created_at, status) SELECT execution_time - INTERVAL %s MINUTE,"
            " students_processed, errors, duration_ms, created_at - INTERVAL %s MINUTE, status"
            f" FROM {RUNS} WHERE created_at > UTC_TIMESTAMP() - INTERVAL 10 MINUTE",
            (minutes, minutes),
        )
    site.execute(f"UPDATE {EVENTS} SET status = 'failed' WHERE id % 7 = 0")


def _answers(site: Site) -> dict[str, list[tuple[object, ...]]]:
    with site.conn() as conn, conn.cursor() as cur:
        return plugin_readers.answers(cur, EVENTS.replace("mdl_", site.prefix))


def test_the_plugins_pages_answer_the_same_from_the_new_tables_and_after_prune(
    demo_site: Site, mariadb: MariaDBServer, tmp_path: Path
) -> None:
    """Every question of the plugin's monitoring pages (22 agents; 1 h, 24 h, 7 and 30
    days; the newest rows) gets the same answer from the tables as this release creates
    them (compressed, fewer indexes) as from the plugin's own tables holding the same
    rows; after prune at the defaults every windowed answer, and the run history's
    (report, status), is what it was before."""
    _history(demo_site)
    (tmp_path / "plugin").mkdir()
    plugin = make_site(mariadb, tmp_path / "plugin", demo=True)
    try:
        for statement in PLUGIN_LOG_TABLES:
            plugin.execute(statement)
        plugin.migrate()
        plugin.execute(
            f"INSERT INTO {EVENTS} ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS}"
            f" FROM `{demo_site.name}`.{EVENTS}"
        )
        new, old = _answers(demo_site), _answers(plugin)
    finally:
        mariadb.drop_database(plugin.name)
    assert len(new) == 22 * len(plugin_readers.PER_AGENT) + 4 * 2 + 2
    routed = [what for what, rows in new.items() if what.endswith("newest 100") and rows]
    assert len(routed) >= 6, new  # the demo's students reach several agents
    for window in plugin_readers.WINDOWS:
        assert new[f"totals, {window}"][0][0] > 0
    assert new == old
    report = [
        demo_site.cli("report", span, "--format", "json").stdout
        for span in ("--hours=24", "--days=7")
    ]
    state = demo_site.cli("status").returncode
    pruned = demo_site.cli("prune")
    assert "keeping 400 day(s) of run rows, 35 of per-student rows" in pruned.stdout
    assert (
        demo_site.scalar(
            f"SELECT COUNT(*) FROM {EVENTS} WHERE created_at < UTC_TIMESTAMP() - INTERVAL 36 DAY"
        )
        == 0
    )
    after = _answers(demo_site)
    windowed = [what for what in new if "newest" not in what]
    assert {what: after[what] for what in windowed} == {what: new[what] for what in windowed}
    assert [
        demo_site.cli("report", span, "--format", "json").stdout
        for span in ("--hours=24", "--days=7")
    ] == report
    assert demo_site.cli("status").returncode == state


def test_report_shows_the_files_bytes_where_the_server_shows_them(
    demo_site: Site, mariadb: MariaDBServer
) -> None:
    """Page compression saves bytes only in the files: with PROCESS the job reads their
    size on disk; without it, the pages' (what information_schema.TABLES says)."""
    demo_site.write_ini()
    assert demo_site.cli("run").returncode == 0
    _a_days_rows(demo_site, 15000)
    with demo_site.conn() as conn, conn.cursor() as cur:  # the pages written to the files
        cur.execute(f"FLUSH TABLES {EVALUATIONS}, {EVENTS} FOR EXPORT")
        cur.execute("UNLOCK TABLES")
    pages = dict(
        demo_site.query(
            "SELECT TABLE_NAME, DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN %s",
            (OWN_TABLES,),
        )
    )
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT SUBSTRING_INDEX(NAME, '/', -1), ALLOCATED_SIZE"
            " FROM information_schema.INNODB_SYS_TABLESPACES WHERE NAME LIKE %s",
            (f"{demo_site.name}/%",),
        )
        files = dict(cur.fetchall())

    def reported() -> dict[str, int]:
        result = demo_site.cli("report", "--tables", "--format", "json")
        assert result.returncode == 0, result.stderr
        return {row["table"]: row["bytes"] for row in json.loads(result.stdout)["tables"]}

    assert reported() == {name: pages[name] for name in OWN_TABLES}
    mariadb.create_user("alt42_sizes", "sizes-pw", f"GRANT ALL ON `{demo_site.name}`.* TO {{user}}")
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("GRANT PROCESS ON *.* TO 'alt42_sizes'@'localhost'")
    demo_site.write_ini()
    ini = demo_site.tmp / "heartbeat.ini"
    text = ini.read_text().replace("user = alt42\n", "user = alt42_sizes\n")
    ini.write_text(text.replace(f"password = {DB_PASSWORD}", "password = sizes-pw"))
    on_disk = reported()
    assert on_disk == {name: files[name] for name in OWN_TABLES}
    assert on_disk[EVALUATIONS] < pages[EVALUATIONS] / 2  # what page compression saved


# ------------------------------------------------------------ converting existing tables


@pytest.fixture
def plugin_site(mariadb: MariaDBServer, tmp_path: Path) -> Iterator[Site]:
    """The demo site with the log tables the plugin's migration made (uncompressed, its
    own indexes), extended by migrate, and a history of the job's rows in them."""
    created = make_site(mariadb, tmp_path, demo=True)
    for statement in PLUGIN_LOG_TABLES:
        created.execute(statement)
    created.migrate()
    _history(created)
    yield created
    mariadb.drop_database(created.name)


def test_migrate_compress_converts_the_plugins_tables_only_when_asked(plugin_site: Site) -> None:
    before = _answers(plugin_site)
    events = plugin_site.scalar(f"SELECT COUNT(*) FROM {EVENTS}")
    assert "compress" not in plugin_site.cli("migrate").stdout  # not unless asked
    dry = plugin_site.cli("migrate", "--compress", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    pending = [line for line in dry.stdout.splitlines() if "Pending: compress table" in line]
    assert [line.split("Pending: compress table ")[1].split()[0] for line in pending] == [
        EVALUATIONS,
        EVENTS,
    ]
    assert "the rebuild needs about that much free disk and runs online" in pending[1]
    assert not any(schema.is_compressed(options) for options in _options(plugin_site).values())
    done = plugin_site.cli("migrate", "--compress")
    assert done.returncode == 0, done.stderr
    assert f"compressed table {EVENTS} in " in done.stdout
    assert "Schema is up to date (2 change(s) made)" in done.stdout
    options = _options(plugin_site)
    assert schema.is_compressed(options[EVALUATIONS]) and schema.is_compressed(options[EVENTS])
    assert plugin_site.scalar(f"SELECT COUNT(*) FROM {EVENTS}") == events
    assert _answers(plugin_site) == before  # every reader's answer, as before
    again = plugin_site.cli("migrate", "--compress")
    assert again.stdout.strip().endswith("Schema is up to date (no change)")


def test_an_interrupted_conversion_leaves_the_table_whole_and_a_rerun_completes(
    plugin_site: Site,
) -> None:
    """Killed mid-rebuild (an admin's KILL QUERY, or the process gone): one line, the
    table as it was; run again, it completes."""
    plugin_site.execute(
        f"INSERT INTO {EVALUATIONS} (event_id, scenario_id, student_id, rules_count,"
        " evaluation_mode, evaluation_result, evaluated_at) SELECT UUID(), 'S1', seq % 991, 3,"
        " 'priority_first', REPEAT('{}', 1), UTC_TIMESTAMP() FROM seq_1_to_400000"
    )
    rows = plugin_site.scalar(f"SELECT COUNT(*) FROM {EVALUATIONS}")
    ini = plugin_site.tmp / "heartbeat.ini"
    process = start_cli("--config", str(ini), "migrate", "--compress")
    with plugin_site.server.connect() as conn, conn.cursor() as cur:
        deadline = time.monotonic() + 60
        query = None
        while query is None and time.monotonic() < deadline:
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST"
                " WHERE INFO LIKE 'ALTER TABLE %%PAGE_COMPRESSED%%'"
            )
            found = cur.fetchone()
            query = found[0] if found else None
            time.sleep(0.05)
        assert query is not None, "the conversion did not start"
        cur.execute(f"KILL QUERY {int(query)}")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 3, out + err
    [line] = err.splitlines()
    assert "ERROR: database error while migrating the tables" in line
    assert not schema.is_compressed(_options(plugin_site)[EVALUATIONS])
    assert plugin_site.scalar(f"SELECT COUNT(*) FROM {EVALUATIONS}") == rows
    check = plugin_site.query(f"CHECK TABLE {EVALUATIONS}")
    assert check[-1][-1] == "OK"
    rerun = plugin_site.cli("migrate", "--compress")
    assert rerun.returncode == 0, rerun.stderr
    assert schema.is_compressed(_options(plugin_site)[EVALUATIONS])
    assert plugin_site.scalar(f"SELECT COUNT(*) FROM {EVALUATIONS}") == rows


def test_a_server_that_cannot_compress_converts_nothing_and_says_why(
    plugin_site: Site,
) -> None:
    with plugin_site.server.connect() as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL innodb_file_per_table = OFF")
        try:
            result = plugin_site.cli("migrate", "--compress")
        finally:
            cur.execute("SET GLOBAL innodb_file_per_table = ON")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "Not compressing" in line]
    assert line.endswith(
        f"Not compressing {EVALUATIONS}, {EVENTS}: innodb_file_per_table is OFF (compressed"
        " tables need a tablespace of their own)"
    )
    assert not any(schema.is_compressed(options) for options in _options(plugin_site).values())
