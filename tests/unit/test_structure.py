"""Structural rules of a pipeline, one case per rule (pure: no server, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.domain.catalog import builtin_action_type
from conveyor.domain.errors import (
    InvalidActionDeclarationException,
    InvalidStageDeclarationException,
    InvalidStructureException,
)
from conveyor.domain.pipeline import PipelineType, parse_pipeline
from conveyor.domain.problems import format_path
from conveyor.domain.structure import check, effective_type
from tests.support.declarations import build_action, pipeline, source_action


def problems(declaration: dict[str, Any]) -> list[tuple[str, type, str]]:
    return [
        (p.where, p.error, p.message)
        for p in check(parse_pipeline(declaration), builtin_action_type, "us-east-1")
    ]


def test_valid_pipeline_has_no_problems() -> None:
    assert problems(pipeline()) == []


def test_format_path() -> None:
    assert format_path(("stages", 1, "actions", 0, "inputArtifacts", 0)) == (
        "stages[1].actions[0].inputArtifacts[0]"
    )


def stage(name: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "actions": list(actions)}


CASES: list[tuple[str, dict[str, Any], str, type]] = [
    (
        "one stage",
        pipeline(stages=[stage("S", source_action())]),
        "stages",
        InvalidStructureException,
    ),
    (
        "build first",
        pipeline(
            stages=[stage("S", source_action(), build_action()), stage("B", build_action("X"))]
        ),
        "stages[0].actions[1]",
        InvalidStructureException,
    ),
    (
        "no source first",
        pipeline(
            stages=[stage("S", build_action(inputs=())), stage("B", build_action("X", inputs=()))]
        ),
        "stages[0].actions",
        InvalidStructureException,
    ),
    (
        "input consumed before produced",
        pipeline(stages=[stage("S", source_action()), stage("B", build_action(inputs=("Later",)))]),
        "stages[1].actions[0].inputArtifacts[0]",
        InvalidStructureException,
    ),
    (
        "same runOrder cannot feed",
        pipeline(
            stages=[
                stage("S", source_action()),
                stage(
                    "B",
                    {**build_action("A"), "outputArtifacts": [{"name": "O"}]},
                    build_action("C", inputs=("O",)),
                ),
            ]
        ),
        "stages[1].actions[1].inputArtifacts[0]",
        InvalidStructureException,
    ),
    (
        "missing configuration",
        pipeline(
            stages=[
                stage("S", source_action()),
                stage("B", {**build_action(), "configuration": {}}),
            ]
        ),
        "stages[1].actions[0].configuration",
        InvalidActionDeclarationException,
    ),
    (
        "too many outputs",
        pipeline(
            stages=[
                stage("S", {**source_action(), "outputArtifacts": [{"name": "A"}, {"name": "B"}]}),
                stage("B", build_action(inputs=("A",))),
            ]
        ),
        "stages[0].actions[0].outputArtifacts",
        InvalidActionDeclarationException,
    ),
    (
        "reserved namespace",
        pipeline(
            stages=[
                stage("S", {**source_action(), "namespace": "variables"}),
                stage("B", build_action()),
            ]
        ),
        "stages[0].actions[0].namespace",
        InvalidActionDeclarationException,
    ),
    (
        "commands on a build",
        pipeline(
            stages=[
                stage("S", source_action()),
                stage("B", {**build_action(), "commands": ["make"]}),
            ]
        ),
        "stages[1].actions[0].commands",
        InvalidActionDeclarationException,
    ),
    (
        "both artifact stores",
        pipeline(artifactStores={"us-east-1": {"type": "S3", "location": "bucket"}}),
        "artifactStores",
        InvalidStructureException,
    ),
    (
        "region without stores",
        pipeline(
            stages=[
                stage("S", source_action()),
                stage("B", {**build_action(), "region": "eu-west-1"}),
            ]
        ),
        "stages[1].actions[0].region",
        InvalidStructureException,
    ),
    (
        "retry with conditions",
        pipeline(
            pipelineType="V2",
            stages=[
                stage("S", source_action()),
                {
                    **stage("B", build_action()),
                    "onFailure": {
                        "result": "RETRY",
                        "conditions": [{"result": "ROLLBACK", "rules": []}],
                    },
                },
            ],
        ),
        "stages[1].onFailure",
        InvalidStageDeclarationException,
    ),
    (
        "rollback in parallel mode",
        pipeline(
            pipelineType="V2",
            executionMode="PARALLEL",
            stages=[
                stage("S", source_action()),
                {**stage("B", build_action()), "onFailure": {"result": "ROLLBACK"}},
            ],
        ),
        "stages[1].onFailure",
        InvalidStageDeclarationException,
    ),
    (
        "rollback of the source stage",
        pipeline(
            pipelineType="V2",
            stages=[
                {**stage("S", source_action()), "onFailure": {"result": "ROLLBACK"}},
                stage("B", build_action()),
            ],
        ),
        "stages[0].onFailure",
        InvalidStageDeclarationException,
    ),
    (
        "trigger on a git source",
        pipeline(
            triggers=[
                {
                    "providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {"sourceActionName": "Source"},
                }
            ]
        ),
        "triggers[0].gitConfiguration.sourceActionName",
        InvalidStructureException,
    ),
    (
        "commands on V1",
        pipeline(
            pipelineType="V1",
            stages=[
                stage("S", source_action()),
                stage(
                    "B",
                    {
                        "name": "Run",
                        "actionTypeId": {
                            "category": "Compute",
                            "owner": "AWS",
                            "provider": "Commands",
                            "version": "1",
                        },
                        "commands": ["true"],
                        "inputArtifacts": [{"name": "SourceOutput"}],
                    },
                ),
            ],
        ),
        "pipelineType",
        InvalidActionDeclarationException,
    ),
]


@pytest.mark.parametrize(
    ("case", "declaration", "where", "error"), CASES, ids=[c[0] for c in CASES]
)
def test_structure_rule(case: str, declaration: dict[str, Any], where: str, error: type) -> None:
    found = problems(declaration)
    assert (where, error) in [(w, e) for w, e, _ in found], found


def v2_with(**build_stage: Any) -> dict[str, Any]:
    """A V2 pipeline whose second stage, B, carries ``build_stage`` (conditions, onFailure)."""
    return pipeline(
        pipelineType="V2",
        stages=[stage("S", source_action()), {**stage("B", build_action()), **build_stage}],
    )


def conditions(result: str) -> dict[str, Any]:
    return {"conditions": [{"result": result, "rules": []}]}


RESULTS: list[tuple[str, str, list[str], str]] = [
    ("beforeEntry", "conditions[0].result", ["FAIL", "SKIP"], "ROLLBACK RETRY"),
    ("onSuccess", "conditions[0].result", ["FAIL", "ROLLBACK"], "RETRY SKIP"),
    ("onFailure", "conditions[0].result", ["ROLLBACK"], "FAIL RETRY SKIP"),
    ("onFailure", "result", ["RETRY", "ROLLBACK"], "FAIL SKIP"),
]


@pytest.mark.parametrize(("kind", "field", "allowed", "refused"), RESULTS)
def test_each_condition_kind_allows_only_its_results(
    kind: str, field: str, allowed: list[str], refused: str
) -> None:
    def declared(result: str) -> dict[str, Any]:
        block = {"result": result} if field == "result" else conditions(result)
        return v2_with(**{kind: block})

    where = f"stages[1].{kind}.{field}"
    for result in allowed:
        assert [w for w, _, _ in problems(declared(result))] == [], result
    for result in refused.split():
        found = problems(declared(result))
        assert [(w, e) for w, e, _ in found] == [(where, InvalidStageDeclarationException)]
        message = found[0][2]
        assert f"Invalid result {result} at pipeline.{where}" in message
        assert " or ".join(allowed) in message


def test_every_problem_is_reported() -> None:
    declaration = pipeline(
        stages=[stage("S", source_action(), source_action()), stage("S", build_action(inputs=()))]
    )
    found = problems(declaration)
    assert len(found) >= 4


def test_effective_type_promotes_only_undeclared() -> None:
    assert effective_type(parse_pipeline(pipeline())) is PipelineType.V1
    assert effective_type(parse_pipeline(pipeline(executionMode="PARALLEL"))) is PipelineType.V2
    assert effective_type(parse_pipeline(pipeline(pipelineType="V2"))) is PipelineType.V2
