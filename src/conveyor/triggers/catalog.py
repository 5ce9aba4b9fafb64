"""The watched source actions of every pipeline, read again only when a pipeline changes.

Each pass reads the pipelines' ids and versions (one query); a declaration is parsed into its
`Watch` values once per (pipeline id, version), which never changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from conveyor.domain.pipeline import parse_pipeline
from conveyor.domain.triggers import Watch, watches
from conveyor.store import Store


@dataclass(frozen=True, slots=True)
class Target:
    """One watched source action of one pipeline version."""

    pipeline_id: int
    pipeline_name: str
    version: int
    watch: Watch

    @property
    def key(self) -> tuple[int, str]:
        return (self.pipeline_id, self.watch.action)


class Catalog:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._known: dict[tuple[int, int], tuple[Target, ...]] = {}

    def targets(self) -> list[Target]:
        """Every watched source action of the latest version of every pipeline."""
        with self._store.read() as tx:
            briefs = tx.heads.pipelines()
            missing = [b for b in briefs if (b.id, b.version) not in self._known]
            parsed = {}
            for brief in missing:
                declaration = tx.pipelines.declaration(brief.id, brief.version)
                found = watches(parse_pipeline(declaration)) if declaration else ()
                parsed[(brief.id, brief.version)] = tuple(
                    Target(brief.id, brief.name, brief.version, w) for w in found
                )
        with self._lock:
            self._known.update(parsed)
            current = {(b.id, b.version) for b in briefs}
            for gone in set(self._known) - current:
                del self._known[gone]
            return [t for key in current for t in self._known[key]]
