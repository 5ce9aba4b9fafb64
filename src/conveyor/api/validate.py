"""Input validation driven by the service model, reported the way AWS reports it.

Every violation of a required member, a length, a range, a pattern, an enum or a type is
collected in one pass; the protocol layer joins them into one ``ValidationException``::

    2 validation errors detected: Value 'my pipeline' at 'pipeline.name' failed to satisfy
    constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+; Value null
    at 'pipeline.roleArn' failed to satisfy constraint: Member must not be null

Paths use member names, and ``.N.member`` with 1-based indexes inside lists.

No string may hold U+0000: PostgreSQL's text cannot store it, and a string that one database
keeps and the other refuses would make the answer depend on the deployment.

Members the model does not know, and members sent as null, are removed from the input while
it is checked, as AWS's typed deserializer drops them: nothing unmodelled is stored or echoed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from conveyor.api.model import ListShape, MapShape, Shape, StructureShape

# Where the real service accepts more than the model says. CodePipeline takes configuration
# values of up to 50,000 characters (inline buildspecs, JSON lists of variables), while the
# model still says 1,000.
OVERRIDES: dict[str, dict[str, int]] = {"ActionConfigurationValue": {"max": 50_000}}
# The model's integer types are Java's; a value past them cannot be deserialized by AWS.
INTEGER_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
# How much of a value a message quotes.
RENDER_LIMIT = 200

_CONSTRAINT = "failed to satisfy constraint: "


# Java's Unicode classes, which some models use (CodeStar Notifications' tags), in terms
# Python's ``re`` knows: letters and digits are word characters, separators are spaces.
_UNICODE_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\d", r"\p{Z}": r"\s"}


@cache
def _pattern(text: str) -> re.Pattern[str]:
    for java, python in _UNICODE_CLASSES.items():
        text = text.replace(java, python)
    return re.compile(text, re.DOTALL)


def _limits(shape: Shape) -> tuple[int | None, int | None]:
    meta = shape.metadata
    low, high = meta.get("min"), meta.get("max")
    override = OVERRIDES.get(shape.name, {})
    return override.get("min", low), override.get("max", high)


def render(value: Any) -> str:
    """A value as AWS quotes it in validation messages, cut short when it is long."""
    text = _render(value, depth=3)
    return text if len(text) <= RENDER_LIMIT else text[: RENDER_LIMIT - 4] + "...'"


def _render(value: Any, depth: int) -> str:
    if depth == 0 and isinstance(value, dict | list):
        return "'...'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={_bare(v, depth)}" for k, v in list(value.items())[:20])
        return "'{" + inner + "}'"
    if isinstance(value, list):
        return "'[" + ", ".join(_bare(v, depth) for v in value[:20]) + "]'"
    text = str(value)
    return f"'{text[:RENDER_LIMIT]}'"


def _bare(value: Any, depth: int) -> str:
    text = _render(value, depth - 1)
    return text[1:-1] if text.startswith("'") else text


def _error(value: Any, path: str, constraint: str) -> str:
    return f"Value {render(value)} at '{path}' {_CONSTRAINT}{constraint}"


Checker = Callable[[Any, Any, str, list[str]], None]


def validate_input(shape: StructureShape | None, params: dict[str, Any]) -> list[str]:
    """Every violation in ``params`` of the operation's input shape."""
    if shape is None:
        return []
    errors: list[str] = []
    _structure(shape, params, "", errors)
    return errors


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    _CHECKS[shape.type_name](shape, value, path, errors)


def _kind(test: Callable[[Any], bool], constraint: str) -> Checker:
    """A check of the JSON type alone, for shapes with no constraints of their own."""

    def check(_: Shape, value: Any, path: str, errors: list[str]) -> None:
        if not test(value):
            errors.append(_error(value, path, constraint))

    return check


