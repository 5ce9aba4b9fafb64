"""What change detection keeps, on SQLite and PostgreSQL, and the lock one server holds."""

from __future__ import annotations

from conveyor.store import Store
from tests.store.test_store import DECLARATION


def test_heads_are_upserted_and_go_with_their_pipeline(store: Store) -> None:
    with store.write() as tx:
        record = tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
        tx.heads.put(record.id, "Source", "refs/heads/main", "a" * 40, 2.0)
        tx.heads.put(record.id, "Source", "refs/heads/main", "b" * 40, 3.0)
        tx.heads.put(record.id, "Source", "", "1", 3.0)
    with store.read() as tx:
        assert tx.heads.of(record.id) == {
            ("Source", "refs/heads/main"): "b" * 40,
            ("Source", ""): "1",
        }
        assert tx.heads.all() == {
            (record.id, "Source", "refs/heads/main"): "b" * 40,
            (record.id, "Source", ""): "1",
        }
        assert [(p.id, p.name, p.version) for p in tx.heads.pipelines()] == [(record.id, "app", 1)]
    with store.write() as tx:
        tx.pipelines.delete("app")
    with store.read() as tx:
        assert tx.heads.all() == {}


def test_problems_are_set_replaced_and_cleared(store: Store) -> None:
    with store.write() as tx:
        record = tx.pipelines.insert("app", DECLARATION, "V1", "SUPERSEDED", 1.0)
        tx.heads.set_problem(record.id, "Source", "gone", 2.0)
        tx.heads.set_problem(record.id, "Source", "still gone", 3.0)
    with store.read() as tx:
        assert tx.heads.problems(record.id) == {"Source": "still gone"}
        assert tx.heads.all_problems() == {(record.id, "Source"): "still gone"}
    with store.write() as tx:
        tx.heads.set_problem(record.id, "Source", None, 4.0)
    with store.read() as tx:
        assert tx.heads.problems(record.id) == {}


def test_one_holder_of_the_detection_lock_at_a_time(store: Store) -> None:
    first, second = store.leadership(), store.leadership()
    try:
        assert first.hold()
        assert first.hold()  # still held
        if store.dialect == "postgresql":
            assert not second.hold()
            first.release()
            assert second.hold()
            assert not first.hold()
        else:  # one process owns a SQLite database
            assert second.hold()
    finally:
        first.release()
        second.release()
