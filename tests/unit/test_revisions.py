"""The revision types PutActionRevision pins are the ones each source provider accepts."""

from __future__ import annotations

from conveyor.engine.executions import REVISION_TYPES
from conveyor.engine.revisions import PINNED_AS


def test_every_pinned_revision_type_is_one_its_provider_accepts() -> None:
    assert set(PINNED_AS) == set(REVISION_TYPES)
    for provider, revision_type in PINNED_AS.items():
        assert revision_type in REVISION_TYPES[provider], provider
    assert PINNED_AS["S3"] == "S3_OBJECT_VERSION_ID"
