"""The ``Invoke/AWS/Lambda/1`` executor: a Python function run here as Lambda would run it.

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
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.process import run_process

__all__ = ["LambdaInvoke"]

# Runs in the function's process: import the handler, call it with the event and a context.
_RUNNER = """\
import importlib, json, os, sys, time, uuid
handler, event_file, deadline = sys.argv[1], sys.argv[2], float(sys.argv[3])
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
print(json.dumps(result, default=str) if result is not None else "null")
"""
# The longest a function may run, as on Lambda: 15 minutes.
_FUNCTION_TIMEOUT = 15 * 60


class _Misconfigured(Exception):
    pass


class LambdaInvoke:
    """Runs the local handler that ``lambda_functions`` gives the action's ``FunctionName``."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def _handler(self, name: str) -> tuple[str, Path]:
        mapped = self.config.lambda_functions.get(name)
        if mapped is None:
            known = ", ".join(sorted(self.config.lambda_functions)) or "none"
            raise _Misconfigured(
                f"Function {name} is not in the lambda_functions setting (functions: {known})"
            )
        handler, folder = str(mapped.get("handler", "")), str(mapped.get("path", ""))
        module, sep, function = handler.partition(":")
        if not (module and sep and function):
            raise _Misconfigured(f"lambda_functions.{name}.handler must be module:function")
        path = Path(folder).expanduser() if folder else self.config.home
        path = path if path.is_absolute() else self.config.home / path
        if not path.is_dir():
            raise _Misconfigured(f"lambda_functions.{name}.path: there is no folder {path}")
        return handler, path

    def run(self, context: JobContext) -> JobResult:
        name = context.configuration.get("FunctionName", "").strip()
        try:
            handler, folder = self._handler(name)
        except _Misconfigured as error:
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
        event_file = context.workspace / "event.json"
        event_file.write_text(json.dumps(event), encoding="utf-8")
        limit = min(_FUNCTION_TIMEOUT, context.time_left or _FUNCTION_TIMEOUT)
        region = context.region or self.config.region
        arn = f"arn:aws:lambda:{region}:{self.config.account}:function:{name}"
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL_CODEPIPELINE": self.config.api_url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "CONVEYOR_FUNCTION_ARN": arn,
        }
        env.setdefault("AWS_ACCESS_KEY_ID", "conveyor")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "conveyor")
        context.log.write(f"Invoking {name} ({handler} in {folder})\n")
        context.log.flush()
        ended = run_process(
            [sys.executable, "-c", _RUNNER, handler, str(event_file), str(time.time() + limit)],
            cwd=folder,
            env=env,
            log=context.log,
            cancelled=context.cancelled,
            deadline=time.monotonic() + limit,
            started=context.process_started,
        )
        # The function's own calls gave the job its result, or the worker fails it with this.
        if ended.stopped is not None:
            message = f"Function {name} {ended.stopped}"
        elif ended.returncode != 0:
            tail = "\n".join(ended.tail[-5:])
            message = f"Function {name} failed (exit status {ended.returncode}):\n{tail}"
        else:
            message = (
                f"Function {name} returned without calling PutJobSuccessResult or "
                "PutJobFailureResult for its job."
            )
        return JobResult(succeeded=False, reported=True, message=message)
