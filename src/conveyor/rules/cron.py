"""Cron expressions as CodePipeline's DeploymentWindow rule reads them, evaluated as pure data.

The expression has six fields and an optional seventh, in the Quartz order AWS documents:
seconds (``*`` only: a window is made of whole minutes), minutes, hours, day of month, month
(1-12 or JAN-DEC), day of week (1-7 or SUN-SAT, 1 being Sunday) and year (1970-2199). Each
field takes ``*``, values, ranges (``10-12``, wrapping round as ``FRI-MON`` does), lists and
increments (``0/15``, ``*/5``, ``10-40/10``). The day of month also takes ``?``, ``L`` (the last
day), ``L-3`` (three days before it), ``15W`` (the weekday nearest the 15th, in the same month)
and ``LW``; the day of week takes ``?``, ``L`` (Saturday), ``6L`` (the month's last Friday) and
``6#3`` (its third Friday). A minute is in the window when every field matches it.

`parse` reads an expression, or raises `CronError` saying what is wrong with which field;
`Cron.matches` says whether a wall-clock minute is in the window; `next_start` finds the
first instant, from a given one, at which the window is open in a time zone. `zone` reads the
rule's ``TimeZone``. No clock is read here: every instant comes in as a value.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Cron", "CronError", "next_start", "parse", "zone"]

_MONTHS = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_FIELDS = ("seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year")
# How far ahead `next_start` looks: as far as the years an expression may name.
_LAST_YEAR = 2199
_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?")

DayTest = Callable[[date], bool]


class CronError(ValueError):
    """The expression cannot be read; the message names the field and what is wrong."""


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int] | None
    # The day's own test, from the day-of-month and day-of-week fields.
    day: DayTest

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.years is not None and day.year not in self.years:
            return False
        return self.day(day)

    def matches(self, wall: datetime) -> bool:
        """Whether the minute of the wall-clock time ``wall`` is in the window."""
        return wall.minute in self.minutes and wall.hour in self.hours and self.day_matches(wall)


def parse(text: str) -> Cron:
    fields = text.split()
    if len(fields) not in (6, 7):
        raise CronError(
            f"Cron expression {text!r} has {len(fields)} fields; it needs 6 (seconds, minutes, "
            "hours, day-of-month, month, day-of-week) and may have a 7th (year)"
        )
    if fields[0] != "*":
        raise CronError(f"Cron seconds field {fields[0]!r}: only * is allowed there")
    dom, dow = fields[3], fields[5]
    if dom == "?" and dow == "?":
        raise CronError("Cron day-of-month and day-of-week cannot both be ?")
    if dom not in ("?", "*") and dow not in ("?", "*"):
        raise CronError(
            "Cron day-of-month and day-of-week cannot both name days: write ? in one of them"
        )
    return Cron(
        minutes=_values(fields[1], "minutes", 0, 59),
        hours=_values(fields[2], "hours", 0, 23),
        months=_values(fields[4], "month", 1, 12, _MONTHS),
        years=None if len(fields) == 6 else _values(fields[6], "year", 1970, _LAST_YEAR),
        day=_day_test(dom, dow),
    )


def _day_test(dom: str, dow: str) -> DayTest:
    """One test per day: the field that names days decides (``*`` in both: every day)."""
    if dow not in ("?", "*"):
        return _any_of([_weekday_term(term) for term in dow.split(",")])
    if dom not in ("?", "*"):
        return _any_of([_month_day_term(term) for term in dom.split(",")])
    return lambda day: True


def _any_of(tests: list[DayTest]) -> DayTest:
    return lambda day: any(test(day) for test in tests)


def _last_day(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _quartz_weekday(day: date) -> int:
    """1 for Sunday through 7 for Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(day: date, target: int) -> int:
    """The day of the month of the weekday nearest ``target``, never leaving the month."""
    last = _last_day(day)
    target = min(target, last)
    weekday = date(day.year, day.month, target).weekday()
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return target - 1 if target > 1 else target + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return target + 1 if target < last else target - 2
    return target


