"""How an action execution's row keeps its input, output artifacts and log URL: short.

Every attempt's ``input`` repeats the same members: the action's type as an object of four
strings, its configuration (often the same once resolved), its Region, its input artifacts.
It is stored as a one-element JSON array holding the input in shorthand: the type as one
string, the members named by codes, the resolved configuration left out when it is the
configuration itself, artifacts as ``[name, bucket, key]`` lists. Output artifacts are stored
as such lists too. A log URL that ends with the attempt's own id (as the server's
``/logs/<id>`` does) is stored without the id, ending in a space instead, which no URL has:
a URL that does end in a space or a tab gets a tab more, taken off as it is read.

A value is stored short only once reading it back gives exactly what was given; anything
else, and what was written before, is kept as it was (an object, a list of objects).
"""

from __future__ import annotations

from typing import Any

from conveyor.store.rows import dumps
from conveyor.store.shorthand import long_artifacts, short_artifacts

_CODES = {
    "actionTypeId": "y",
    "configuration": "c",
    "resolvedConfiguration": "rc",
    "region": "r",
    "inputArtifacts": "i",
    "roleArn": "ra",
    "namespace": "n",
}
_NAMES = {code: name for name, code in _CODES.items()}
_TYPE = ("category", "owner", "provider", "version")
# No folder: artifact keys are kept whole, only their objects become lists.
_NO_FOLDER = "\n"


def _short_type(value: Any) -> Any:
    if (
        isinstance(value, dict)
        and tuple(value) == _TYPE
        and all(isinstance(v, str) and "/" not in v for v in value.values())
    ):
        return "/".join(value.values())
    return value


def _long_type(value: Any) -> Any:
    if isinstance(value, str):
        return dict(zip(_TYPE, value.split("/"), strict=True))
    return value


def _short_input(given: dict[str, Any]) -> dict[str, Any]:
    short: dict[str, Any] = {}
    for key, value in given.items():
        configuration = given.get("configuration")
        if (
            key == "resolvedConfiguration"
            and value == configuration
            and isinstance(value, dict)
            and list(value) == list(configuration)
        ):
            continue
        if key == "actionTypeId":
            kept = _short_type(value)
        elif key == "inputArtifacts":
            kept = short_artifacts(value, _NO_FOLDER)
        else:
            kept = value
        short[_CODES.get(key, key)] = kept
    return short


def _long_input(short: dict[str, Any]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for code, value in short.items():
        key = _NAMES.get(code, code)
        if key == "actionTypeId":
            given[key] = _long_type(value)
        elif key == "inputArtifacts":
            given[key] = long_artifacts(value, _NO_FOLDER)
        else:
            given[key] = value
        if key == "configuration" and "rc" not in short:
            given["resolvedConfiguration"] = value
    return given


def read_input(stored: Any) -> Any:
    """The input as it was given, from what `stored_json` kept."""
    if isinstance(stored, list) and len(stored) == 1 and isinstance(stored[0], dict):
        return _long_input(stored[0])
    return stored


def read_artifacts(stored: Any) -> Any:
    """Output artifacts as they were given, from what `stored_json` kept."""
    return long_artifacts(stored, _NO_FOLDER)


def stored_json(column: str, value: Any) -> str:
    """The JSON text a JSON column of the row keeps of ``value``."""
    if column == "input" and isinstance(value, dict):
        try:
            short = [_short_input(value)]
            back = read_input(short)
            # Equal, members in the same order: what the shorthand rebuilds (the type, the
            # artifacts) it rebuilds only from objects whose members came in that order.
            if back == value and list(back) == list(value):
                return dumps(short)
        except (TypeError, ValueError):
            pass
    if column == "output_artifacts":
        short_list = short_artifacts(value, _NO_FOLDER)
        if short_list is not value and read_artifacts(short_list) == value:
            return dumps(short_list)
    return dumps(value)


def stored_url(url: str, action_execution_id: str) -> str:
    """What the row keeps of its log URL."""
    if url.endswith("/" + action_execution_id):
        return url.removesuffix(action_execution_id) + " "
    if url.endswith((" ", "\t")):
        return url + "\t"
    return url


def read_url(stored: str | None, action_execution_id: str) -> str | None:
    """The reverse of `stored_url`."""
    if stored is None:
        return None
    if stored.endswith("\t"):
        return stored[:-1]
    if stored.endswith(" "):
        return stored[:-1] + action_execution_id
    return stored
