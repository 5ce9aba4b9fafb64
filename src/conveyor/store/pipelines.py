"""Queries on pipelines and their numbered, immutable declaration versions.

A version's declaration never changes once written and pipeline ids are never reused, so
decoded declarations are kept in a per-store cache keyed by (pipeline id, version). Callers
must treat what they get as read-only.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Protocol

import sqlalchemy as sa

from conveyor.domain.declaration import SEALED, opened
from conveyor.store import fast
from conveyor.store.tables import pipeline_versions, pipelines, transitions

# Whether any of the pipeline's transitions is disabled: read with the pipeline's row, so the
# engine asks for the transitions themselves only when one is.
ANY_DISABLED = (
    sa.exists()
    .where(transitions.c.pipeline_id == pipelines.c.id, transitions.c.enabled == sa.false())
    .label("any_disabled")
)
# Statements built once: building a statement costs as much as running it on SQLite.
_BY_NAME = sa.select(pipelines, ANY_DISABLED).where(pipelines.c.name == sa.bindparam("name"))
_BY_NAME_LOCKED = _BY_NAME.with_for_update(of=pipelines)
_BY_ID = sa.select(pipelines, ANY_DISABLED).where(pipelines.c.id == sa.bindparam("id"))
_BY_ID_LOCKED = _BY_ID.with_for_update(of=pipelines)
_DECLARATION = sa.select(pipeline_versions.c.declaration).where(
    pipeline_versions.c.pipeline_id == sa.bindparam("pipeline_id"),
    pipeline_versions.c.version == sa.bindparam("version"),
)
_COUNT = sa.select(sa.func.count()).select_from(pipelines)


@dataclass(frozen=True, slots=True)
class PipelineRecord:
    id: int
    name: str
    version: int
    pipeline_type: str
    execution_mode: str
    created: float
    updated: float
    # Whether a transition of the pipeline was disabled when the row was read; None: unknown.
    any_disabled: bool | None = field(default=None, compare=False)


def pipeline_record(row: Mapping[Any, Any]) -> PipelineRecord:
    disabled = row.get("any_disabled")
    return PipelineRecord(
        row["id"],
        row["name"],
        row["version"],
        row["pipeline_type"],
        row["execution_mode"],
        row["created"],
        row["updated"],
        None if disabled is None else bool(disabled),
    )


class DeclarationCache:
    """The most recently read declarations, by (pipeline id, version)."""

    def __bool__(self) -> bool:
        return True

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[int, int]) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[int, int], declaration: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = declaration
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class SecretBox(Protocol):
    """Seals and opens secret values (the installation's key)."""

    def seal(self, text: str) -> str: ...

    def open(self, token: str) -> str: ...


class Pipelines:
    def __init__(
        self, conn: sa.Connection, cache: DeclarationCache | None, box: SecretBox | None = None
    ) -> None:
        self._conn = conn
        # Only read transactions use the cache: they see committed rows only.
        self._cache = cache
        self._box = box

    def get(self, name: str, *, lock: bool = False) -> PipelineRecord | None:
        """The pipeline named ``name``; ``lock`` holds its row until the transaction ends."""
        query = _BY_NAME_LOCKED if lock else _BY_NAME
        rows = fast.fetch(self._conn, query, {"name": name})
        return pipeline_record(rows[0]) if rows else None

    def get_by_id(self, pipeline_id: int, *, lock: bool = False) -> PipelineRecord | None:
        query = _BY_ID_LOCKED if lock else _BY_ID
        rows = fast.fetch(self._conn, query, {"id": pipeline_id})
        return pipeline_record(rows[0]) if rows else None

    def declaration(self, pipeline_id: int, version: int) -> dict[str, Any] | None:
        """The declaration of one version (shared: do not modify it)."""
        key = (pipeline_id, version)
        found = self._cache.get(key) if self._cache else None
        if found is not None:
            return found
        text = self._conn.execute(
            _DECLARATION, {"pipeline_id": pipeline_id, "version": version}
        ).scalar()
        if text is None:
            return None
        declaration: dict[str, Any] = json.loads(text)
        if self._box is not None and SEALED in text:
            declaration = opened(declaration, self._box.open)
        if self._cache:
            self._cache.put(key, declaration)
        return declaration

    def count(self) -> int:
        return int(self._conn.execute(_COUNT).scalar_one())

    def page(self, after: str | None, limit: int) -> list[PipelineRecord]:
        """Up to ``limit`` pipelines in name order, starting after the name ``after``."""
        query = sa.select(pipelines).order_by(pipelines.c.name).limit(limit)
        if after is not None:
            query = query.where(pipelines.c.name > after)
        return [pipeline_record(row._mapping) for row in self._conn.execute(query)]

    def insert(
        self,
        name: str,
        declaration: dict[str, Any],
        pipeline_type: str,
        execution_mode: str,
        now: float,
    ) -> PipelineRecord:
        """A new pipeline at version 1."""
        pipeline_id = self._conn.execute(
            sa.insert(pipelines)
            .values(
                name=name,
                version=1,
                pipeline_type=pipeline_type,
                execution_mode=execution_mode,
                created=now,
                updated=now,
            )
            .returning(pipelines.c.id)
        ).scalar_one()
        self._insert_version(pipeline_id, 1, declaration, now)
        return PipelineRecord(pipeline_id, name, 1, pipeline_type, execution_mode, now, now, False)

    def add_version(
        self,
        current: PipelineRecord,
        declaration: dict[str, Any],
        pipeline_type: str,
        execution_mode: str,
        now: float,
    ) -> PipelineRecord | None:
        """Version ``current.version + 1``; None when another writer got there first."""
        version = current.version + 1
        result = self._conn.execute(
            sa.update(pipelines)
            .where(pipelines.c.id == current.id, pipelines.c.version == current.version)
            .values(
                version=version,
                pipeline_type=pipeline_type,
                execution_mode=execution_mode,
                updated=now,
            )
        )
        if result.rowcount != 1:
            return None
        self._insert_version(current.id, version, declaration, now)
        return PipelineRecord(
            current.id,
            current.name,
            version,
            pipeline_type,
            execution_mode,
            current.created,
            now,
            current.any_disabled,
        )

    def delete(self, name: str) -> bool:
        row = self.get(name, lock=True)
        if row is None:
            return False
        self._conn.execute(
            sa.delete(pipeline_versions).where(pipeline_versions.c.pipeline_id == row.id)
        )
        self._conn.execute(sa.delete(pipelines).where(pipelines.c.id == row.id))
        return True

    def _insert_version(
        self, pipeline_id: int, version: int, declaration: dict[str, Any], now: float
    ) -> None:
        self._conn.execute(
            sa.insert(pipeline_versions).values(
                pipeline_id=pipeline_id,
                version=version,
                declaration=json.dumps(declaration, separators=(",", ":")),
                created=now,
            )
        )
