"""``POST /hooks/<connection name>``: push and pull-request deliveries from a connection's git
host, fed to the pipelines whose source uses that connection and repository.

The delivery's signature is checked before its body is read as JSON; then each matching
source action decides (its trigger's filters first, default detection otherwise) and what it
starts has trigger ``WebhookV2``. The answer is 202 with the executions started (or already
started by an earlier delivery of the same change: the host's redeliveries start nothing new),
200 with the reason when nothing follows, 4xx for a delivery that is refused. Any server of a
fleet may receive deliveries: starts are idempotent per change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor.actions.base import ProviderConfig
from conveyor.config import Connection
from conveyor.domain.triggers import CONNECTION, PullRequest, Push, decide
from conveyor.engine.services import Services
from conveyor.triggers.catalog import Catalog, Target
from conveyor.triggers.feed import Feed
from conveyor.triggers.gitrefs import pull_request_files
from conveyor.triggers.locations import SourceUnavailable, locate
from conveyor.triggers.payloads import Delivery, Refused, event_of, parse, verify

log = logging.getLogger("conveyor.triggers")
TRIGGER = "WebhookV2"


def _json(body: bytes, content_type: str) -> Any:
    """The payload: JSON, or GitHub's form encoding (``payload=<JSON>``)."""
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8"))
            return json.loads(form.get("payload", [""])[0])
        return json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise Refused(400, f"The delivery is not JSON: {type(exc).__name__}") from exc


class Hooks:
    def __init__(
        self,
        services: Services,
        connections: Mapping[str, Connection],
        config: ProviderConfig | None = None,
    ) -> None:
        self._config = config
        self._by_name = {c.name: c for c in connections.values() if c.host}
        self._catalog = Catalog(services.store)
        self._feed = Feed(services)

    def routes(self) -> list[BaseRoute]:
        return [Route("/hooks/{name}", self.receive, methods=["POST"])]

    async def receive(self, request: Request) -> Response:
        name = request.path_params["name"]
        connection = self._by_name.get(name)
        if connection is None:
            return JSONResponse({"message": f"No connection named {name!r} takes deliveries."}, 404)
        body = await request.body()
        try:
            assert connection.host is not None and connection.secret is not None
            verify(connection.host, connection.secret, request.headers, body)
            event = event_of(connection.host, request.headers)
            delivery = parse(
                connection.host, event, _json(body, request.headers.get("content-type", ""))
            )
        except Refused as refused:
            log.info("refused a delivery to /hooks/%s: %s", name, refused)
            return JSONResponse({"message": str(refused)}, refused.status)
        if delivery.change is None:
            return JSONResponse({"message": delivery.ignored or "nothing to do"}, 200)
        started = await run_in_threadpool(self.feed, connection, delivery)
        if not started:
            return JSONResponse({"message": "no source action takes this change"}, 200)
        return JSONResponse({"pipelineExecutionIds": started}, 202)

    def feed(self, connection: Connection, delivery: Delivery) -> list[str]:
        """Start what the delivery calls for; the executions started."""
        assert delivery.change is not None
        wanted = delivery.repository.lower()
        started = []
        for target in self._catalog.targets():
            configuration = target.watch.configuration
            if (
                target.watch.provider != CONNECTION
                or configuration.get("ConnectionArn", "").strip() != connection.arn
                or configuration.get("FullRepositoryId", "").strip().lower() != wanted
            ):
                continue
            fire = decide(target.watch, self._with_files(target, delivery.change))
            if fire is None:
                continue
            execution = self._feed.start(target, fire, TRIGGER)
            if execution is not None:
                started.append(execution)
        return started

    def _with_files(self, target: Target, change: Push | PullRequest) -> Push | PullRequest:
        """A pull request with the files it changes, when its repository is on this machine
        (deliveries do not list them; without them ``filePaths`` lets every one through)."""
        if not isinstance(change, PullRequest) or change.files is not None or not self._config:
            return change
        try:
            location = locate(target.watch, self._config, {})
        except SourceUnavailable:
            return change
        if location.git_dir is None:
            return change
        files = pull_request_files(location.git_dir, change.destination_branch, change.commit)
        return replace(change, files=files)


def hook_routes(
    services: Services, connections: Mapping[str, Connection], config: ProviderConfig
) -> list[BaseRoute]:
    """The delivery routes of the connections that name a git host (none without any)."""
    if not any(c.host for c in connections.values()):
        return []
    return Hooks(services, connections, config).routes()
