"""Queries on CodeBuild projects: by name, several at once, and pages in one of three orders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store.rows import dumps, loads
from conveyor.store.tables import projects

# ListProjects' sortBy → the column it orders by (names break ties).
_ORDERS = {"NAME": projects.c.name, "CREATED_TIME": projects.c.created}
_ORDERS["LAST_MODIFIED_TIME"] = projects.c.updated


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    name: str
    definition: dict[str, Any]
    created: float
    updated: float


def _record(row: Mapping[Any, Any]) -> ProjectRecord:
    return ProjectRecord(
        name=row["name"],
        definition=loads(row["definition"]),
        created=row["created"],
        updated=row["updated"],
    )


class Projects:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> ProjectRecord | None:
        row = self._conn.execute(sa.select(projects).where(projects.c.name == name)).first()
        return None if row is None else _record(row._mapping)

    def get_many(self, names: Sequence[str]) -> dict[str, ProjectRecord]:
        query = sa.select(projects).where(projects.c.name.in_(list(names)))
        return {row.name: _record(row._mapping) for row in self._conn.execute(query)}

    def insert(self, record: ProjectRecord) -> None:
        self._conn.execute(
            sa.insert(projects).values(
                name=record.name,
                definition=dumps(record.definition),
                created=record.created,
                updated=record.updated,
            )
        )

    def redefine(self, name: str, definition: dict[str, Any], now: float) -> bool:
        result = self._conn.execute(
            sa.update(projects)
            .where(projects.c.name == name)
            .values(definition=dumps(definition), updated=now)
        )
        return result.rowcount == 1

    def delete(self, name: str) -> bool:
        return self._conn.execute(sa.delete(projects).where(projects.c.name == name)).rowcount == 1

    def page(
        self, sort_by: str, descending: bool, after: tuple[Any, str] | None, limit: int
    ) -> list[tuple[Any, str]]:
        """Up to ``limit`` (sort key, name) pairs in that order, after the pair ``after``."""
        column = _ORDERS[sort_by]
        name = projects.c.name
        query = sa.select(column.label("sort_key"), name)
        if descending:
            query = query.order_by(column.desc(), name.desc())
        else:
            query = query.order_by(column, name)
        if after is not None:
            key, last = after
            pair, bound = sa.tuple_(column, name), sa.tuple_(sa.literal(key), sa.literal(last))
            query = query.where(pair < bound if descending else pair > bound)
        return [(row[0], row[1]) for row in self._conn.execute(query.limit(limit))]
