"""What the executors that call AWS services share: a client per service, from the settings,
and a wait that gives up when the action is stopped or out of time.

A service runs only when ``aws_endpoints`` names it: a URL (LocalStack, moto, a private
endpoint) or ``aws`` for the service's own endpoint in the installation's Region. Credentials
come from the usual AWS chain (environment, ``~/.aws``, instance role), never from Conveyor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.artifacts import ArtifactError

__all__ = [
    "AWS_DEFAULT",
    "AwsError",
    "Failed",
    "Misconfigured",
    "Stopped",
    "client",
    "describe",
    "error_code",
    "region_of",
    "reported",
    "wait",
]

# The value of an ``aws_endpoints`` entry that means the service's own endpoint.
AWS_DEFAULT = "aws"
# Seconds between two looks at something that is still moving: from the first to the last.
_FIRST_PAUSE = 0.2
_LAST_PAUSE = 5.0

AwsError = (ClientError, BotoCoreError)
T = TypeVar("T")


class Stopped(Exception):
    """The action was stopped, or ran out of time, while waiting on a service."""


class Misconfigured(Exception):
    """The action's configuration cannot work: it fails as a configuration error."""


class Failed(Exception):
    """The service did what it was asked and that failed: the action fails saying why."""


def reported(service: str, doing: str, work: Callable[[], JobResult]) -> JobResult:
    """``work``'s result, or the action's failure for what it raised: a configuration error,
    a failure the service reported, the service's refusal, or a file that could not be read."""
    try:
        return work()
    except Misconfigured as error:
        return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
    except (Failed, Stopped, ArtifactError) as error:
        return JobResult.failed(str(error))
    except AwsError as error:
        return JobResult.failed(f"{service} refused: {describe(error)}")
    except (OSError, UnicodeDecodeError) as error:
        return JobResult.failed(f"{service} {doing} failed: {error}")


def client(
    config: ProviderConfig,
    service: str,
    context: JobContext | None = None,
    *,
    endpoint_of: str | None = None,
) -> Any:
    """A boto3 client of ``service`` at the endpoint the settings give it (or give
    ``endpoint_of``), in the Region the job's action runs in (the installation's when it is
    not known). S3 is addressed by path at endpoints other than AWS's own."""
    endpoint = config.aws_endpoints[endpoint_of or service]
    maker: Any = boto3.session.Session()
    options: dict[str, Any] = {"retries": {"max_attempts": 5, "mode": "standard"}}
    if service == "s3" and endpoint != AWS_DEFAULT:
        options["s3"] = {"addressing_style": "path"}
    return maker.client(
        service,
        region_name=region_of(config, context),
        endpoint_url=None if endpoint == AWS_DEFAULT else endpoint,
        config=Config(**options),
    )


def region_of(config: ProviderConfig, context: JobContext | None = None) -> str:
    """The Region the job's action runs in, or the installation's."""
    return (context.region if context else None) or config.region


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def describe(error: Exception) -> str:
    """A service error as a sentence: its message, which names what is wrong."""
    if isinstance(error, ClientError):
        found = error.response.get("Error", {})
        return str(found.get("Message") or found.get("Code") or error)
    return str(error)


def wait(context: JobContext, look: Callable[[], T | None], what: str) -> T:
    """Call ``look`` until it answers something other than None, pausing longer each time;
    `Stopped` when the action is cancelled or its time is up first."""
    pause = _FIRST_PAUSE
    deadline = None if context.time_left is None else time.monotonic() + context.time_left
    while True:
        found = look()
        if found is not None:
            return found
        if deadline is not None and time.monotonic() + pause > deadline:
            raise Stopped(f"Timed out waiting for {what}")
        if context.cancelled.wait(pause):
            raise Stopped(f"Stopped while waiting for {what}")
        pause = min(pause * 2, _LAST_PAUSE)
