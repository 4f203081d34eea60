"""The daily summary (heartbeat/daily.py): per day, what each scenario, rule and agent saw,
equal to what the detail rows say, and kept after prune took the detail.

Real MariaDB; the expected counts are read back from the per-student rows the same runs
wrote (their JSON documents), never from the code that wrote the summary."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench import population
from heartbeat import rules
from heartbeat.config import Config, ReportConfig
from heartbeat.errors import ConfigError, TakenOver
from heartbeat.run import execute
from tests.conftest import Site

DAILY = "mdl_alt42_heartbeat_daily"
EVENTS = "mdl_alt42_event_processing_log"
EVALUATIONS = "mdl_alt42_scenario_evaluation_log"
RUNS = "mdl_alt42_heartbeat_log"
KST = dt.timezone(dt.timedelta(hours=9))


def from_detail(site: Site, zone: dt.tzinfo) -> Counter[tuple[str, str, str, str]]:
    """(day, kind, name, 'events' | 'matches') -> count, from the per-student rows: each
    event counts on the day its run started (``created_at``) in ``zone``."""
    book = rules.load_rule_book()
    scenarios = {scenario.scenario_id: scenario for scenario in book.scenarios}
    counts: Counter[tuple[str, str, str, str]] = Counter()

    def day(created: dt.datetime) -> str:
        return str(created.replace(tzinfo=dt.timezone.utc).astimezone(zone).date())

    for created, status, routing in site.query(
        f"SELECT created_at, status, routing_result FROM {EVENTS}"
    ):
        counts[(day(created), "status", status, "events")] += 1
        if routing is None:
            continue
        document = json.loads(routing)
        for agent in document["agent_ids"]:
            counts[(day(created), "agent", agent, "events")] += 1
        counts[(day(created), "agent", document["selected_agent"], "matches")] += 1
    for created, result in site.query(
        f"SELECT e.created_at, v.evaluation_result FROM {EVALUATIONS} v"
        f" JOIN {EVENTS} e ON e.event_id = v.event_id"
    ):
        document = json.loads(result)
        scenario = scenarios[document["scenario_id"]]
        matched = {rule["rule_id"] for rule in document["matched_rules"]}
        counts[(day(created), "scenario", scenario.scenario_id, "events")] += 1
        counts[(day(created), "scenario", scenario.scenario_id, "matches")] += bool(matched)
        for rule in scenario.rules[: document["rules_evaluated"]]:
            name = f"{scenario.scenario_id}/{rule.rule_id}"
            counts[(day(created), "rule", name, "events")] += 1
            counts[(day(created), "rule", name, "matches")] += rule.rule_id in matched
    return +counts  # without the zeros


def summary(site: Site) -> Counter[tuple[str, str, str, str]]:
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for day, kind, name, events, matches in site.query(
        f"SELECT day, kind, name, events, matches FROM {DAILY}"
    ):
        counts[(str(day), kind, name, "events")] += events
        counts[(str(day), kind, name, "matches")] += matches
    return +counts


def _load(site: Site, students: int, now: dt.datetime) -> None:
    with site.server.connect(site.name, local_infile=True) as conn:
        population.load(conn, students, now.replace(tzinfo=None))
    # one student whose event fails validation (an empty id): a failed event row
    site.execute(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time)"
        " VALUES ('', UNIX_TIMESTAMP(%s) - 60)",
        (now.replace(tzinfo=None),),
    )


def _config(site: Site, zone: str) -> Config:
    config = site.config(batch_size=37, window_hours=72, open_session_hours=72)
    return dataclasses.replace(config, report=ReportConfig(time_zone=zone))


def test_the_summary_says_what_the_detail_rows_say_day_by_day(site: Site) -> None:
    """Runs just before and after midnight in Seoul (one UTC day) and a day later, many
    batches, every route and rule the population reaches, a failed student: each day's
    summary equals the count of the detail rows of the runs that started on that day in
    the report's zone."""
    site.migrate()
    first = dt.datetime(2026, 11, 30, 14, 50, tzinfo=dt.timezone.utc)  # 23:50 in Seoul
    _load(site, 400, first)
    config = _config(site, "+09:00")
    moments = [first, first + dt.timedelta(minutes=30), first + dt.timedelta(days=1, hours=2)]
    for moment in moments:
        outcome = execute(config, clock=lambda m=moment: m)
        assert outcome.status == "partial" and outcome.errors == 1, outcome

    expected = from_detail(site, KST)
    assert summary(site) == expected
    days = sorted({key[0] for key in expected})
    assert days == ["2026-11-30", "2026-12-01", "2026-12-02"]  # Seoul's days, not UTC's
    kinds = {key[1] for key in expected}
    assert kinds == {"scenario", "rule", "agent", "status"}
    rules_matched = {key[2] for key in expected if key[1] == "rule" and key[3] == "matches"}
    assert len(rules_matched) >= 9  # the population reaches most rules: not a trivial sum
    # the student count of the day, as the plugin's dashboard and report count it
    assert site.scalar(
        f"SELECT events FROM {DAILY} WHERE day = '2026-12-01' AND kind = 'status'"
        " AND name = 'completed'"
    ) == site.scalar(f"SELECT students_processed FROM {RUNS} WHERE created_at = %s",
                     (moments[1].replace(tzinfo=None),))  # fmt: skip


