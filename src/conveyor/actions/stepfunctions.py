"""The ``Invoke/AWS/StepFunctions/1`` executor: start a state machine execution and wait.

The execution is named ``<ExecutionNamePrefix>-<action execution id>`` (just the id without
a prefix), so a retry never collides with an earlier run. Its input is ``Input`` itself
(``InputType`` ``Literal``, the default; ``{}`` when there is none) or the JSON file that
``Input`` names in the input artifact (``FilePath``). The action ends with the execution:
``SUCCEEDED`` succeeds, with ``StateMachineArn`` and ``ExecutionArn`` as output variables and
the execution's output written as ``output.json`` into the output artifact when there is one;
any other end fails the action with the execution's error and cause.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.actions import aws
from conveyor.actions.base import JobContext, JobResult, ProviderConfig
from conveyor.actions.inputs import input_file, put_output
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["StepFunctionsInvoke"]

_NAME_LIMIT = 80


class StepFunctionsInvoke:
    """Runs state machines at the ``stepfunctions`` endpoint of the settings."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None = None) -> None:
        self.config = config
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        return aws.reported("Step Functions", "invoke", lambda: self._run(context))

    def _input(self, context: JobContext, kind: str, value: str) -> str:
        if kind == "Literal":
            text = value or "{}"
        elif kind == "FilePath":
            if len(context.input_artifacts) != 1:
                raise aws.Misconfigured("InputType FilePath needs exactly one input artifact")
            artifact = context.input_artifacts[0]
            found = input_file(
                context,
                artifact,
                value,
                max_bytes=self.config.max_artifact_bytes,
                unpacked=self.unpacked,
            )
            if found is None:
                raise aws.Misconfigured(
                    f"Input {value!r} is not a file of input artifact {artifact.name}"
                )
            text = found.read_text(encoding="utf-8")
        else:
            raise aws.Misconfigured(f"InputType must be Literal or FilePath, not {kind!r}")
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            raise aws.Misconfigured(f"The execution input is not valid JSON: {error}") from error
        return text

    def _run(self, context: JobContext) -> JobResult:
        settings = {k: v.strip() for k, v in context.configuration.items()}
        machine = settings.get("StateMachineArn", "")
        if not machine:
            raise aws.Misconfigured("The configuration has no StateMachineArn")
        kind = settings.get("InputType") or "Literal"
        execution_input = self._input(context, kind, settings.get("Input", ""))
        prefix = settings.get("ExecutionNamePrefix", "")
        name = f"{prefix}-{context.action_execution_id}" if prefix else context.action_execution_id
        sfn: Any = aws.client(self.config, "stepfunctions", context)
        started = sfn.start_execution(
            stateMachineArn=machine, name=name[:_NAME_LIMIT], input=execution_input
        )
        arn = started["executionArn"]
        context.log.write(f"Started {arn}\n")

        def ended() -> dict[str, Any] | None:
            found = sfn.describe_execution(executionArn=arn)
            return None if found["status"] == "RUNNING" else dict(found)

        execution = aws.wait(context, ended, f"execution {arn}")
        status = execution["status"]
        context.log.write(f"Execution {arn} is {status}\n")
        if status != "SUCCEEDED":
            error = execution.get("error") or status
            cause = execution.get("cause")
            raise aws.Failed(f"Execution {arn} {status}: {error}" + (f": {cause}" if cause else ""))
        if context.output_artifacts:
            put_output(context, "output.json", execution.get("output") or "null")
        return JobResult(
            succeeded=True,
            summary=f"Execution {name[:_NAME_LIMIT]} succeeded",
            output_variables={"StateMachineArn": machine, "ExecutionArn": arn},
            external_execution_id=arn,
        )
