"""The ``Rule/AWS/CloudWatchAlarm/1`` rule: fail while a CloudWatch alarm is in a watched state.

The alarm (``AlarmName``, a metric or composite alarm) is read through boto3 from the
CloudWatch endpoint the settings give (``aws_endpoints.cloudwatch``). The rule watches the
states ``AlarmStates`` lists (comma-separated among ALARM, OK and INSUFFICIENT_DATA; ALARM
when none): an alarm outside them passes the rule at once. One inside them fails the rule,
unless ``WaitTime`` gives it minutes to change state: the rule then looks again, more and more
slowly up to every 10 seconds, and passes as soon as the alarm leaves the watched states, or
fails once the wait, or the rule's own time, is over.
"""

from __future__ import annotations

from typing import Any

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.rules.clock import Clock

__all__ = ["STATES", "CloudWatchAlarm"]

STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
_FIRST_PAUSE = 0.2
_LAST_PAUSE = 10.0


class _Misconfigured(Exception):
    pass


def _watched(configuration: dict[str, str]) -> tuple[str, ...]:
    raw = configuration.get("AlarmStates", "").strip()
    states = tuple(s.strip() for s in raw.split(",") if s.strip()) or ("ALARM",)
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise _Misconfigured(
            f"AlarmStates {', '.join(unknown)}: a state is one of {', '.join(STATES)}"
        )
    return states


def _wait_seconds(configuration: dict[str, str]) -> float:
    raw = configuration.get("WaitTime", "").strip()
    if not raw:
        return 0.0
    try:
        minutes = float(raw)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes <= 24 * 60 * 60:
        raise _Misconfigured(f"WaitTime {raw!r} must be a number of minutes")
    return minutes * 60


class CloudWatchAlarm:
    def __init__(self, config: ProviderConfig, clock: Clock | None = None) -> None:
        self._config = config
        self._clock = clock or Clock()

    def run(self, context: JobContext) -> JobResult:
        configuration = dict(context.configuration)
        name = configuration.get("AlarmName", "").strip()
        try:
            if not name:
                raise _Misconfigured("CloudWatchAlarm needs the configuration AlarmName")
            watched, wait = _watched(configuration), _wait_seconds(configuration)
        except _Misconfigured as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        if "cloudwatch" not in self._config.aws_endpoints:
            return JobResult.failed(
                "The CloudWatchAlarm rule reads alarms from CloudWatch: set "
                "aws_endpoints.cloudwatch in the settings (a URL, or aws)",
                FailureType.CONFIGURATION_ERROR,
            )
        from conveyor.actions.aws import AwsError, client, describe, error_code  # boto3: slow

        try:
            cloudwatch = client(self._config, "cloudwatch", context)
            return self._watch(context, cloudwatch, name, watched, wait)
        except AwsError as error:
            failure = (
                FailureType.PERMISSION_ERROR
                if error_code(error) in ("AccessDenied", "AccessDeniedException")
                else FailureType.JOB_FAILED
            )
            return JobResult.failed(f"CloudWatch refused: {describe(error)}", failure)

    def _watch(
        self,
        context: JobContext,
        cloudwatch: Any,
        name: str,
        watched: tuple[str, ...],
        wait: float,
    ) -> JobResult:
        started = self._clock.now()
        ends = started + wait
        if context.time_left is not None:
            ends = min(ends, started + context.time_left)
        pause = _FIRST_PAUSE
        said = False
        while True:
            state = _state(cloudwatch, name)
            if state is None:
                return _result(False, f"There is no CloudWatch alarm named {name}")
            if state not in watched:
                return _result(True, f"Alarm {name} is {state}", context)
            now = self._clock.now()
            if now >= ends:
                waited = f" after waiting {now - started:.0f} s" if wait else ""
                return _result(False, f"Alarm {name} is {state}{waited}", context)
            if not said:
                print(
                    f"Alarm {name} is {state}: waiting up to {ends - now:.0f} s for it to change",
                    file=context.log,
                )
                context.log.flush()
                said = True
            if self._clock.wait(context.cancelled, min(pause, ends - now)):
                return _result(False, f"Stopped while alarm {name} was {state}")
            pause = min(pause * 2, _LAST_PAUSE)


def _state(cloudwatch: Any, name: str) -> str | None:
    found = cloudwatch.describe_alarms(
        AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    alarms = [*found.get("MetricAlarms", ()), *found.get("CompositeAlarms", ())]
    return str(alarms[0]["StateValue"]) if alarms else None


def _result(passed: bool, text: str, context: JobContext | None = None) -> JobResult:
    if context is not None:
        print(f"{text}: {'passed' if passed else 'failed'}", file=context.log)
    if passed:
        return JobResult(succeeded=True, summary=text)
    return JobResult(succeeded=False, summary=text, message=text)
