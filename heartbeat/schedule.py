"""When cron starts the job, read from the same cron expression as the cron entry.

The role writes ``alt42_heartbeat_cron_schedule`` both into the cron entry and into
``[heartbeat] schedule``, so the job knows every start cron will make. A run belongs to
the latest scheduled start (*tick*) at or before it, and that tick is the run's slot:
every tick is run exactly once, however irregular the schedule (``*/45`` fires at :00
and :45; ``5,20,50 8-17 * * 1-5`` too). Rounding to a fixed interval instead lost every
second run of ``*/15`` with 30-minute slots.

The expression is read as Debian's cron reads it: five fields (minute, hour, day of
month, month, day of week; lists, ranges, steps, month and day names) or one of the
macros, in the local time of the host (cron's time zone); when both day fields are
restricted, either one matching is enough. ``interval_minutes`` follows from it: the
shortest gap between two ticks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from heartbeat.errors import ConfigError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = {
    3: ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    4: ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
}
#: (name, lowest, highest) of the five fields; day of week 7 is Sunday too.
_FIELDS: tuple[tuple[str, int, int], ...] = (
    *(("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31)),
    *(("month", 1, 12), ("day of week", 0, 7)),
)
#: How far to look for ticks: a leap day that must fall on a given weekday recurs
#: within 28 years; every schedule cron accepts fires within that.
_SEARCH_DAYS = 366 * 28
#: Ticks looked at to find the shortest gap (a year of a monthly schedule, a day of
#: a one-minute one): gaps repeat within a week or a month for any real schedule.
_GAP_TICKS = 1500


@dataclass(frozen=True)
class Schedule:
    """A parsed cron expression; ``ticks`` of each field are sorted ascending."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday
    either_day: bool  # both day fields restricted: cron runs when either matches

    def day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        return (dom or dow) if self.either_day else (dom and dow)

    def previous(self, moment: dt.datetime) -> dt.datetime:
        """The latest tick at or before ``moment`` (naive local time, to the minute)."""
        day, limit = moment.date(), (moment.hour, moment.minute)
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for hour in reversed(self.hours):
                    if hour > limit[0]:
                        continue
                    minutes = [m for m in self.minutes if hour < limit[0] or m <= limit[1]]
                    if minutes:
                        return dt.datetime.combine(day, dt.time(hour, minutes[-1]))
            day, limit = day - dt.timedelta(days=1), (23, 59)
        raise ConfigError(f"schedule {self.expression!r} never fires")  # pragma: no cover

    def following(self, moment: dt.datetime) -> dt.datetime:
        """The earliest tick after ``moment`` (naive local time)."""
        start = moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day, limit = start.date(), (start.hour, start.minute)
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for hour in self.hours:
                    if hour < limit[0]:
                        continue
                    minutes = [m for m in self.minutes if hour > limit[0] or m >= limit[1]]
                    if minutes:
                        return dt.datetime.combine(day, dt.time(hour, minutes[0]))
            day, limit = day + dt.timedelta(days=1), (0, 0)
        raise ConfigError(f"schedule {self.expression!r} never fires")  # pragma: no cover

    def ticks(self, start: dt.datetime) -> Iterator[dt.datetime]:
        """Every tick after ``start``, in order."""
        moment = start
        while True:
            moment = self.following(moment)
            yield moment

    def shortest_gap_minutes(self, start: dt.datetime = dt.datetime(2026, 1, 1)) -> int:
        """The shortest time between two ticks: what ``interval_minutes`` means here."""
        previous = None
        shortest = None
        for count, tick in enumerate(self.ticks(start)):
            if previous is not None:
                gap = int((tick - previous).total_seconds() // 60)
                shortest = gap if shortest is None else min(shortest, gap)
            previous = tick
            if shortest == 1 or count >= _GAP_TICKS or (tick - start).days > 400 < count:
                break
        return shortest or 1


def on_calendar(schedule: Schedule) -> list[str]:
    """The systemd ``OnCalendar=`` lines that fire at exactly this schedule's ticks.

    Each field becomes its explicit list of values (``*`` when it is whole), so every
    expression cron accepts has a translation. systemd requires the weekday *and* the
    date to match; cron's either-day rule becomes two lines, one per day field.
    """

    def values(ticks: tuple[int, ...], low: int, high: int, width: int = 1) -> str:
        if ticks == tuple(range(low, high + 1)):
            return "*"
        return ",".join(f"{tick:0{width}d}" for tick in ticks)

    days = values(schedule.days, 1, 31, 2)
    weekdays = ",".join(_WEEKDAY_NAMES[day] for day in schedule.weekdays)
    if len(schedule.weekdays) == 7:
        weekdays = ""
    time = f"{values(schedule.hours, 0, 23, 2)}:{values(schedule.minutes, 0, 59, 2)}:00"
    month = values(schedule.months, 1, 12, 2)
    if schedule.either_day:
        return [f"*-{month}-{days} {time}", f"{weekdays} *-{month}-* {time}"]
    return [f"{weekdays} *-{month}-{days} {time}".strip()]


_WEEKDAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def parse_schedule(expression: str, where: str) -> Schedule:
    """Parse a cron expression; ``where`` names the file and key in the error."""
    text = " ".join(expression.split())
    fix = 'five cron fields such as "*/30 * * * *", or @hourly/@daily/@weekly/@monthly'
    if text == "@reboot":
        raise ConfigError(f"{where} = @reboot is not a periodic schedule; set {fix}")
    fields = MACROS.get(text.lower(), text).split(" ")
    if len(fields) != 5:
        raise ConfigError(f"{where} = {expression!r} is not a cron schedule; set {fix}")
    values = [
        _field(part, index, f"{where} = {expression!r}: the {_FIELDS[index][0]} field")
        for index, part in enumerate(fields)
    ]
    weekdays = tuple(sorted({day % 7 for day in values[4]}))
    return Schedule(
        expression=text,
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        either_day=not fields[2].startswith("*") and not fields[4].startswith("*"),
    )


def _field(text: str, index: int, where: str) -> tuple[int, ...]:
    """One field: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n`` and lists of them."""
    _name, low, high = _FIELDS[index]
    names = _NAMES.get(index, ())
    result: set[int] = set()
    for item in text.split(","):
        match = re.fullmatch(r"(\*|[0-9a-zA-Z]+(?:-[0-9a-zA-Z]+)?)(?:/([0-9]+))?", item)
        if match is None:
            raise ConfigError(f"{where} {text!r} is not valid; use lists, ranges and steps")
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            first, last = low, high if index != 4 else 6
        else:
            bounds = [_cron_value(part, names, low, where) for part in span.split("-")]
            first, last = bounds[0], bounds[-1]
            if match.group(2) and len(bounds) == 1:
                raise ConfigError(f"{where} {item!r}: a step needs a range (e.g. 0-59/{step})")
        if not (low <= first <= last <= high) or step < 1:
            raise ConfigError(f"{where} {item!r} is out of range ({low}-{high})")
        result.update(range(first, last + 1, step))
    return tuple(sorted(result))


def _cron_value(part: str, names: Sequence[str], low: int, where: str) -> int:
    if part.isdigit():
        return int(part)
    lowered = part.lower()
    if lowered in names:
        return names.index(lowered) + (1 if low == 1 else 0)
    raise ConfigError(f"{where} {part!r} is not a number or a name")


def slot_of(now: dt.datetime, schedule: Schedule) -> dt.datetime:
    """The slot (naive UTC) of a run starting at ``now`` (aware): its scheduled start.

    The tick is found in local wall time, as cron fires; its UTC instant is the run's
    minute less the distance back to the tick, so that the two 01:30 of a DST change
    stay two slots.
    """
    local = now.astimezone().replace(tzinfo=None)
    tick = schedule.previous(local)
    minute = now.astimezone(dt.timezone.utc).replace(second=0, microsecond=0, tzinfo=None)
    return minute - (local.replace(second=0, microsecond=0) - tick)


def interval_slot(now: dt.datetime, interval_minutes: int) -> dt.datetime:
    """The slot of an INI without ``schedule``: the start of the UTC interval ``now``
    falls in (the behaviour before schedules were known)."""
    length = interval_minutes * 60
    epoch = int(now.timestamp()) // length * length
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).replace(tzinfo=None)
