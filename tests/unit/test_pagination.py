"""Signed page tokens bound to their operation and query."""

from __future__ import annotations

import pytest

from conveyor.api.pagination import PageTokens
from conveyor.domain.errors import InvalidNextTokenException

TOKENS = PageTokens(b"k" * 32)


def test_a_token_carries_its_position_back() -> None:
    token = TOKENS.issue("ListPipelines", {}, "pipeline-7")
    assert TOKENS.read("ListPipelines", {}, token) == "pipeline-7"
    assert TOKENS.read("ListPipelines", {}, None) is None


@pytest.mark.parametrize(
    ("operation", "query"),
    [("ListPipelineExecutions", {}), ("ListPipelines", {"filter": "x"})],
)
def test_a_token_is_bound_to_operation_and_query(operation: str, query: dict[str, str]) -> None:
    token = TOKENS.issue("ListPipelines", {}, 5)
    with pytest.raises(InvalidNextTokenException):
        TOKENS.read(operation, query, token)


def test_a_token_from_another_key_or_tampered_is_refused() -> None:
    token = PageTokens(b"other").issue("ListPipelines", {}, 5)
    with pytest.raises(InvalidNextTokenException):
        TOKENS.read("ListPipelines", {}, token)
    good = TOKENS.issue("ListPipelines", {}, 5)
    body, signature = good.split(".")
    forged = TOKENS.issue("ListPipelines", {}, 6).split(".")[0] + "." + signature
    with pytest.raises(InvalidNextTokenException):
        TOKENS.read("ListPipelines", {}, forged)
    for garbage in ("", "abc", "a.b.c", "!!!.???"):
        with pytest.raises(InvalidNextTokenException):
            TOKENS.read("ListPipelines", {}, garbage)
    assert TOKENS.read("ListPipelines", {}, f"{body}.{signature}") == 5
