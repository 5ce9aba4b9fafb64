"""Timestamps leave the server as AWS sends them: epoch seconds to the millisecond."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from conveyor.api.model import operation
from conveyor.api.wiretimes import in_milliseconds
from conveyor.server import Running
from tests.support.declarations import pipeline


def _raw(server: Running, name: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        server.endpoint,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"CodePipeline_20150709.{name}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".", 1)[1]) if "." in text else 0


def test_timestamps_on_the_wire_have_millisecond_precision(client: Any, server: Running) -> None:
    client.create_pipeline(pipeline=pipeline("times"))
    metadata = _raw(server, "GetPipeline", {"name": "times"})["metadata"]
    for key in ("created", "updated"):
        assert isinstance(metadata[key], float | int)
        assert _decimals(metadata[key]) <= 3, metadata[key]
    listed = _raw(server, "ListPipelines", {})["pipelines"]
    assert all(_decimals(p["created"]) <= 3 for p in listed)


def test_only_timestamp_members_are_rounded() -> None:
    shape = operation("GetPipelineState").output_shape
    state = {
        "pipelineName": "p",
        "created": 1700000000.123456,
        "stageStates": [
            {
                "stageName": "S",
                "actionStates": [
                    {
                        "actionName": "A",
                        "latestExecution": {
                            "lastStatusChange": 1700000001.987654,
                            "percentComplete": 50,
                        },
                    }
                ],
            }
        ],
    }
    rounded = in_milliseconds(shape, state)
    assert rounded["created"] == 1700000000.123
    latest = rounded["stageStates"][0]["actionStates"][0]["latestExecution"]
    assert latest == {"lastStatusChange": 1700000001.988, "percentComplete": 50}
    assert state["created"] == 1700000000.123456
