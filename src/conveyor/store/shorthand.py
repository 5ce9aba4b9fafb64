"""Shorthand for JSON the store keeps many copies of: member names as codes, UUIDs in 22
characters (base64), artifact locations as lists.

Each shorthand comes with its reverse, and a caller stores the short form only once it has
checked that the reverse gives back exactly what it was given, so a value the shorthand does
not fit (a member already named like a code, a string of 22 characters that is no UUID) is
simply kept as it came.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any


def short_uuid(value: Any) -> Any:
    """A UUID in its usual 36-character form as 22 characters; anything else as it is."""
    if not isinstance(value, str) or len(value) != 36 or value.count("-") != 4:
        return value
    try:
        raw = bytes.fromhex(value.replace("-", ""))
    except ValueError:
        return value
    return binascii.b2a_base64(raw, newline=False)[:22].decode()


def long_uuid(value: Any) -> Any:
    """The reverse of `short_uuid` (for a UUID written in lower case, as Python writes them:
    the caller's check of the round trip finds any other)."""
    if not isinstance(value, str) or len(value) != 22:
        return value
    try:
        h = binascii.a2b_base64(value + "==").hex()
    except (ValueError, binascii.Error):
        return value
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def coded(value: Any, codes: Mapping[str, str]) -> Any:
    """``value`` with the members of its objects, at any depth, named by their code."""
    if isinstance(value, dict):
        return {codes.get(k, k): coded(v, codes) for k, v in value.items()}
    if isinstance(value, list):
        return [coded(v, codes) for v in value]
    return value


def decoded(value: Any, names: Mapping[str, str]) -> Any:
    """The reverse of `coded`, given the codes' names."""
    if isinstance(value, dict):
        return {names.get(k, k): decoded(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [decoded(v, names) for v in value]
    return value


def short_artifacts(artifacts: Any, folder: str) -> Any:
    """Artifacts ``[{"name", "s3location": {"bucket", "key"}}]`` as ``[name, bucket, key]``
    lists, a key under ``folder/name/`` as ``/`` and the rest; anything else as it is."""
    if not isinstance(artifacts, list):
        return artifacts
    short = []
    for artifact in artifacts:
        if not isinstance(artifact, dict) or list(artifact) != ["name", "s3location"]:
            return artifacts
        name, location = artifact["name"], artifact["s3location"]
        if not isinstance(location, dict) or list(location) != ["bucket", "key"]:
            return artifacts
        key = location["key"]
        prefix = f"{folder}/{name}/"
        if isinstance(key, str) and key.startswith(prefix):
            key = "/" + key.removeprefix(prefix)
        short.append([name, location["bucket"], key])
    return short


def long_artifacts(artifacts: Any, folder: str) -> Any:
    """The reverse of `short_artifacts`."""
    if not isinstance(artifacts, list) or not all(
        isinstance(a, list) and len(a) == 3 for a in artifacts
    ):
        return artifacts
    found = []
    for name, bucket, short in artifacts:
        key = (
            f"{folder}/{name}/{short[1:]}" if isinstance(short, str) and short[:1] == "/" else short
        )
        found.append({"name": name, "s3location": {"bucket": bucket, "key": key}})
    return found
