"""The ``Invoke/AWS/Lambda/1`` executor: a function run here as Lambda would run it, or invoked
through a Lambda endpoint.

The settings map a ``FunctionName`` to a handler (``module:function``) in a folder
(``lambda_functions``). Each job runs the handler in a fresh Python process, in that folder,
with the event CodePipeline sends a function (``{"CodePipeline.job": {"id", "accountId",
"data"}}``, the data holding the configuration with ``UserParameters``, the input and output
artifacts, the artifact credentials and any continuation token) and a Lambda-like context.
``AWS_ENDPOINT_URL_CODEPIPELINE`` points at this server, so the function's own
``put_job_success_result`` / ``put_job_failure_result`` calls end the job, exactly as on AWS,
continuation tokens and output variables included. A function that returns without calling
either fails the action at once (AWS would wait 20 minutes first); one that raises fails it
with the last lines it wrote.

A function the settings do not map is invoked through the Lambda endpoint of the settings
(``aws_endpoints.lambda``), synchronously, with the same event. It reports its job's result to
this server as a local one does (its own environment must point it here); when it has not by
the time it returns, the action fails saying so, and a function error fails it with the
error's message.

`run_local` and `invoke_remote` are shared with the LambdaInvoke stage-condition rule.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.process import ProcessResult, run_process

__all__ = [
    "FUNCTION_TIMEOUT",
    "LambdaInvoke",
    "Misconfigured",
    "Remote",
    "invoke_remote",
    "local_failure",
    "local_handler",
    "run_local",
    "unknown_function",
]

# Runs in the function's process: import the handler, call it with the event and a context;
# what it returns goes to the result file, as JSON.
_RUNNER = """\
import importlib, json, os, sys, time, uuid
handler, event_file, deadline, result_file = sys.argv[1:5]
deadline = float(deadline)
sys.path.insert(0, os.getcwd())
module, _, name = handler.partition(":")
function = getattr(importlib.import_module(module), name)
class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = "$LATEST"
    aws_request_id = str(uuid.uuid4())
    memory_limit_in_mb = "128"
    invoked_function_arn = os.environ["CONVEYOR_FUNCTION_ARN"]
    def get_remaining_time_in_millis(self):
        return max(0, int((deadline - time.time()) * 1000))
with open(event_file, encoding="utf-8") as opened:
    event = json.load(opened)
result = function(event, Context())
with open(result_file, "w", encoding="utf-8") as opened:
    json.dump(result, opened, default=str)
"""
# The longest a function may run, as on Lambda: 15 minutes.
FUNCTION_TIMEOUT = 15 * 60


class Misconfigured(Exception):
    pass


def local_handler(config: ProviderConfig, name: str) -> tuple[str, Path] | None:
    """The handler and folder ``lambda_functions`` maps ``name`` to; None when it maps none."""
    mapped = config.lambda_functions.get(name)
    if mapped is None:
        return None
    handler, folder = str(mapped.get("handler", "")), str(mapped.get("path", ""))
    module, sep, function = handler.partition(":")
    if not (module and sep and function):
        raise Misconfigured(f"lambda_functions.{name}.handler must be module:function")
    path = Path(folder).expanduser() if folder else config.home
    path = path if path.is_absolute() else config.home / path
    if not path.is_dir():
        raise Misconfigured(f"lambda_functions.{name}.path: there is no folder {path}")
    return handler, path


def unknown_function(config: ProviderConfig, name: str) -> Misconfigured:
    known = ", ".join(sorted(config.lambda_functions)) or "none"
    return Misconfigured(
        f"Function {name} is not in the lambda_functions setting (functions: {known}), "
        "and no Lambda endpoint is set (aws_endpoints.lambda) to invoke it through"
    )


def run_local(
    config: ProviderConfig,
    context: JobContext,
    name: str,
    mapped: tuple[str, Path],
    event: Mapping[str, Any],
) -> tuple[ProcessResult, Path]:
    """Run the mapped handler with ``event``; the process's end and the file its return value
    is written to (as JSON; absent when it raised)."""
    handler, folder = mapped
    event_file = context.workspace / "event.json"
    result_file = context.workspace / "result.json"
    event_file.write_text(json.dumps(event), encoding="utf-8")
    limit = min(FUNCTION_TIMEOUT, context.time_left or FUNCTION_TIMEOUT)
    region = context.region or config.region
    arn = f"arn:aws:lambda:{region}:{config.account}:function:{name}"
    env = {
        **os.environ,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "CONVEYOR_FUNCTION_ARN": arn,
    }
    if config.api_url:
        env["AWS_ENDPOINT_URL_CODEPIPELINE"] = config.api_url
    env.setdefault("AWS_ACCESS_KEY_ID", "conveyor")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "conveyor")
    context.log.write(f"Invoking {name} ({handler} in {folder})\n")
    context.log.flush()
    ended = run_process(
        [
            sys.executable,
            "-c",
            _RUNNER,
            handler,
            str(event_file),
            str(time.time() + limit),
            str(result_file),
        ],
        cwd=folder,
        env=env,
        log=context.log,
        cancelled=context.cancelled,
        deadline=time.monotonic() + limit,
        started=context.process_started,
    )
    return ended, result_file


def local_failure(name: str, ended: ProcessResult) -> str | None:
    """Why the function's process did not end well; None when it returned."""
    if ended.stopped is not None:
        return f"Function {name} {ended.stopped}"
    if ended.returncode != 0:
        tail = "\n".join(ended.tail[-5:])
        return f"Function {name} failed (exit status {ended.returncode}):\n{tail}"
    return None


