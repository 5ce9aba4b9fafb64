"""The DeploymentWindow rule through its provider: inside, waiting, too late, stopped."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from conveyor.actions.base import FailureType
from conveyor.rules.clock import Clock
from conveyor.rules.deploymentwindow import DeploymentWindow
from tests.support.rulejobs import log_of, rule_context

WORKING_HOURS = {"Cron": "* * 9-17 ? * MON-FRI *", "TimeZone": "Europe/Paris"}


class Time:
    """A clock whose waits move its time on, and count."""

    def __init__(self, start: str) -> None:
        self.now = datetime.fromisoformat(start).timestamp()
        self.waited = 0.0

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.now += seconds
        self.waited += seconds
        return False

    def clock(self) -> Clock:
        return Clock(now=lambda: self.now, wait=self.wait)


def test_inside_the_window_passes_at_once(tmp_path: Path) -> None:
    time = Time("2026-12-01T10:00:00+01:00")  # a Tuesday, in Paris
    context = rule_context(tmp_path, WORKING_HOURS)
    result = DeploymentWindow(time.clock()).run(context)
    assert result.succeeded, result.message
    assert time.waited == 0
    assert result.summary and "Within the deployment window" in result.summary


def test_outside_the_window_waits_for_it_to_open(tmp_path: Path) -> None:
    # 08:30 in Paris is 07:30 UTC: outside, half an hour before the window opens.
    time = Time("2026-12-01T07:30:00+00:00")
    context = rule_context(tmp_path, WORKING_HOURS, time_left=3600)
    result = DeploymentWindow(time.clock()).run(context)
    assert result.succeeded, result.message
    assert time.waited == 1800
    assert "waiting for it to open at 2026-12-01T09:00+01:00" in log_of(context)


def test_a_window_opening_after_the_rules_time_fails_at_once(tmp_path: Path) -> None:
    time = Time("2026-12-04T18:00:00+01:00")  # Friday evening: Monday is too far
    context = rule_context(tmp_path, WORKING_HOURS, time_left=3600)
    result = DeploymentWindow(time.clock()).run(context)
    assert not result.succeeded
    assert time.waited == 0
    assert result.message and "opens next at 2026-12-07T09:00+01:00" in result.message
    assert result.failure_type is FailureType.JOB_FAILED


def test_a_stopped_rule_stops_waiting(tmp_path: Path) -> None:
    time = Time("2026-12-01T07:30:00+00:00")
    cancelled = threading.Event()
    cancelled.set()
    context = rule_context(tmp_path, WORKING_HOURS, cancelled=cancelled)
    result = DeploymentWindow(time.clock()).run(context)
    assert not result.succeeded
    assert result.message and result.message.startswith("Stopped while waiting")


def test_a_window_that_never_opens_again_fails(tmp_path: Path) -> None:
    time = Time("2026-12-01T07:30:00+00:00")
    context = rule_context(tmp_path, {"Cron": "* * * * * ? 2025"})
    result = DeploymentWindow(time.clock()).run(context)
    assert not result.succeeded
    assert result.message and "never opens again" in result.message


def test_the_system_clock_by_default(tmp_path: Path) -> None:
    # Every minute of every day is in this window, whatever the time now.
    result = DeploymentWindow().run(rule_context(tmp_path, {"Cron": "* * * * * ?"}))
    assert result.succeeded, result.message


def test_misconfigured_windows(tmp_path: Path) -> None:
    for configuration, named in [
        ({}, "Cron"),
        ({"Cron": "* * 25 * * ?"}, "hours"),
        ({"Cron": "* * * * * ?", "TimeZone": "Nowhere/City"}, "Nowhere/City"),
    ]:
        result = DeploymentWindow().run(rule_context(tmp_path, configuration))
        assert not result.succeeded
        assert result.failure_type is FailureType.CONFIGURATION_ERROR
        assert result.message and named in result.message
