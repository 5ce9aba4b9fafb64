"""The CloudWatchAlarm rule against moto's CloudWatch: an alarm in ALARM fails the rule, and
WaitTime gives it time to change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.actions.base import FailureType, ProviderConfig
from conveyor.rules.clock import Clock
from conveyor.rules.cloudwatchalarm import CloudWatchAlarm
from tests.support.moto import CREDENTIALS, aws_client, moto_server
from tests.support.rulejobs import log_of, rule_context


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def _alarm(endpoint: str, name: str, state: str) -> Any:
    cloudwatch = aws_client("cloudwatch", endpoint)
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="App",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    return cloudwatch


def _rule(tmp_path: Path, endpoint: str, clock: Clock | None = None) -> CloudWatchAlarm:
    config = ProviderConfig(home=tmp_path, aws_endpoints={"cloudwatch": endpoint})
    return CloudWatchAlarm(config, clock)


def test_an_alarm_in_alarm_fails_the_rule(tmp_path: Path, endpoint: str) -> None:
    _alarm(endpoint, "errors-firing", "ALARM")
    context = rule_context(tmp_path, {"AlarmName": "errors-firing"})
    result = _rule(tmp_path, endpoint).run(context)
    assert not result.succeeded
    assert result.message == "Alarm errors-firing is ALARM"
    assert "failed" in log_of(context)


def test_an_alarm_that_is_ok_passes_the_rule(tmp_path: Path, endpoint: str) -> None:
    _alarm(endpoint, "errors-quiet", "OK")
    result = _rule(tmp_path, endpoint).run(rule_context(tmp_path, {"AlarmName": "errors-quiet"}))
    assert result.succeeded, result.message
    assert result.summary == "Alarm errors-quiet is OK"


def test_alarm_states_chooses_the_states_that_fail(tmp_path: Path, endpoint: str) -> None:
    _alarm(endpoint, "errors-unknown", "INSUFFICIENT_DATA")
    rule = _rule(tmp_path, endpoint)
    watched = {"AlarmName": "errors-unknown", "AlarmStates": "ALARM, INSUFFICIENT_DATA"}
    assert not rule.run(rule_context(tmp_path, watched)).succeeded
    assert rule.run(rule_context(tmp_path, {"AlarmName": "errors-unknown"})).succeeded


def test_wait_time_lets_the_alarm_recover(tmp_path: Path, endpoint: str) -> None:
    cloudwatch = _alarm(endpoint, "errors-recovering", "ALARM")
    context = rule_context(tmp_path, {"AlarmName": "errors-recovering", "WaitTime": "10"})
    waiting = threading.Event()

    def wait(event: threading.Event, seconds: float) -> bool:
        waiting.set()
        return event.wait(seconds)

    outcome: list[Any] = []
    rule = _rule(tmp_path, endpoint, Clock(wait=wait))
    thread = threading.Thread(target=lambda: outcome.append(rule.run(context)))
    thread.start()
    assert waiting.wait(60), "the rule never waited"
    cloudwatch.set_alarm_state(AlarmName="errors-recovering", StateValue="OK", StateReason="ok")
    thread.join(60)
    assert outcome and outcome[0].succeeded, outcome
    assert "waiting up to 600 s" in log_of(context)


def test_wait_time_runs_out(tmp_path: Path, endpoint: str) -> None:
    _alarm(endpoint, "errors-stuck", "ALARM")
    now = [1_000_000.0]

    def wait(event: threading.Event, seconds: float) -> bool:
        now[0] += seconds
        return False

    rule = _rule(tmp_path, endpoint, Clock(now=lambda: now[0], wait=wait))
    result = rule.run(rule_context(tmp_path, {"AlarmName": "errors-stuck", "WaitTime": "1"}))
    assert not result.succeeded
    assert result.message == "Alarm errors-stuck is ALARM after waiting 60 s"


def test_a_stopped_rule_stops_waiting(tmp_path: Path, endpoint: str) -> None:
    _alarm(endpoint, "errors-stopped", "ALARM")
    cancelled = threading.Event()
    cancelled.set()
    context = rule_context(
        tmp_path, {"AlarmName": "errors-stopped", "WaitTime": "5"}, cancelled=cancelled
    )
    result = _rule(tmp_path, endpoint).run(context)
    assert not result.succeeded
    assert result.message and result.message.startswith("Stopped while alarm")


def test_missing_alarm_and_misconfigurations(tmp_path: Path, endpoint: str) -> None:
    rule = _rule(tmp_path, endpoint)
    missing = rule.run(rule_context(tmp_path, {"AlarmName": "no-such-alarm"}))
    assert not missing.succeeded
    assert missing.message == "There is no CloudWatch alarm named no-such-alarm"
    for configuration, named in [
        ({}, "AlarmName"),
        ({"AlarmName": "a", "AlarmStates": "RED"}, "RED"),
        ({"AlarmName": "a", "WaitTime": "soon"}, "WaitTime"),
    ]:
        result = rule.run(rule_context(tmp_path, configuration))
        assert result.failure_type is FailureType.CONFIGURATION_ERROR
        assert result.message and named in result.message
    unset = CloudWatchAlarm(ProviderConfig(home=tmp_path))
    result = unset.run(rule_context(tmp_path, {"AlarmName": "a"}))
    assert result.message and "aws_endpoints.cloudwatch" in result.message
