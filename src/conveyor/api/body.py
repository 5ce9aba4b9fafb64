"""A request body as the JSON object it must be, or the ``SerializationException`` saying why not.

Python's JSON decoder recurses once per level of nesting, and where it gives up depends on how
deep the caller's own stack already is, so a body would be accepted or refused by chance and a
later recursive walk could still overflow. Instead every body is held to ``MAX_DEPTH`` levels,
checked without recursion: far more than any input of the model needs (eleven levels, in
``UpdatePipeline``), and always within what the decoder manages.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.domain.errors import SerializationException

MAX_DEPTH = 500
_TOO_DEEP = f"The request body is nested more than {MAX_DEPTH} levels deep."


def _number(text: str) -> float | int:
    """JSON numbers written with a fraction or exponent; ``5.0`` is the integer 5."""
    value = float(text)
    return int(value) if value.is_integer() else value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_tree(params: Any, strings: bool) -> None:
    """Refuse a value nested deeper than ``MAX_DEPTH``, or (with ``strings``) holding a string
    that is not valid Unicode; a walk with a stack of its own, not the interpreter's."""
    pending: list[tuple[Any, int]] = [(params, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
            if strings and not all(_encodable(key) for key in value):
                raise SerializationException(
                    "The request body has a string that is not valid Unicode."
                )
        elif isinstance(value, list):
            children = value
        else:
            if strings and isinstance(value, str) and not _encodable(value):
                raise SerializationException(
                    "The request body has a string that is not valid Unicode."
                )
            continue
        if depth > MAX_DEPTH:
            raise SerializationException(_TOO_DEEP)
        pending.extend((child, depth + 1) for child in children)


def parse(body: bytes) -> dict[str, Any]:
    """The body's JSON object; an empty body is an empty object."""
    if not body.strip():
        return {}
    try:
        params = json.loads(body, parse_float=_number)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationException(f"The request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise SerializationException(_TOO_DEEP) from exc
    if not isinstance(params, dict):
        raise SerializationException("The request body must be a JSON object.")
    # A body with no more brackets than MAX_DEPTH cannot nest deeper, and only escapes such
    # as \ud800 decode to strings that no store or client can encode: most bodies skip the walk.
    deep = body.count(b"[") + body.count(b"{") > MAX_DEPTH
    escaped = b"\\u" in body
    if deep or escaped:
        _check_tree(params, strings=escaped)
    return params
