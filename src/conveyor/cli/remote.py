"""Talking to a Conveyor server the way any CodePipeline client does: boto3 at an endpoint.

`remote` gives a click command ``--endpoint`` (``$CONVEYOR_ENDPOINT``) and ``--json`` and
hands it an `Api`. Credentials and a region are set on the client, so no AWS configuration is
needed. API errors become ``error: <Code>: <message>`` and exit status 1, never a traceback;
a server that does not answer gets a hint to start one.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from conveyor.cli import render
from conveyor.cli.extensions import keep_extensions

DEFAULT_ENDPOINT = "http://127.0.0.1:8470"
ENDPOINT_ENV = "CONVEYOR_ENDPOINT"
CREDENTIAL = "conveyor"
DEFAULT_REGION = "us-east-1"
PAGE = 100


class CommandError(click.ClickException):
    """A failure the user can act on, printed as ``error: <message>``; exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def region() -> str:
    return (
        os.environ.get("CONVEYOR_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    )


def signed_get(url: str) -> Any:
    """A GET of ``url`` (a server's own page, such as an action's log) as a ``urllib``
    request signed with the same key as the client's calls, for servers that require it."""
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url)
    credentials = Credentials(
        os.environ.get("AWS_ACCESS_KEY_ID") or CREDENTIAL,
        os.environ.get("AWS_SECRET_ACCESS_KEY") or CREDENTIAL,
    )
    SigV4Auth(credentials, "codepipeline", region()).add_auth(request)
    return urllib.request.Request(url, headers=dict(request.headers.items()))


def unreachable(endpoint: str) -> CommandError:
    return CommandError(f"cannot reach Conveyor at {endpoint}: start one with 'conveyor server'")


def make_client(endpoint: str) -> Any:
    """A CodePipeline client for ``endpoint``; the server does the validating. botocore's,
    the same client boto3 hands out, without importing boto3 and s3transfer for it."""
    import botocore.session  # here: it takes a while to import, and most commands never need it
    from botocore.config import Config

    config = Config(
        parameter_validation=False,
        retries={"total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=60,
        user_agent_extra="conveyor-cli",
    )
    return botocore.session.get_session().create_client(
        "codepipeline",
        region_name=region(),
        endpoint_url=endpoint,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or CREDENTIAL,
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or CREDENTIAL,
        config=config,
    )


class Api:
    """One command's connection: calls without ``ResponseMetadata``, and its output mode."""

    def __init__(self, endpoint: str, as_json: bool) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.as_json = as_json
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = keep_extensions(make_client(self.endpoint))
        return self._client

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """``operation`` (boto3's snake_case name) with ``params``; the response as a dict."""
        response: dict[str, Any] = getattr(self.client, operation)(**params)
        response.pop("ResponseMetadata", None)
        return response

    def items(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item under ``key``, page after page, fetched as they are consumed."""
        token: str | None = None
        while True:
            page = self.call(
                operation, maxResults=PAGE, **params, **({"nextToken": token} if token else {})
            )
            yield from page.get(key) or []
            token = page.get("nextToken")
            if not token:
                return

    def pages(
        self, operation: str, key: str, limit: int | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        """Every item under ``key`` over all pages (or the first ``limit`` of them)."""
        found = self.items(operation, key, **params)
        return list(found if limit is None else itertools.islice(found, limit))

    def emit(self, response: Any, text: str | Callable[[], str]) -> None:
        """``response`` as JSON with ``--json``; otherwise ``text`` for people."""
        if self.as_json:
            click.echo(render.as_json(response))
        else:
            click.echo(text() if callable(text) else text)


def state_of(api: Api, name: str) -> dict[str, Any]:
    return api.call("get_pipeline_state", name=name)


def stage_of(state: dict[str, Any], stage: str) -> dict[str, Any]:
    for found in state.get("stageStates") or ():
        if found.get("stageName") == stage:
            return dict(found)
    names = ", ".join(s.get("stageName", "?") for s in state.get("stageStates") or ())
    raise CommandError(f"pipeline '{state.get('pipelineName')}' has no stage '{stage}' ({names})")


def action_of(state: dict[str, Any], stage: str, action: str) -> dict[str, Any]:
    for found in stage_of(state, stage).get("actionStates") or ():
        if found.get("actionName") == action:
            return dict(found)
    raise CommandError(f"stage '{stage}' has no action '{action}'")


@contextmanager
def translated(endpoint: str) -> Iterator[None]:
    """Turn what boto3 and urllib raise into `CommandError`s with one line to say."""
    import urllib.error

    from botocore.exceptions import (  # here: botocore takes a while to import
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
    )

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error") or {}
        code = error.get("Code") or "Error"
        raise CommandError(f"{code}: {error.get('Message') or exc}") from None
    except (EndpointConnectionError, ConnectTimeoutError):
        raise unreachable(endpoint) from None
    except BotoCoreError as exc:
        raise CommandError(str(exc)) from None
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", errors="replace").strip()
        raise CommandError(f"{exc.code} {exc.reason}: {body}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionError | TimeoutError):
            raise unreachable(endpoint) from None
        raise CommandError(f"{exc.reason}") from None
    except ValueError as exc:  # botocore: an endpoint that is not a URL
        if "endpoint" in str(exc).lower():
            raise CommandError(str(exc)) from None
        raise


def remote(func: Callable[..., None]) -> Callable[..., None]:
    """Add ``--endpoint`` and ``--json`` to a command whose first argument is an `Api`."""

    @click.option("--json", "as_json", is_flag=True, help="Print the API response as JSON.")
    @click.option(
        "--endpoint",
        envvar=ENDPOINT_ENV,
        default=DEFAULT_ENDPOINT,
        show_default=True,
        show_envvar=True,
        help="The Conveyor server's URL.",
    )
    @functools.wraps(func)
    def command(endpoint: str, as_json: bool, **params: Any) -> None:
        api = Api(endpoint, as_json)
        with translated(api.endpoint):
            func(api, **params)

    return command
