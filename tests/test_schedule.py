"""``heartbeat.schedule``: the cron expression read as Debian's cron reads it, the
interval it implies, and the slot each start belongs to. Pure functions, no database;
the runs across two servers on each real schedule are in ``test_real_sites.py``."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from heartbeat.errors import ConfigError
from heartbeat.schedule import Schedule, interval_slot, on_calendar, parse_schedule, slot_of


def parse(expression: str) -> Schedule:
    return parse_schedule(expression, "[heartbeat] schedule")


@pytest.mark.parametrize(
    ("expression", "gap"),
    [
        ("*/30 * * * *", 30),
        ("*/15 * * * *", 15),
        ("*/45 * * * *", 15),  # :00 and :45: the 15 minutes to the next hour
        ("5,35 7-19 * * 1-5", 30),
        ("0 * * * *", 60),
        ("@hourly", 60),
        ("@daily", 1440),
        ("* * * * *", 1),
        ("0 0-23/6 * * *", 360),
    ],
)
def test_the_interval_is_the_shortest_gap_between_two_starts(expression: str, gap: int) -> None:
    assert parse(expression).shortest_gap_minutes() == gap


def test_fields_lists_ranges_steps_and_names() -> None:
    schedule = parse("0-10/5,30 8-9 1,15 jan-mar MON-fri")
    assert schedule.minutes == (0, 5, 10, 30)
    assert schedule.hours == (8, 9)
    assert schedule.days == (1, 15)
    assert schedule.months == (1, 2, 3)
    assert schedule.weekdays == (1, 2, 3, 4, 5)
    assert schedule.either_day, "both day fields restricted: either matching is enough"
    assert parse("0 0 * * 7").weekdays == (0,), "7 is Sunday too"
    assert parse("  */30   *  * * * ").expression == "*/30 * * * *"


def test_either_day_field_matching_is_enough_when_both_are_restricted() -> None:
    schedule = parse("0 12 13 * 5")  # the 13th, or any Friday
    assert schedule.day_matches(dt.date(2026, 12, 13))  # a Sunday
    assert schedule.day_matches(dt.date(2026, 12, 4))  # a Friday
    assert not schedule.day_matches(dt.date(2026, 12, 5))
    only_weekdays = parse("0 12 * * 1-5")
    assert not only_weekdays.day_matches(dt.date(2026, 12, 13))


def test_previous_and_following_ticks() -> None:
    schedule = parse("5,35 7-19 * * 1-5")
    friday_evening = dt.datetime(2026, 12, 4, 20, 0)
    assert schedule.previous(friday_evening) == dt.datetime(2026, 12, 4, 19, 35)
    assert schedule.following(friday_evening) == dt.datetime(2026, 12, 7, 7, 5)  # Monday
    assert schedule.previous(dt.datetime(2026, 12, 4, 7, 5)) == dt.datetime(2026, 12, 4, 7, 5)


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("*/30 * * *", "'*/30 * * *' is not a cron schedule; set five cron fields"),
        ("@reboot", "@reboot is not a periodic schedule"),
        ("60 * * * *", "the minute field '60' is out of range (0-59)"),
        ("0 24 * * *", "the hour field '24' is out of range (0-23)"),
        ("5/10 * * * *", "the minute field '5/10': a step needs a range (e.g. 0-59/10)"),
        ("0 0 * foo *", "the month field 'foo' is not a number or a name"),
        ("0 0 * * 1;2", "the day of week field '1;2' is not valid"),
    ],
)
def test_a_wrong_schedule_is_one_line_naming_the_field(expression: str, said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(expression)
    assert str(raised.value).startswith("[heartbeat] schedule = ")
    assert said in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.fixture
def seoul() -> Iterator[None]:
    """The host's local time (cron's) in Asia/Seoul, as on the plugin's real site."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Seoul")
        time.tzset()
        yield
    time.tzset()


