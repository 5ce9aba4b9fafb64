"""What a pipeline version implies for running it, worked out once per version.

Stage order, each stage's runOrder groups, which action produces each artifact, which
namespaces an action may read: all follow from the declaration, so they are computed once
and kept (the engine memoises plans per pipeline version), never per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.pipeline import Action, Pipeline, Stage

APPROVAL = ActionTypeId("Approval", "AWS", "Manual", "1")


@dataclass(frozen=True, slots=True)
class StagePlan:
    index: int
    stage: Stage
    # Action names by runOrder group, groups in the order they run.
    groups: tuple[tuple[str, ...], ...]
    actions: Mapping[str, Action]

    @property
    def name(self) -> str:
        return self.stage.name


@dataclass(frozen=True, slots=True)
class Plan:
    pipeline: Pipeline
    version: int
    stages: tuple[StagePlan, ...]
    # Namespaces each action may read: those of actions that always finish before it starts.
    scopes: Mapping[tuple[str, str], frozenset[str]]

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)

    def index(self, name: str) -> int | None:
        found = self.stage(name)
        return None if found is None else found.index


def _groups(stage: Stage) -> tuple[tuple[str, ...], ...]:
    orders = sorted({a.run_order for a in stage.actions})
    return tuple(tuple(a.name for a in stage.actions if a.run_order == o) for o in orders)


def make_plan(pipeline: Pipeline, version: int) -> Plan:
    stages = tuple(
        StagePlan(i, stage, _groups(stage), {a.name: a for a in stage.actions})
        for i, stage in enumerate(pipeline.stages)
    )
    scopes: dict[tuple[str, str], frozenset[str]] = {}
    earlier: set[str] = set()
    for stage in pipeline.stages:
        for action in stage.actions:
            before = {
                a.namespace for a in stage.actions if a.namespace and a.run_order < action.run_order
            }
            scopes[(stage.name, action.name)] = frozenset(earlier | before)
        earlier |= {a.namespace for a in stage.actions if a.namespace}
    return Plan(pipeline, version, stages, scopes)
