"""The status tables: every pair of statuses is either a legal move or not, and the diagrams in
docs/state-machines.md show exactly the legal ones."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import pytest

from conveyor.domain.status import (
    ACTION_MOVES,
    EXECUTION_MOVES,
    JOB_MOVES,
    STAGE_MOVES,
    ActionStatus,
    ExecutionStatus,
    JobStatus,
    StageStatus,
    can_move,
)

DOC = Path(__file__).parents[2] / "docs" / "state-machines.md"
TABLES: dict[str, tuple[type[StrEnum], Mapping[StrEnum, frozenset[StrEnum]]]] = {
    "ExecutionStatus": (ExecutionStatus, EXECUTION_MOVES),  # type: ignore[dict-item]
    "StageStatus": (StageStatus, STAGE_MOVES),  # type: ignore[dict-item]
    "ActionStatus": (ActionStatus, ACTION_MOVES),  # type: ignore[dict-item]
    "JobStatus": (JobStatus, JOB_MOVES),  # type: ignore[dict-item]
}


@pytest.mark.parametrize("name", list(TABLES))
def test_every_pair_is_decided_by_the_table(name: str) -> None:
    enum, table = TABLES[name]
    assert set(table) == set(enum), "every status has a row"
    for old, new in itertools.product(enum, enum):
        assert can_move(table, old, new) == (new in table[old])
        assert not can_move(table, old, old), "staying put is not a move"


def _drawn(name: str) -> set[tuple[str, str]]:
    text = DOC.read_text()
    block = text.split(f"## {name}", 1)[1].split("```mermaid", 1)[1].split("```", 1)[0]
    return {(a, b) for a, b in re.findall(r"^\s*(\w+) --> (\w+)", block, re.MULTILINE)}


@pytest.mark.parametrize("name", list(TABLES))
def test_the_diagram_shows_exactly_the_table(name: str) -> None:
    _, table = TABLES[name]
    expected = {(old.value, new.value) for old, moves in table.items() for new in moves}
    assert _drawn(name) == expected
