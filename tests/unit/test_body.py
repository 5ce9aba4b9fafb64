"""Request bodies: JSON objects only, at most ``MAX_DEPTH`` levels deep, valid Unicode."""

from __future__ import annotations

import json

import pytest

from conveyor.api.body import MAX_DEPTH, parse
from conveyor.domain.errors import SerializationException


def _nested(levels: int, leaf: str = '"\\u00e9"') -> bytes:
    """An object whose member holds lists, ``levels`` levels in all."""
    inner = levels - 1
    return ('{"a": ' + "[" * inner + leaf + "]" * inner + "}").encode()


def test_empty_body_is_an_empty_object() -> None:
    assert parse(b"") == {}
    assert parse(b" \n") == {}


def test_integral_numbers_are_integers() -> None:
    assert parse(b'{"a": 5.0, "b": 1.5, "c": 1e3}') == {"a": 5, "b": 1.5, "c": 1000}


@pytest.mark.parametrize("leaf", ['"\\u00e9"', "1"])
def test_a_body_may_nest_max_depth_levels(leaf: str) -> None:
    params = parse(_nested(MAX_DEPTH, leaf))
    depth, value = 1, params["a"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert depth == MAX_DEPTH


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 2 * MAX_DEPTH, 100_000])
@pytest.mark.parametrize("leaf", ['"\\u00e9"', "1"])
def test_a_deeper_body_is_a_serialization_error(levels: int, leaf: str) -> None:
    with pytest.raises(SerializationException, match=f"more than {MAX_DEPTH} levels"):
        parse(_nested(levels, leaf))


def test_max_depth_leaves_room_on_the_stack() -> None:
    """A request is parsed a dozen frames deep; a body of ``MAX_DEPTH`` levels is parsed,
    and one deeper refused, even 300 frames deeper than that."""

    def at_depth(frames: int, levels: int) -> str:
        if frames:
            return at_depth(frames - 1, levels)
        try:
            parse(_nested(levels))
        except SerializationException:
            return "refused"
        return "parsed"

    assert at_depth(300, MAX_DEPTH) == "parsed"
    assert at_depth(300, MAX_DEPTH + 1) == "refused"


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = "[" * (3 * MAX_DEPTH)
    assert parse(json.dumps({"a": text, "b": "\\u00e9"}).encode()) == {"a": text, "b": "\\u00e9"}


def test_a_wide_body_is_not_a_deep_one() -> None:
    body = json.dumps({"a": [[1]] * 50_000, "b": "\u00e9"}, ensure_ascii=True).encode()
    assert len(parse(body)["a"]) == 50_000


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "\\ud800"}',
        b'{"\\udfff": 1}',
        b'{"a": [{"b": ["x", "a\\udc00b"]}]}',
    ],
)
def test_a_lone_surrogate_is_a_serialization_error(body: bytes) -> None:
    with pytest.raises(SerializationException, match="not valid Unicode"):
        parse(body)


def test_a_utf8_encoded_surrogate_is_a_serialization_error() -> None:
    with pytest.raises(SerializationException, match="not valid JSON"):
        parse(b'{"a": "\xed\xa0\x80"}')


def test_a_surrogate_pair_is_one_character() -> None:
    assert parse(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32-be"])
def test_json_encodings_other_than_plain_utf8_are_read(encoding: str) -> None:
    assert parse(json.dumps({"a": "\u00e9"}).encode(encoding)) == {"a": "\u00e9"}


@pytest.mark.parametrize("body", [b"[]", b'"a"', b"1", b"null", b"[" * 100_000, b"{"])
def test_anything_but_an_object_is_a_serialization_error(body: bytes) -> None:
    with pytest.raises(SerializationException):
        parse(body)