def test_a_batch_rolled_back_adds_nothing_to_the_summary(site: Site) -> None:
    """The counts go in the batch's own transaction: a run taken over mid-way (its
    fence rolls the batch back) leaves a summary that still equals its detail rows."""
    site.migrate()
    now = dt.datetime.now(dt.timezone.utc)
    _load(site, 300, now)
    config = _config(site, "+00:00")

    def take_over(done: int, _total: int, _paced: float) -> None:
        if done > 100:  # after a few batches committed, another server marks it failed
            site.execute(f"UPDATE {RUNS} SET status = 'failed' WHERE status = 'running'")

    with pytest.raises(TakenOver):
        execute(config, on_batch=take_over)
    written = site.scalar(f"SELECT COUNT(*) FROM {EVENTS}")
    assert 100 < written < 300
    assert summary(site) == from_detail(site, dt.timezone.utc)


def _aged_summary(site: Site, days: int) -> None:
    site.execute(
        f"INSERT INTO {DAILY} (day, kind, name, events, matches)"
        " VALUES (UTC_DATE() - INTERVAL %s DAY, 'rule', 'S1/S1R1_emotion_based_reentry', 9, 4)",
        (days,),
    )


def test_prune_keeps_the_summary_as_long_as_the_run_rows(demo_site: Site) -> None:
    """The detail goes after detail_days (35), the summary after days (400), whole days
    at a time: what report --trends shows of a day months ago is still there."""
    for days in (40, 300, 399, 402):
        _aged_summary(demo_site, days)
    demo_site.write_ini()
    assert demo_site.cli("run").returncode == 0
    demo_site.execute(f"UPDATE {EVENTS} SET created_at = created_at - INTERVAL 40 DAY")
    demo_site.execute(f"UPDATE {EVALUATIONS} SET evaluated_at = evaluated_at - INTERVAL 40 DAY")
    pruned = demo_site.cli("prune")
    assert pruned.returncode == 0, pruned.stderr
    assert demo_site.scalar(f"SELECT COUNT(*) FROM {EVENTS}") == 0
    assert demo_site.scalar(f"SELECT COUNT(*) FROM {EVALUATIONS}") == 0
    ages = [row[0] for row in demo_site.query(
        f"SELECT DATEDIFF(UTC_DATE(), day) FROM {DAILY} WHERE kind = 'rule'"
        " AND name = 'S1/S1R1_emotion_based_reentry' ORDER BY day"
    )]  # fmt: skip
    assert sorted(set(ages), reverse=True) == [399, 300, 40, 0]  # 402 gone, today's run kept

    shown = demo_site.cli("report", "--trends", "400", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["trends"]
    old = [r for r in rows if r["day"] == str(dt.date.today() - dt.timedelta(days=300))]
    assert old == [
        {"day": old[0]["day"], "kind": "rule", "name": "S1/S1R1_emotion_based_reentry",
         "events": 9, "matches": 4}
    ]  # fmt: skip
    text = demo_site.cli("report", "--trends", "2").stdout
    assert "Per day over the last 2 day(s), days in " in text
    header = next(line for line in text.splitlines() if line.startswith("day "))
    assert header.split() == ["day", "kind", "name", "events", "matches", "%"]
    completed = next(line for line in text.splitlines() if " status " in f" {line} ")
    assert completed.split()[1:4] == ["status", "completed", "8"]
    assert not any(" 40 " in line for line in text.splitlines())  # older than 2 days


def test_report_trends_before_migrate_names_the_table(demo_site: Site) -> None:
    demo_site.execute(f"DROP TABLE {DAILY}")
    demo_site.write_ini()
    result = demo_site.cli("report", "--trends", "30")
    assert result.returncode == 3
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[0]]
        and f"table {DAILY} is missing (run 'alt42-heartbeat migrate')" in result.stderr
    )
    ran = demo_site.cli("run")
    assert ran.returncode == 3 and f"table {DAILY} is missing" in ran.stderr
    assert demo_site.cli("migrate").returncode == 0
    assert demo_site.cli("run").returncode == 0


def test_a_rule_id_too_long_for_the_summary_is_refused(tmp_path: Path) -> None:
    book: dict[str, Any] = json.loads(
        rules.resources.files("heartbeat").joinpath("rulebook.json").read_text("utf-8")
    )
    long_id = "R" * (rules.MAX_RULE_ID + 1)
    book["rules"][long_id] = next(iter(book["rules"].values()))
    with pytest.raises(ConfigError, match=rf"rules\.{long_id}: a rule id is 1 to 80 characters"):
        rules.parse_rule_book(json.dumps(book), str(tmp_path / "book.json"))
    book["rules"]["R" * rules.MAX_RULE_ID] = book["rules"].pop(long_id)
    rules.parse_rule_book(json.dumps(book), str(tmp_path / "book.json"))
