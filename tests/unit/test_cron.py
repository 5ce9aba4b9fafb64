"""Cron expressions of the DeploymentWindow rule: parsing, matching and the next opening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conveyor.rules.cron import CronError, next_start, parse, zone


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("expression", "wall", "inside"),
    [
        ("* * 9-17 ? * MON-FRI *", "2026-12-01T09:00", True),  # a Tuesday
        ("* * 9-17 ? * MON-FRI *", "2026-12-01T17:59", True),
        ("* * 9-17 ? * MON-FRI *", "2026-12-01T18:00", False),
        ("* * 9-17 ? * MON-FRI *", "2026-12-05T10:00", False),  # a Saturday
        ("* * 9-17 ? * 2-6", "2026-12-04T10:00", True),  # Friday is 6
        ("* 0/15 * * * ?", "2026-12-01T10:45", True),
        ("* 0/15 * * * ?", "2026-12-01T10:46", False),
        ("* 5/15 * * * ?", "2026-12-01T10:50", True),
        ("* */20 * * * ?", "2026-12-01T10:40", True),
        ("* 10-40/10 * * * ?", "2026-12-01T10:50", False),
        ("* * 22-2 * * ?", "2026-12-01T01:30", True),  # wraps round midnight
        ("* * 22-2 * * ?", "2026-12-01T03:00", False),
        ("* * * ? * FRI-MON", "2026-12-07T12:00", True),  # Monday
        ("* * * ? * FRI-MON", "2026-12-08T12:00", False),  # Tuesday
        ("* * * L * ?", "2026-02-28T12:00", True),
        ("* * * L * ?", "2028-02-28T12:00", False),  # a leap year
        ("* * * L-3 * ?", "2026-12-28T12:00", True),
        ("* * * 15W * ?", "2026-08-14T12:00", True),  # the 15th is a Saturday
        ("* * * 1W * ?", "2026-08-03T12:00", True),  # the 1st is a Saturday: Monday 3rd
        ("* * * LW * ?", "2026-05-29T12:00", True),  # May 31 is a Sunday
        ("* * * ? * L", "2026-12-05T12:00", True),  # Saturday
        ("* * * ? * 6L", "2026-12-25T12:00", True),  # the last Friday
        ("* * * ? * 6L", "2026-12-18T12:00", False),
        ("* * * ? * 6#3", "2026-12-18T12:00", True),  # the third Friday
        ("* * * ? * 6#3", "2026-12-11T12:00", False),
        ("* * * 1,15 JAN,JUL ?", "2026-07-15T00:00", True),
        ("* * * * * ? 2027", "2026-07-15T00:00", False),
        ("* * * * * ? 2026-2027", "2026-07-15T00:00", True),
        ("* 30 9 * * ?", "2026-07-15T09:30", True),
    ],
)
def test_cron_matches(expression: str, wall: str, inside: bool) -> None:
    assert parse(expression).matches(_at(wall)) is inside


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("* * 9-17 ? *", "5 fields"),
        ("0 * 9-17 ? * MON-FRI", "seconds"),
        ("* 60 * * * ?", "60 is outside 0-59"),
        ("* * 24 * * ?", "hours"),
        ("* * * ? * ?", "both be ?"),
        ("* * * 1 * MON", "both name days"),
        ("* * * * 13 ?", "month"),
        ("* * * ? * FUNDAY", "'FUNDAY'"),
        ("* * * * * ? 1969", "1969 is outside"),
        ("* ? * * * ?", "only for days"),
        ("* 1,,2 * * * ?", "empty value"),
        ("* * * ? * 6#6", "6 is outside 1-5"),
    ],
)
def test_cron_refuses_what_it_cannot_read(expression: str, named: str) -> None:
    with pytest.raises(CronError, match=named.replace("?", r"\?")):
        parse(expression)


def test_next_start_is_now_inside_the_window() -> None:
    now = _at("2026-12-01T10:15:30+00:00")
    assert next_start(parse("* * 9-17 ? * MON-FRI *"), now, UTC) == now


def test_next_start_outside_the_window() -> None:
    cron = parse("* * 9-17 ? * MON-FRI *")
    friday_evening = _at("2026-12-04T18:00:00+00:00")
    assert next_start(cron, friday_evening, UTC) == _at("2026-12-07T09:00:00+00:00")


def test_next_start_in_a_time_zone() -> None:
    new_york = ZoneInfo("America/New_York")
    cron = parse("* * 9-17 ? * MON-FRI *")
    # 13:00 UTC is 08:00 in New York (EST, UTC-5): the window opens at 14:00 UTC.
    assert next_start(cron, _at("2026-12-01T13:00:00+00:00"), new_york) == _at(
        "2026-12-01T14:00:00+00:00"
    )
    assert cron.matches(_at("2026-12-01T14:30:00+00:00").astimezone(new_york))


def test_next_start_skips_the_minutes_clocks_skip() -> None:
    # On 2026-03-08 New York's clocks go from 02:00 to 03:00: 02:30 never happens that day.
    new_york = ZoneInfo("America/New_York")
    cron = parse("* 30 2 * * ?")
    found = next_start(cron, _at("2026-03-08T05:00:00+00:00"), new_york)
    assert found == _at("2026-03-09T06:30:00+00:00")


def test_next_start_never() -> None:
    assert next_start(parse("* * * 30 2 ?"), _at("2026-01-01T00:00:00+00:00"), UTC) is None
    assert next_start(parse("* * * * * ? 2020"), _at("2026-01-01T00:00:00+00:00"), UTC) is None


@pytest.mark.parametrize(
    ("name", "offset"),
    [
        (None, timedelta(0)),
        ("UTC", timedelta(0)),
        ("GMT", timedelta(0)),
        ("UTC+07:00", timedelta(hours=7)),
        ("GMT-5", timedelta(hours=-5)),
        ("+05:30", timedelta(hours=5, minutes=30)),
    ],
)
def test_zone_offsets(name: str | None, offset: timedelta) -> None:
    assert _at("2026-06-01T00:00:00").replace(tzinfo=zone(name)).utcoffset() == offset


def test_zone_names() -> None:
    assert zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    assert zone("UTC+07:00") == timezone(timedelta(hours=7))
    with pytest.raises(CronError, match="Mars/Olympus"):
        zone("Mars/Olympus")
    with pytest.raises(CronError, match="at most 14 hours"):
        zone("UTC+15")
