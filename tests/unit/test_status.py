"""The status tables against the legal moves docs/state-machines.md lists: every pair of
statuses is a move exactly when the document draws it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import pytest

from conveyor.domain.status import (
    ACTION_MOVES,
    CONDITION_MOVES,
    EXECUTION_MOVES,
    JOB_MOVES,
    RULE_MOVES,
    STAGE_MOVES,
    ActionStatus,
    ConditionStatus,
    ExecutionStatus,
    JobStatus,
    RuleStatus,
    StageStatus,
    can_move,
)

DOC = Path(__file__).parents[2] / "docs" / "state-machines.md"
TABLES: dict[str, tuple[type[StrEnum], Mapping[StrEnum, frozenset[StrEnum]]]] = {
    "ExecutionStatus": (ExecutionStatus, EXECUTION_MOVES),  # type: ignore[dict-item]
    "StageStatus": (StageStatus, STAGE_MOVES),  # type: ignore[dict-item]
    "ActionStatus": (ActionStatus, ACTION_MOVES),  # type: ignore[dict-item]
    "JobStatus": (JobStatus, JOB_MOVES),  # type: ignore[dict-item]
    "ConditionStatus": (ConditionStatus, CONDITION_MOVES),  # type: ignore[dict-item]
    "RuleStatus": (RuleStatus, RULE_MOVES),  # type: ignore[dict-item]
}


def _drawn(name: str) -> set[tuple[str, str]]:
    text = DOC.read_text()
    block = text.split(f"## {name}", 1)[1].split("```mermaid", 1)[1].split("```", 1)[0]
    return {(a, b) for a, b in re.findall(r"^\s*(\w+) --> (\w+)", block, re.MULTILINE)}


@pytest.mark.parametrize("name", list(TABLES))
def test_every_pair_moves_exactly_when_the_document_lists_the_move(name: str) -> None:
    """The legal moves are the ones docs/state-machines.md lists; the tables must agree."""
    enum, table = TABLES[name]
    legal = _drawn(name)
    assert legal, f"docs/state-machines.md draws no moves for {name}"
    assert {s for move in legal for s in move} <= {s.value for s in enum}, "unknown statuses"
    assert set(table) == set(enum), "every status has a row"
    for old, new in itertools.product(enum, enum):
        allowed = (old.value, new.value) in legal
        assert can_move(table, old, new) == allowed, f"{old} -> {new}: documented {allowed}"