def test_a_run_belongs_to_the_latest_start_at_or_before_it_in_local_time(seoul: None) -> None:
    schedule = parse("5,35 9 * * *")  # 09:05 and 09:35 in Seoul = 00:05 and 00:35 UTC
    late = dt.datetime(2026, 12, 5, 0, 36, 59, tzinfo=dt.timezone.utc)
    assert slot_of(late, schedule) == dt.datetime(2026, 12, 5, 0, 35)
    early = dt.datetime(2026, 12, 5, 0, 34, tzinfo=dt.timezone.utc)
    assert slot_of(early, schedule) == dt.datetime(2026, 12, 5, 0, 5)
    before = dt.datetime(2026, 12, 5, 0, 4, tzinfo=dt.timezone.utc)
    assert slot_of(before, schedule) == dt.datetime(2026, 12, 4, 0, 35), "yesterday's last"


def test_without_a_schedule_the_slot_is_the_utc_interval() -> None:
    at = dt.datetime(2026, 11, 27, 10, 29, 59, tzinfo=dt.timezone.utc)
    assert interval_slot(at, 30) == dt.datetime(2026, 11, 27, 10, 0)
    assert interval_slot(at + dt.timedelta(seconds=1), 30) == dt.datetime(2026, 11, 27, 10, 30)
    assert interval_slot(at, 15) == dt.datetime(2026, 11, 27, 10, 15)


def _systemd_elapses(lines: list[str], start: dt.datetime, count: int) -> list[dt.datetime]:
    """The first ``count`` times systemd fires ``OnCalendar=`` ``lines`` after ``start``
    (UTC), as ``systemd-analyze calendar`` computes them: the timer's own arithmetic."""
    result = subprocess.run(
        ["systemd-analyze", "calendar", f"--iterations={count}",
         f"--base-time={start:%Y-%m-%d %H:%M:%S} UTC", *lines],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "TZ": "UTC", "SYSTEMD_COLORS": "0"},
    )  # fmt: skip
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", result.stdout)
    times = sorted({dt.datetime.strptime(f, "%Y-%m-%d %H:%M:%S") for f in found})
    return times[:count]


def _random_expressions(count: int) -> Iterator[str]:
    """Cron expressions of every form the schedule reads (lists, ranges, steps, names,
    either-day), drawn with a fixed seed."""
    rng = random.Random(20261205)
    bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]

    def field(low: int, high: int) -> str:
        form = rng.randrange(6)
        a, b = sorted(rng.sample(range(low, high + 1), 2))
        return ["*", f"*/{rng.randint(2, 9)}", str(a), f"{a}-{b}", f"{a}-{b}/{rng.randint(2, 5)}",
                f"{a},{b}"][form]  # fmt: skip

    for _ in range(count):
        yield " ".join(field(*b) if rng.random() < 0.6 else "*" for b in bounds)


SYSTEMD_CASES = [
    "*/30 * * * *", "*/15 * * * *", "*/45 * * * *", "5,35 7-19 * * 1-5", "17 3 * * *",
    "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "* * * * *",
    "0-10/5,30 8-9 1,15 jan-mar MON-fri", "0 0 1,15 * mon", "0 12 */2 * 1", "0 0 29 2 *",
    "0 0 31 * 7",
    *_random_expressions(40),
]  # fmt: skip


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("expression", SYSTEMD_CASES)
def test_the_timer_fires_at_every_tick_cron_does_and_at_no_other(expression: str) -> None:
    """The systemd scheduler's OnCalendar= lines, checked by systemd's own calendar
    arithmetic against the ticks cron fires at (the schedule's)."""
    schedule = parse(expression)
    start = dt.datetime(2026, 1, 1, 0, 0, 30)
    count = 60
    # systemd looks a limited number of years ahead: compare the next 30 years at most
    ticks = [t for t in itertools.islice(schedule.ticks(start), count) if t.year < 2056]
    assert _systemd_elapses(on_calendar(schedule), start, count)[: len(ticks)] == ticks
