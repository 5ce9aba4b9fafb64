"""Plans of pipeline versions, worked out once and kept: versions never change."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from conveyor.domain.pipeline import parse_pipeline
from conveyor.domain.plan import Plan, make_plan
from conveyor.store import Tx


class Plans:
    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, int], Plan] = OrderedDict()
        self._lock = Lock()

    def get(self, tx: Tx, pipeline_id: int, version: int) -> Plan:
        key = (pipeline_id, version)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        declaration = tx.pipelines.declaration(pipeline_id, version)
        if declaration is None:  # pragma: no cover - versions are never deleted alone
            raise LookupError(f"pipeline {pipeline_id} has no version {version}")
        plan = make_plan(parse_pipeline(declaration), version)
        with self._lock:
            self._items[key] = plan
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return plan
