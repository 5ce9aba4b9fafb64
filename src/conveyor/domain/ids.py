"""Identifiers that must only be unique (a request's id, an audit event's), made without a
system call.

`uuid.uuid4` reads the operating system's random source, and that read lets go of the
interpreter lock; on the event loop of a busy server, taking the lock back waits behind every
thread running Python, twice per API call. These ids are not secrets, so they come from
Python's own generator (seeded from the system's source once), formatted as version 4 UUIDs.
Anything that must not be guessed (keys, nonces, tokens) keeps using `secrets`.
"""

from __future__ import annotations

import random
import uuid

_GENERATOR = random.Random()


def unique_id() -> str:
    """A new version 4 UUID, as text."""
    return str(uuid.UUID(int=_GENERATOR.getrandbits(128), version=4))
