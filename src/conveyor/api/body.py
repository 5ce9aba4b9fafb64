"""A request body as the JSON object it must be, or the ``SerializationException`` saying why not.

Python's JSON decoder recurses once per level of nesting, and where it gives up depends on how
deep the caller's own stack already is, so a body would be accepted or refused by chance and a
later recursive walk could still overflow (326 lists around an escaped string did, in the
walk that looked for lone surrogates). Instead every body is held to ``MAX_DEPTH`` levels,
checked without recursion: far more than any input of the model needs (eleven levels, in
``UpdatePipeline``), and half of what the decoder manages on a request's stack (about a dozen
frames deep, of the interpreter's thousand).
"""

from __future__ import annotations

import json
import re
from typing import Any

from conveyor.domain.errors import SerializationException

MAX_DEPTH = 500
_TOO_DEEP = f"The request body is nested more than {MAX_DEPTH} levels deep."
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _number(text: str) -> float | int:
    """JSON numbers written with a fraction or exponent; ``5.0`` is the integer 5."""
    value = float(text)
    return int(value) if value.is_integer() else value


def _too_deep(params: Any) -> bool:
    """Whether ``params`` nests deeper than ``MAX_DEPTH``, found level by level, without
    recursion."""
    level: list[Any] = [params]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            return True
        below: list[Any] = []
        for value in level:
            children = value.values() if isinstance(value, dict) else value
            below.extend(child for child in children if isinstance(child, dict | list))
        level = below
        depth += 1
    return False


def _has_lone_surrogate(params: Any) -> bool:
    try:
        json.dumps(params, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse(body: bytes) -> dict[str, Any]:
    """The body's JSON object; an empty body is an empty object."""
    if not body.strip():
        return {}
    try:
        # Strictly: json.loads would let UTF-8-encoded surrogates through.
        text = body.decode(json.detect_encoding(body))
        params = json.loads(text, parse_float=_number)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationException(f"The request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise SerializationException(_TOO_DEEP) from exc
    if not isinstance(params, dict):
        raise SerializationException("The request body must be a JSON object.")
    # A body with no more brackets than MAX_DEPTH cannot nest deeper: most skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _too_deep(params):
        raise SerializationException(_TOO_DEEP)
    # Escapes such as \ud800 decode to strings that no store or client can encode.
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(params):
        raise SerializationException("The request body has a string that is not valid Unicode.")
    return params
