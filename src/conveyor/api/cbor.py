"""Smithy's RPC v2 CBOR protocol, the one recent SDKs speak to CodeBuild.

A request is ``POST /service/<target prefix>/operation/<name>`` with a CBOR map for body and
``smithy-protocol: rpc-v2-cbor``; the answer is a CBOR map too, timestamps as tag 1 (epoch
seconds), errors as ``{"__type", "message"}``. Decoded, a request is the same dictionary the
JSON protocol gives (timestamps as epoch seconds, blobs as base64 text), so validation and
handlers do not know which protocol carried it.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import cbor2
from botocore.model import Shape

from conveyor.domain.errors import SerializationException

__all__ = ["CONTENT_TYPE", "PROTOCOL", "decode", "encode", "path_target"]

CONTENT_TYPE = "application/cbor"
PROTOCOL = "rpc-v2-cbor"
_PREFIX = "/service/"
_OPERATION = "/operation/"


def path_target(path: str) -> str | None:
    """The ``X-Amz-Target`` a request path names (``prefix.Operation``), or None."""
    if not path.startswith(_PREFIX) or _OPERATION not in path:
        return None
    prefix, _, name = path[len(_PREFIX) :].partition(_OPERATION)
    return f"{prefix}.{name}" if prefix and name and "/" not in name else None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def decode(body: bytes) -> dict[str, Any]:
    """The body's CBOR map; an empty body is an empty map."""
    if not body:
        return {}
    try:
        params = _plain(cbor2.loads(body))
    except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError) as exc:
        raise SerializationException(f"The request body is not valid CBOR: {exc}") from exc
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise SerializationException("The request body must be a CBOR map.")
    return params


def _tagged(shape: Shape | None, value: Any) -> Any:
    """``value`` (of ``shape``) with its timestamps as CBOR tag 1 and its blobs as bytes."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, int | float):
        return cbor2.CBORTag(1, value)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {k: _tagged(members.get(k), v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        member = shape.member  # type: ignore[attr-defined]
        return [_tagged(member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        inner = shape.value  # type: ignore[attr-defined]
        return {k: _tagged(inner, v) for k, v in value.items()}
    return value


def encode(shape: Shape | None, value: Any) -> bytes:
    result: bytes = cbor2.dumps(_tagged(shape, value))
    return result
