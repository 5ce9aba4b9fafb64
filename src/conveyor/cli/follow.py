"""Following an execution on a server: ``conveyor watch NAME`` and ``conveyor start --wait``.

Both read the server's event stream (``/console/events``, the one the web console's pages
use): a line for each stage and action as it starts and ends, until the execution ends; the
exit status is 0 when it succeeded and 1 otherwise. The stream is opened before the
execution's status is read (or before it is started), so no change falls between the two.
A stream the server ends is opened again after the last event it sent, as a browser does.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import click

from conveyor.cli import render
from conveyor.cli.remote import Api, CommandError, remote, unreachable

# The event's state for an execution that has ended, and the status it ends with.
FINAL = {
    "SUCCEEDED": "Succeeded",
    "FAILED": "Failed",
    "STOPPED": "Stopped",
    "SUPERSEDED": "Superseded",
    "CANCELED": "Cancelled",
}
_ACTIVE = ("InProgress", "Stopping")
_STATUS = {"STARTED": "InProgress", "STOPPING": "Stopping", "ABANDONED": "Abandoned", **FINAL}
READ_TIMEOUT = 60.0  # seconds without a byte (the server pings every few seconds)


class Stream:
    """The server's event stream of one pipeline, read message by message."""

    def __init__(self, endpoint: str, pipeline: str) -> None:
        parts = urlsplit(endpoint)
        self._endpoint = endpoint
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._https = parts.scheme == "https"
        self._path = f"{parts.path.rstrip('/')}/console/events?pipeline={quote(pipeline)}"
        self._last: str | None = None
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None

    def open(self) -> None:
        """Connect, and return once the server says the stream is open."""
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._connection = kind(self._host, self._port, timeout=READ_TIMEOUT)
        headers = {"Accept": "text/event-stream"}
        if self._last is not None:
            headers["Last-Event-ID"] = self._last
        try:
            self._connection.request("GET", self._path, headers=headers)
            self._response = self._connection.getresponse()
        except OSError:
            raise unreachable(self._endpoint) from None
        if self._response.status != 200:
            raise CommandError(
                f"the server at {self._endpoint} has no event stream "
                f"(HTTP {self._response.status} for /console/events)"
            )
        for line in self._lines():
            if line.startswith("id: "):
                self._last = line[4:]
            elif line == ": open":
                return

    def _lines(self) -> Iterator[str]:
        assert self._response is not None
        while True:
            try:
                raw = self._response.readline()
            except OSError:
                raise CommandError(f"the event stream of {self._endpoint} broke off") from None
            if not raw:
                return
            yield raw.decode("utf-8", "replace").rstrip("\r\n")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every message as its data, reconnecting when the server ends the stream."""
        while True:
            for line in self._lines():
                if line.startswith("id: "):
                    self._last = line[4:]
                elif line.startswith("data: "):
                    yield json.loads(line[6:])
            self.close()
            self.open()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _line(event: dict[str, Any]) -> str:
    moment = datetime.fromtimestamp(event.get("time") or 0, UTC).astimezone()
    state = _STATUS.get(event.get("state") or "", event.get("state") or "?")
    if event.get("type") == "action":
        what = f"{event.get('stage')}/{event.get('action')}"
    elif event.get("type") == "stage":
        what = f"{event.get('stage')}"
    else:
        what = "execution"
    return f"{render.dim(moment.strftime('%H:%M:%S'))} {what:<32} {render.status(state)}"


def follow(api: Api, name: str, execution_id: str, stream: Stream) -> str:
    """Print the execution's changes from ``stream`` (already open) until it ends; its status."""
    execution = api.call(
        "get_pipeline_execution", pipelineName=name, pipelineExecutionId=execution_id
    )["pipelineExecution"]
    status: str = execution.get("status") or "?"
    if status in _ACTIVE:
        if not api.as_json:
            click.echo(f"following execution {execution_id} of {name}")
        for event in stream:
            if event.get("execution") != execution_id:
                continue
            click.echo(json.dumps(event) if api.as_json else _line(event))
            if event.get("type") == "pipeline" and event.get("state") in FINAL:
                status = FINAL[event["state"]]
                break
    if api.as_json:
        click.echo(json.dumps({"pipelineExecutionId": execution_id, "status": status}))
    else:
        click.echo(f"execution {execution_id} {render.status(status)}")
    return status


def exit_with(status: str) -> None:
    click.get_current_context().exit(0 if status == "Succeeded" else 1)


@click.command()
@click.argument("name")
@click.argument("execution_id", required=False)
@remote
def watch(api: Api, name: str, execution_id: str | None) -> None:
    """Follow an execution (the latest by default) until it ends; exit 0 if it succeeded."""
    stream = Stream(api.endpoint, name)
    stream.open()
    try:
        if execution_id is None:
            latest = api.call("list_pipeline_executions", pipelineName=name, maxResults=1)
            summaries = latest.get("pipelineExecutionSummaries") or []
            if not summaries:
                raise CommandError(f"pipeline '{name}' has no execution to watch")
            execution_id = str(summaries[0]["pipelineExecutionId"])
        status = follow(api, name, execution_id, stream)
    finally:
        stream.close()
    exit_with(status)