@dataclass(frozen=True, slots=True)
class Remote:
    """What a function invoked through the endpoint answered: its payload, and its error's
    message when it failed."""

    payload: str
    error: str | None


def invoke_remote(
    config: ProviderConfig, context: JobContext, name: str, event: Mapping[str, Any]
) -> Remote:
    """Invoke ``name`` through ``aws_endpoints.lambda``, synchronously; boto3's errors (the
    function does not exist, say) are raised."""
    from conveyor.actions.aws import client  # here: boto3 is slow to import

    context.log.write(f"Invoking {name} through the Lambda endpoint\n")
    context.log.flush()
    answer = client(config, "lambda", context).invoke(
        FunctionName=name,
        InvocationType="RequestResponse",
        Payload=json.dumps(event).encode("utf-8"),
    )
    payload = answer["Payload"].read().decode("utf-8", "replace")
    error = answer.get("FunctionError")
    if error:
        try:
            found = json.loads(payload)
            message = str(found.get("errorMessage") or payload)
        except (ValueError, AttributeError):
            message = payload
        return Remote(payload, f"{error}: {message}")
    return Remote(payload, None)


class LambdaInvoke:
    """Runs the local handler that ``lambda_functions`` gives the action's ``FunctionName``,
    or invokes the function through the Lambda endpoint."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def run(self, context: JobContext) -> JobResult:
        name = context.configuration.get("FunctionName", "").strip()
        try:
            mapped = local_handler(self.config, name)
            if mapped is None and "lambda" not in self.config.aws_endpoints:
                raise unknown_function(self.config, name)
        except Misconfigured as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        if not self.config.api_url:
            return JobResult.failed("This server's address is unknown to the Lambda executor")
        event = {
            "CodePipeline.job": {
                "id": context.job_id,
                "accountId": self.config.account,
                "data": dict(context.job_data),
            }
        }
        if mapped is None:
            return self._remote(context, name, event)
        ended, _ = run_local(self.config, context, name, mapped, event)
        # The function's own calls gave the job its result, or the worker fails it with this.
        message = local_failure(name, ended) or (
            f"Function {name} returned without calling PutJobSuccessResult or "
            "PutJobFailureResult for its job."
        )
        return JobResult(succeeded=False, reported=True, message=message)

    def _remote(self, context: JobContext, name: str, event: Mapping[str, Any]) -> JobResult:
        from conveyor.actions.aws import AwsError, describe  # here: boto3 is slow to import

        try:
            answer = invoke_remote(self.config, context, name, event)
        except AwsError as error:
            return JobResult.failed(f"Lambda refused: {describe(error)}")
        if answer.error is not None:
            message = f"Function {name} failed: {answer.error}"
        else:
            message = (
                f"Function {name} returned without calling PutJobSuccessResult or "
                "PutJobFailureResult for its job on this server."
            )
        # The function may have reported the job's result itself while it ran.
        return JobResult(succeeded=False, reported=True, message=message)
