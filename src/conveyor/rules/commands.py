"""The ``Rule/AWS/Commands/1`` rule: shell commands whose success is the rule's.

The commands run exactly as the Commands action runs them (`conveyor.actions.commands`): one
bash over the rule's unpacked input artifacts, in order, the first failure stopping the rest,
their output in the rule's log. As on AWS, a command must fit on one line, and the rule's
commands get at most 55 minutes, whatever the rule's own timeout.
"""

from __future__ import annotations

from dataclasses import replace

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.commands import Commands
from conveyor.actions.shell import shorten
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["LIMIT_SECONDS", "CommandsRule"]

# AWS runs a Commands rule's build for at most 55 minutes.
LIMIT_SECONDS = 55 * 60


class CommandsRule:
    def __init__(self, config: ProviderConfig, unpacked: Unpacked) -> None:
        self._commands = Commands(config, unpacked)

    def run(self, context: JobContext) -> JobResult:
        if not context.commands:
            return JobResult.failed(
                "The Commands rule needs commands", FailureType.CONFIGURATION_ERROR
            )
        for number, command in enumerate(context.commands, 1):
            if "\n" in command.strip():
                return JobResult.failed(
                    f"Command {number} ({shorten(command)}) spans several lines; a Commands "
                    "rule takes single-line commands only",
                    FailureType.CONFIGURATION_ERROR,
                )
        time_left = min(context.time_left or LIMIT_SECONDS, LIMIT_SECONDS)
        # A rule has no output artifacts nor output variables: only whether its commands pass.
        result = self._commands.run(
            replace(context, output_artifacts=(), output_variables=(), time_left=time_left)
        )
        if result.succeeded:
            return replace(result, output_variables={})
        return replace(result, summary=(result.message or "").split("\n", 1)[0])
