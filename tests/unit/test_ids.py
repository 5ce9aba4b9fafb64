"""Ids that must only be unique are version 4 UUIDs made without reading the system's random
source (which lets go of the interpreter lock on the event loop)."""

from __future__ import annotations

import os
import uuid

import pytest

from conveyor.domain.ids import unique_id


def test_ids_are_version_4_uuids_and_unique() -> None:
    made = [unique_id() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    for text in made[:100]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_do_not_read_the_system_random_source(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(size: int) -> bytes:
        raise AssertionError(f"os.urandom({size}) called")

    monkeypatch.setattr(os, "urandom", refuse)
    assert uuid.UUID(unique_id()).version == 4
