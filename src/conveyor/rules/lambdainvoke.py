"""The ``Rule/AWS/LambdaInvoke/1`` rule: a function decides whether the rule passes.

The function is found as the Invoke/Lambda action finds it (`conveyor.actions.lambdainvoke`):
a local handler that ``lambda_functions`` maps ``FunctionName`` to, run in its own Python
process, or else a function invoked through the Lambda endpoint of the settings
(``aws_endpoints.lambda``). It gets the event an Invoke/Lambda action gets, the rule's
configuration (``UserParameters`` included) in its ``actionConfiguration``. The rule passes
when the function returns, and fails when it raises (or, through the endpoint, answers a
function error), with the error's message; what it returned is the rule's summary.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.lambdainvoke import (
    Misconfigured,
    invoke_remote,
    local_failure,
    local_handler,
    run_local,
    unknown_function,
)

__all__ = ["LambdaRule"]

# The longest summary ListRuleExecutions shows of what the function returned.
_SUMMARY = 200


def _event(config: ProviderConfig, context: JobContext) -> dict[str, Any]:
    data = dict(context.job_data) or {
        "actionConfiguration": {"configuration": dict(context.configuration)},
        "inputArtifacts": [
            {
                "name": a.name,
                "revision": a.revision,
                "location": {
                    "type": "S3",
                    "s3Location": {"bucketName": a.bucket, "objectKey": a.key},
                },
            }
            for a in context.input_artifacts
        ],
    }
    return {"CodePipeline.job": {"id": context.job_id, "accountId": config.account, "data": data}}


def _passed(name: str, returned: str) -> JobResult:
    text = returned if len(returned) <= _SUMMARY else returned[: _SUMMARY - 3] + "..."
    return JobResult(succeeded=True, summary=f"Function {name} returned {text}")


class LambdaRule:
    def __init__(self, config: ProviderConfig) -> None:
        self._config = config

    def run(self, context: JobContext) -> JobResult:
        name = context.configuration.get("FunctionName", "").strip()
        try:
            if not name:
                raise Misconfigured("LambdaInvoke needs the configuration FunctionName")
            mapped = local_handler(self._config, name)
            if mapped is None and "lambda" not in self._config.aws_endpoints:
                raise unknown_function(self._config, name)
        except Misconfigured as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        event = _event(self._config, context)
        if mapped is None:
            return self._remote(context, name, event)
        ended, result_file = run_local(self._config, context, name, mapped, event)
        failure = local_failure(name, ended)
        if failure is not None or not result_file.is_file():
            text = failure or f"Function {name} ended without returning"
            return JobResult(succeeded=False, summary=text.split("\n", 1)[0], message=text)
        return _passed(name, result_file.read_text(encoding="utf-8"))

    def _remote(self, context: JobContext, name: str, event: dict[str, Any]) -> JobResult:
        from conveyor.actions.aws import AwsError, describe  # here: boto3 is slow to import

        try:
            answer = invoke_remote(self._config, context, name, event)
        except AwsError as error:
            text = f"Lambda refused: {describe(error)}"
            return JobResult(succeeded=False, summary=text, message=text)
        if answer.error is not None:
            text = f"Function {name} failed: {answer.error}"
            return JobResult(succeeded=False, summary=text, message=text)
        try:
            returned = json.dumps(json.loads(answer.payload))
        except ValueError:
            returned = answer.payload
        return _passed(name, returned)