def _struct(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(_error(value, path, "Member must be a structure"))
    else:
        _structure(shape, value, path, errors)  # type: ignore[arg-type]


def _structure(shape: StructureShape, value: dict[str, Any], path: str, errors: list[str]) -> None:
    members = shape.members
    for name in shape.required_members:
        if value.get(name) is None:
            errors.append(_error(None, _join(path, name), "Member must not be null"))
    for name in list(value):
        member = members.get(name)
        if member is None or value[name] is None:
            del value[name]
        else:
            _check(member, value[name], _join(path, name), errors)


def _count(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    low, high = _limits(shape)
    if high is not None and len(value) > high:
        errors.append(_error(value, path, f"Member must have length less than or equal to {high}"))
    if low is not None and len(value) < low:
        errors.append(
            _error(value, path, f"Member must have length greater than or equal to {low}")
        )


def _list(shape: ListShape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(_error(value, path, "Member must be of type list"))
        return
    _count(shape, value, path, errors)
    for index, item in enumerate(value, start=1):
        item_path = f"{path}.{index}.member"
        if item is None:
            errors.append(_error(None, item_path, "Member must not be null"))
        else:
            _check(shape.member, item, item_path, errors)


def _map(shape: MapShape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(_error(value, path, "Member must be of type map"))
        return
    _count(shape, value, path, errors)
    key_problems: list[str] = []
    value_problems: list[str] = []
    for key, item in value.items():
        _scalar_problems(shape.key, key, key_problems)
        if shape.value.type_name in ("string", "integer", "long", "boolean"):
            if item is None:
                value_problems.append("Member must not be null")
            else:
                _scalar_problems(shape.value, item, value_problems)
        elif item is None:
            errors.append(_error(None, f"{path}.{key}", "Member must not be null"))
        else:
            _check(shape.value, item, f"{path}.{key}", errors)
    if key_problems:
        listed = ", ".join(dict.fromkeys(key_problems))
        errors.append(_error(value, path, f"Map keys must satisfy constraint: [{listed}]"))
    if value_problems:
        listed = ", ".join(dict.fromkeys(value_problems))
        errors.append(_error(value, path, f"Map value must satisfy constraint: [{listed}]"))


def _scalar_problems(shape: Shape, value: Any, problems: list[str]) -> None:
    found: list[str] = []
    _check(shape, value, "", found)
    problems.extend(text.split(_CONSTRAINT, 1)[1] for text in found)


def _string(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(_error(value, path, "Member must be of type string"))
        return
    _count(shape, value, path, errors)
    if "\x00" in value:
        errors.append(_error(value, path, "Member must not contain null characters"))
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _pattern(pattern).fullmatch(value):
        errors.append(
            _error(value, path, f"Member must satisfy regular expression pattern: {pattern}")
        )
    enum: list[str] | None = getattr(shape, "enum", None)
    if enum and value not in enum:
        errors.append(
            _error(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        )


def _integer(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    ):
        errors.append(_error(value, path, "Member must be of type integer"))
        return
    low, high = _limits(shape)
    floor, ceiling = INTEGER_RANGE[shape.type_name]
    high = ceiling if high is None else min(high, ceiling)
    low = floor if low is None else max(low, floor)
    if value > high:
        errors.append(_error(value, path, f"Member must have value less than or equal to {high}"))
    if value < low:
        errors.append(_error(value, path, f"Member must have value greater than or equal to {low}"))


def _is_timestamp(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            pass
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_CHECKS: dict[str, Checker] = {
    "structure": _struct,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _integer,
    "long": _integer,
    "boolean": _kind(lambda v: isinstance(v, bool), "Member must be of type boolean"),
    "timestamp": _kind(_is_timestamp, "Member must be a timestamp in epoch seconds"),
    "blob": _kind(lambda v: isinstance(v, str), "Member must be base64-encoded data"),
    "double": _kind(_is_number, "Member must be of type number"),
    "float": _kind(_is_number, "Member must be of type number"),
}


def summarize(errors: list[str]) -> str:
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(errors)
