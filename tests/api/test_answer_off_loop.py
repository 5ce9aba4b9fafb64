"""An API answer is encoded off the event loop, in the thread that ran its handler: a large
answer's encoding must not hold up every other connection (``GET /health`` among them)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conveyor.api import protocol
from tests.support.declarations import pipeline


def test_answers_are_encoded_in_the_handler_thread(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.create_pipeline(pipeline=pipeline("offloop"))
    seen: list[str] = []
    encode = protocol.in_milliseconds

    def recorded(shape: Any, value: Any) -> Any:
        seen.append(threading.current_thread().name)
        return encode(shape, value)

    monkeypatch.setattr(protocol, "in_milliseconds", recorded)
    assert client.get_pipeline(name="offloop")["pipeline"]["name"] == "offloop"
    assert client.list_pipelines()["pipelines"]
    assert len(seen) == 2
    assert all(name.startswith("AnyIO worker thread") for name in seen), seen