def _month_day_term(term: str) -> DayTest:
    field = "day-of-month"
    if term == "L":
        return lambda day: day.day == _last_day(day)
    if term == "LW":
        return lambda day: day.day == _nearest_weekday(day, _last_day(day))
    if term.startswith("L-"):
        back = _number(term[2:], field, 0, 30)
        return lambda day: day.day == _last_day(day) - back
    if term.endswith("W"):
        target = _number(term[:-1], field, 1, 31)
        return lambda day: day.day == _nearest_weekday(day, target)
    days = _values(term, field, 1, 31)
    return lambda day: day.day in days


def _weekday_term(term: str) -> DayTest:
    field = "day-of-week"
    if term == "L":
        return lambda day: _quartz_weekday(day) == 7
    if term.endswith("L"):
        weekday = _number(term[:-1], field, 1, 7, _WEEKDAYS)
        return lambda day: _quartz_weekday(day) == weekday and day.day + 7 > _last_day(day)
    if "#" in term:
        name, _, nth = term.partition("#")
        weekday = _number(name, field, 1, 7, _WEEKDAYS)
        which = _number(nth, field, 1, 5)
        return lambda day: _quartz_weekday(day) == weekday and (day.day - 1) // 7 + 1 == which
    weekdays = _values(term, field, 1, 7, _WEEKDAYS)
    return lambda day: _quartz_weekday(day) in weekdays


def _number(text: str, field: str, low: int, high: int, names: dict[str, int] | None = None) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    if not text.isdigit():
        raise CronError(f"Cron {field} field: {text!r} is not a value")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"Cron {field} field: {value} is outside {low}-{high}")
    return value


def _values(
    text: str, field: str, low: int, high: int, names: dict[str, int] | None = None
) -> frozenset[int]:
    found: set[int] = set()
    for term in text.split(","):
        if not term:
            raise CronError(f"Cron {field} field {text!r} has an empty value")
        body, slash, step_text = term.partition("/")
        step = _number(step_text, field, 1, high - low + 1) if slash else 1
        if body in ("*", "?"):
            if body == "?" and field not in ("day-of-month", "day-of-week"):
                raise CronError(f"Cron {field} field: ? is allowed only for days")
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = (
                _number(first, field, low, high, names),
                _number(last, field, low, high, names),
            )
        else:
            start = _number(body, field, low, high, names)
            end = high if slash else start
        span = (end - start) % (high - low + 1)
        found.update(
            low + (start - low + offset) % (high - low + 1) for offset in range(0, span + 1, step)
        )
    return frozenset(found)


def zone(name: str | None) -> tzinfo:
    """The rule's ``TimeZone``: an IANA name (``America/New_York``), ``UTC`` or ``GMT``, or an
    offset (``UTC+07:00``, ``GMT-5``, ``+05:30``); none: UTC."""
    text = (name or "").strip()
    if text.upper() in ("", "UTC", "GMT", "Z"):
        return UTC
    offset = _OFFSET.fullmatch(text.upper())
    if offset is not None:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=14):
            raise CronError(f"TimeZone {text!r}: an offset is at most 14 hours")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"TimeZone {text!r} is not a time zone (write a name such as America/New_York, "
            "or UTC+07:00)"
        ) from None


def next_start(cron: Cron, after: datetime, where: tzinfo) -> datetime | None:
    """The first instant at or after ``after`` (aware) at which the window is open in
    ``where``: ``after`` itself when its minute is in the window; None when it never opens
    again. Wall-clock minutes that a daylight-saving change skips are never open."""
    wall = after.astimezone(where)
    if cron.matches(wall):
        return after
    day = wall.date()
    hours, minutes = sorted(cron.hours), sorted(cron.minutes)
    while day.year <= _LAST_YEAR:
        if cron.day_matches(day):
            for hour in hours:
                for minute in minutes:
                    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=where)
                    instant = local.astimezone(UTC)
                    if instant.astimezone(where).replace(tzinfo=None) != local.replace(tzinfo=None):
                        continue  # a minute the clocks skip
                    if instant > after:
                        return instant
        day += timedelta(days=1)
    return None
