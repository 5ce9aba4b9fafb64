"""AWS's REST-JSON protocol, as CodeStar Notifications speaks it: the operation is the
request's method and path (``POST /createNotificationRule``), members bound to the path
(``/untagResource/{resourceArn}``) or the query string come from there, the rest from the
JSON body. An error answers with the HTTP status its shape declares, its code in
``x-amzn-ErrorType`` and ``{"__type", "message"}`` in the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel

from conveyor.api.model import NOTIFICATIONS, operation, operation_names, service_model
from conveyor.domain.errors import ConveyorError

CONTENT_TYPE = "application/json"
# The services served in REST-JSON on the same endpoint.
REST_SERVICES = (NOTIFICATIONS,)


@dataclass(frozen=True, slots=True)
class Route:
    service: str
    name: str
    method: str
    pattern: re.Pattern[str]


def _pattern(uri: str) -> re.Pattern[str]:
    path = uri.split("?", 1)[0]
    parts = re.split(r"(\{[^}]+\})", path)
    text = "".join(
        f"(?P<{p[1:-1].rstrip('+')}>.+)"
        if p.startswith("{") and p.endswith("+}")
        else f"(?P<{p[1:-1]}>[^/]+)"
        if p.startswith("{")
        else re.escape(p)
        for p in parts
    )
    return re.compile(text)


@cache
def routes() -> tuple[Route, ...]:
    found = []
    for service in REST_SERVICES:
        for name in sorted(operation_names(service)):
            http = operation(name, service).http
            found.append(Route(service, name, http["method"], _pattern(http["requestUri"])))
    return tuple(found)


def route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The operation a request's method and path name, and the path's labels."""
    for candidate in routes():
        if candidate.method == method:
            match = candidate.pattern.fullmatch(path)
            if match is not None:
                return candidate, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


def params_of(
    op: OperationModel,
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    body: dict[str, Any],
) -> dict[str, Any]:
    """The operation's input: the body's members, with those bound to the path and the query
    string put in from there (a body never supplies them)."""
    shape = op.input_shape
    if shape is None:
        return body
    params = {k: v for k, v in body.items() if not shape.members.get(k, _NONE).serialization}
    for member, member_shape in shape.members.items():
        where = member_shape.serialization.get("location")
        wire = member_shape.serialization.get("name", member)
        if where == "uri" and wire in labels:
            params[member] = labels[wire]
        elif where == "querystring" and wire in query:
            values = query[wire]
            params[member] = values if member_shape.type_name == "list" else values[-1]
    return params


class _Nothing:
    serialization: dict[str, Any] = {}


_NONE: Any = _Nothing()


def status_of(error: ConveyorError, service: str) -> int:
    """The HTTP status the model declares for the error, else the error's own."""
    try:
        shape = service_model(service).shape_for(error.code)
    except Exception:
        return error.status
    declared = shape.metadata.get("error", {}).get("httpStatusCode")
    return int(declared) if declared else error.status
