"""``heartbeat.schedule``: the cron expression read as Debian's cron reads it, the
interval it implies, and the slot each start belongs to. Pure functions, no database;
the runs across two servers on each real schedule are in ``test_real_sites.py``."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from heartbeat.errors import ConfigError
from heartbeat.schedule import Schedule, interval_slot, parse_schedule, slot_of


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
