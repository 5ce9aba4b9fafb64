"""The store's contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading

import pytest

from conveyor.domain.actiontype import ActionTypeId
from conveyor.store import DuplicateKey, Store, rows, tables

DECLARATION = {"name": "app", "stages": [{"name": "Source", "actions": []}]}
CUSTOM = ActionTypeId("Build", "Custom", "Jenkins", "1")


def test_insert_and_read_pipeline(store: Store) -> None:
    with store.write() as tx:
        record = tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 100.5)
    with store.read() as tx:
        found = tx.pipelines.get("app")
        assert found == record
        assert found is not None
        assert tx.pipelines.declaration(found.id, 1) == DECLARATION
        assert tx.pipelines.declaration(found.id, 2) is None
        assert tx.pipelines.get("other") is None


def test_insert_pipeline_twice_is_duplicate_key(store: Store) -> None:
    with store.write() as tx:
        tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
    with pytest.raises(DuplicateKey), store.write() as tx:
        tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 2.0)
    with store.read() as tx:
        assert tx.pipelines.count() == 1


def test_add_version_keeps_every_version(store: Store) -> None:
    with store.write() as tx:
        first = tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
        second = tx.pipelines.add_version(first, {"v": 2}, "V2", "QUEUED", 2.0)
    assert second is not None
    assert (second.version, second.created, second.updated) == (2, 1.0, 2.0)
    with store.read() as tx:
        assert tx.pipelines.declaration(first.id, 1) == DECLARATION
        assert tx.pipelines.declaration(first.id, 2) == {"v": 2}
        assert tx.pipelines.get("app") == second


def test_add_version_is_guarded_by_the_expected_version(store: Store) -> None:
    with store.write() as tx:
        first = tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
        assert tx.pipelines.add_version(first, {"v": 2}, "V1", "SUPERSEDED", 2.0) is not None
    with store.write() as tx:
        # `first` is stale now: its version 1 is no longer the current one.
        assert tx.pipelines.add_version(first, {"v": 3}, "V1", "SUPERSEDED", 3.0) is None
    with store.read() as tx:
        record = tx.pipelines.get("app")
        assert record is not None
        assert record.version == 2


def test_rollback_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as tx:
        tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
        tx.tags.put("arn", {"a": "b"})
        raise RuntimeError("abort")
    with store.read() as tx:
        assert tx.pipelines.get("app") is None
        assert tx.tags.of("arn") == {}


def test_delete_pipeline_removes_versions(store: Store) -> None:
    with store.write() as tx:
        record = tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
    with store.write() as tx:
        assert tx.pipelines.delete("app") is True
        assert tx.pipelines.delete("app") is False
    with store.read() as tx:
        assert tx.pipelines.declaration(record.id, 1) is None


def test_pipeline_pages_in_name_order(store: Store) -> None:
    with store.write() as tx:
        for name in ["c", "a", "b", "d"]:
            tx.pipelines.insert(name, DECLARATION, "V1", "SUPERSEDED", 1.0)
    with store.read() as tx:
        assert [r.name for r in tx.pipelines.page(None, 3)] == ["a", "b", "c"]
        assert [r.name for r in tx.pipelines.page("c", 3)] == ["d"]


def test_tags_put_replace_remove(store: Store) -> None:
    with store.write() as tx:
        tx.tags.put("arn:1", {"b": "1", "a": "2"})
        tx.tags.put("arn:1", {"a": "3"})
        tx.tags.put("arn:2", {"x": "y"})
    with store.write() as tx:
        assert tx.tags.of("arn:1") == {"a": "3", "b": "1"}
        tx.tags.remove("arn:1", ["b", "missing"])
        assert tx.tags.of("arn:1") == {"a": "3"}
        tx.tags.clear("arn:1")
        assert tx.tags.of("arn:1") == {}
        assert tx.tags.of("arn:2") == {"x": "y"}


def test_action_types_put_delete_restore(store: Store) -> None:
    definition = {"inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}}
    with store.write() as tx:
        tx.action_types.put(CUSTOM, definition, 1.0)
        assert tx.action_types.count("Custom") == 1
        assert tx.action_types.mark_deleted(CUSTOM, 2.0) is True
        assert tx.action_types.mark_deleted(CUSTOM, 3.0) is False
        assert tx.action_types.count("Custom") == 0
        assert tx.action_types.all() == []
        deleted = tx.action_types.get(CUSTOM)
        assert deleted is not None
        assert deleted.deleted
        tx.action_types.put(CUSTOM, definition, 4.0)
    with store.read() as tx:
        record = tx.action_types.get(CUSTOM)
        assert record is not None
        assert (record.deleted, record.created, record.updated) == (False, 1.0, 4.0)
        assert [r.id for r in tx.action_types.all("Custom")] == [CUSTOM]
        assert tx.action_types.all("ThirdParty") == []


def test_meta_setdefault_keeps_the_first_value(store: Store) -> None:
    with store.write() as tx:
        assert tx.meta.setdefault("k", "first") == "first"
        assert tx.meta.setdefault("k", "second") == "first"
    with store.read() as tx:
        assert tx.meta.get("k") == "first"
        assert tx.meta.get("missing") is None


def test_concurrent_writers_serialize(store: Store) -> None:
    """Many threads adding versions at once: every version lands exactly once."""
    with store.write() as tx:
        tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(5):
                with store.write() as tx:
                    current = tx.pipelines.get("app", lock=True)
                    assert current is not None
                    assert tx.pipelines.add_version(current, {}, "V1", "SUPERSEDED", 2.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.read() as tx:
        record = tx.pipelines.get("app")
        assert record is not None
        assert record.version == 21


def test_a_broken_constraint_on_the_fast_path_is_a_duplicate_key(store: Store) -> None:
    # Inserts go on the driver's cursor (on PostgreSQL, with the commit): its own error for
    # the broken key is told as the store's, as SQLAlchemy's is.
    with store.write() as tx:
        rows.insert(tx._conn, tables.meta, {"key": "k", "value": "first"})
    with pytest.raises(DuplicateKey), store.write() as tx:
        rows.insert(tx._conn, tables.meta, {"key": "k", "value": "second"})
    with store.read() as tx:
        assert tx.meta.get("k") == "first"
