"""The ``Rule/AWS/DeploymentWindow/1`` rule: pass only inside the window the cron opens.

Inside the window (``Cron`` in ``TimeZone``, UTC when none), the rule passes at once. Outside
it, the rule waits in its job for the window to open and passes then; it stops waiting when
the rule is stopped, and fails at once when the window does not open before the rule's time
runs out (AWS would wait out the timeout first: the outcome is the same), or never opens again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.actions.base import FailureType, JobContext, JobResult
from conveyor.rules.clock import Clock
from conveyor.rules.cron import CronError, next_start, parse, zone

__all__ = ["DeploymentWindow"]

# The longest single wait: the window is looked at again at least this often.
_LONGEST_WAIT = 60.0


class DeploymentWindow:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or Clock()

    def run(self, context: JobContext) -> JobResult:
        configuration = context.configuration
        text = configuration.get("Cron", "").strip()
        if not text:
            return JobResult.failed(
                "DeploymentWindow needs the configuration Cron", FailureType.CONFIGURATION_ERROR
            )
        zone_name = configuration.get("TimeZone") or "UTC"
        try:
            cron, where = parse(text), zone(zone_name)
        except CronError as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        window = f"the deployment window {text!r} ({zone_name})"
        started = self._clock.now()
        deadline = None if context.time_left is None else started + context.time_left
        said = False
        while True:
            now = self._clock.now()
            opens = next_start(cron, datetime.fromtimestamp(now, UTC), where)
            if opens is None:
                return _failed(f"{window} never opens again")
            wait = opens.timestamp() - now
            if wait <= 0:
                text = f"Within {window}"
                print(f"{text}: passed", file=context.log)
                return JobResult(succeeded=True, summary=text)
            shown = opens.astimezone(where).isoformat(timespec="minutes")
            if deadline is not None and opens.timestamp() > deadline:
                return _failed(
                    f"Outside {window}: it opens next at {shown}, after the rule's time runs out"
                )
            if not said:
                print(f"Outside {window}: waiting for it to open at {shown}", file=context.log)
                context.log.flush()
                said = True
            if self._clock.wait(context.cancelled, min(wait, _LONGEST_WAIT)):
                return _failed(f"Stopped while waiting for {window} to open at {shown}")


def _failed(text: str) -> JobResult:
    return JobResult(succeeded=False, summary=text, message=text)
