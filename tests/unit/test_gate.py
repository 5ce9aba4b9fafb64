"""The Host check against DNS rebinding, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.auth.gate import Access, tagged_arn
from conveyor.domain.arn import Scope


def gate(host: str, public_url: str | None = None) -> Access:
    nothing: Any = None
    return Access(
        nothing,
        nothing,
        nothing,
        Scope("us-east-1", "0" * 12),
        required=True,
        host=host,
        public_url=public_url,
    )


@pytest.mark.parametrize(
    ("host", "public_url", "header", "refused"),
    [
        ("127.0.0.1", None, "127.0.0.1:8470", False),
        ("127.0.0.1", None, "localhost:8470", False),
        ("127.0.0.1", None, "[::1]:8470", False),
        ("127.0.0.1", None, "evil.example:8470", True),
        ("127.0.0.1", None, "evil.example", True),
        ("127.0.0.1", None, None, True),
        ("127.0.0.1", "https://ci.example.com", "ci.example.com", False),
        ("127.0.0.1", "https://ci.example.com", "CI.Example.com:443", False),
        ("10.0.0.5", None, "10.0.0.5:8470", False),
        ("10.0.0.5", None, "localhost:8470", True),
        ("0.0.0.0", None, "anything.example", False),
        ("::", None, "anything.example", False),
    ],
)
def test_the_host_header_must_name_the_server(
    host: str, public_url: str | None, header: str | None, refused: bool
) -> None:
    problem = gate(host, public_url).host_problem(header)
    assert (problem is not None) == refused
    if refused:
        assert "does not name this server" in problem


@pytest.mark.parametrize(
    ("resource", "tagged"),
    [
        (
            "arn:aws:codepipeline:us-east-1:000000000000:app",
            "arn:aws:codepipeline:us-east-1:000000000000:app",
        ),
        (
            "arn:aws:codepipeline:us-east-1:000000000000:app/Prod/Deploy",
            "arn:aws:codepipeline:us-east-1:000000000000:app",
        ),
        (
            "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Deploy/X/1",
            "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Deploy/X/1",
        ),
        (
            "arn:aws:codepipeline:us-east-1:000000000000:webhook:hook",
            "arn:aws:codepipeline:us-east-1:000000000000:webhook:hook",
        ),
        ("*", "*"),
    ],
)
def test_a_stage_or_action_carries_its_pipelines_tags(resource: str, tagged: str) -> None:
    assert tagged_arn(resource) == tagged
