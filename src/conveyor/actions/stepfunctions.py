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
from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.inputs import input_file, put_output
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["StepFunctionsInvoke"]

_NAME_LIMIT = 80


class _Misconfigured(Exception):
    pass


class _Failed(Exception):
    pass


class StepFunctionsInvoke:
    """Runs state machines at the ``stepfunctions`` endpoint of the settings."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None = None) -> None:
        self.config = config
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        try:
            return self._run(context)
        except _Misconfigured as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        except (_Failed, aws.Stopped, ArtifactError) as error:
            return JobResult.failed(str(error))
        except aws.AwsError as error:
            return JobResult.failed(f"Step Functions refused: {aws.describe(error)}")
        except (OSError, UnicodeDecodeError) as error:
            return JobResult.failed(f"Step Functions invoke failed: {error}")

    def _input(self, context: JobContext, kind: str, value: str) -> str:
        if kind == "Literal":
            text = value or "{}"
        elif kind == "FilePath":
            if len(context.input_artifacts) != 1:
                raise _Misconfigured("InputType FilePath needs exactly one input artifact")
            artifact = context.input_artifacts[0]
            found = input_file(
                context,
                artifact,
                value,
                max_bytes=self.config.max_artifact_bytes,
                unpacked=self.unpacked,
            )
            if found is None:
                raise _Misconfigured(
                    f"Input {value!r} is not a file of input artifact {artifact.name}"
                )
            text = found.read_text(encoding="utf-8")
        else:
            raise _Misconfigured(f"InputType must be Literal or FilePath, not {kind!r}")
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            raise _Misconfigured(f"The execution input is not valid JSON: {error}") from error
        return text

    def _run(self, context: JobContext) -> JobResult:
        settings = {k: v.strip() for k, v in context.configuration.items()}
        machine = settings.get("StateMachineArn", "")
        if not machine:
            raise _Misconfigured("The configuration has no StateMachineArn")
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
            raise _Failed(f"Execution {arn} {status}: {error}" + (f": {cause}" if cause else ""))
        if context.output_artifacts:
            put_output(context, "output.json", execution.get("output") or "null")
        return JobResult(
            succeeded=True,
            summary=f"Execution {name[:_NAME_LIMIT]} succeeded",
            output_variables={"StateMachineArn": machine, "ExecutionArn": arn},
            external_execution_id=arn,
        )
