"""Timestamps on the wire as AWS writes them: epoch seconds with millisecond precision.

The store keeps times as floats to the microsecond; AWS answers with milliseconds. Walking an
operation's output shape, every ``timestamp`` member is rounded to three decimals, and
nothing else is touched.
"""

from __future__ import annotations

from typing import Any

from botocore.model import Shape

__all__ = ["in_milliseconds"]


def in_milliseconds(shape: Shape | None, value: Any) -> Any:
    """``value`` (of ``shape``) with its timestamps rounded to the millisecond."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "timestamp":
        if isinstance(value, float):
            return round(value, 3)
        return value
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {k: in_milliseconds(members.get(k), v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        member = shape.member  # type: ignore[attr-defined]
        return [in_milliseconds(member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        inner = shape.value  # type: ignore[attr-defined]
        return {k: in_milliseconds(inner, v) for k, v in value.items()}
    return value
