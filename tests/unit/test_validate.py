"""Model-driven input validation and its AWS-style messages."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.api.model import operation
from conveyor.api.validate import summarize, validate_input


def errors(name: str, params: dict[str, Any]) -> list[str]:
    return validate_input(operation(name).input_shape, params)


def test_valid_input_has_no_errors() -> None:
    assert errors("GetPipeline", {"name": "app", "version": 3}) == []


def test_missing_required_member() -> None:
    assert errors("GetPipeline", {}) == [
        "Value null at 'name' failed to satisfy constraint: Member must not be null"
    ]


def test_one_value_breaking_two_constraints_gives_two_errors() -> None:
    found = errors("GetPipeline", {"name": ""})
    assert found == [
        "Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1",
        "Value '' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+",
    ]


def test_nested_list_paths_are_one_based() -> None:
    found = errors(
        "StartPipelineExecution",
        {
            "name": "app",
            "variables": [{"name": "ok", "value": "v"}, {"name": "bad name", "value": ""}],
        },
    )
    assert "Value 'bad name' at 'variables.2.member.name'" in found[0]
    assert "Value '' at 'variables.2.member.value'" in found[1]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"maxResults": 0}, "Member must have value greater than or equal to 1"),
        ({"maxResults": 1001}, "Member must have value less than or equal to 1000"),
        ({"maxResults": "10"}, "Member must be of type integer"),
        ({"maxResults": True}, "Member must be of type integer"),
        ({"maxResults": 2.5}, "Member must be of type integer"),
        ({"nextToken": 5}, "Member must be of type string"),
        ({"nextToken": "x" * 2049}, "Member must have length less than or equal to 2048"),
    ],
)
def test_scalar_constraints(params: dict[str, Any], fragment: str) -> None:
    found = errors("ListPipelines", params)
    assert len(found) == 1
    assert fragment in found[0]


def test_enum_and_boolean() -> None:
    found = errors(
        "StopPipelineExecution",
        {
            "pipelineName": "p",
            "pipelineExecutionId": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            "abandon": "yes",
        },
    )
    assert found == [
        "Value 'yes' at 'abandon' failed to satisfy constraint: Member must be of type boolean"
    ]
    found = errors(
        "DisableStageTransition",
        {"pipelineName": "p", "stageName": "s", "transitionType": "Sideways", "reason": "why"},
    )
    assert found == [
        "Value 'Sideways' at 'transitionType' failed to satisfy constraint: Member must satisfy enum value set: [Inbound, Outbound]"
    ]


def test_structure_and_list_types() -> None:
    found = errors("CreatePipeline", {"pipeline": [], "tags": {}})
    assert "at 'pipeline' failed to satisfy constraint: Member must be a structure" in found[0]
    assert "at 'tags' failed to satisfy constraint: Member must be of type list" in found[1]


def one_action(configuration: dict[str, str]) -> dict[str, Any]:
    """CreatePipeline input: one stage with one action carrying ``configuration``."""
    action_type = {"category": "Build", "owner": "AWS", "provider": "X", "version": "1"}
    action = {"name": "a", "actionTypeId": action_type, "configuration": configuration}
    pipeline = {
        "name": "p",
        "roleArn": "arn:aws:iam::000000000000:role/r",
        "stages": [{"name": "s", "actions": [action]}],
    }
    return {"pipeline": pipeline}


def test_map_keys_and_values() -> None:
    params = one_action({"k" * 51: "v", "empty": ""})
    found = errors("CreatePipeline", params)
    path = "'pipeline.stages.1.member.actions.1.member.configuration'"
    assert any(
        path in e
        and "Map keys must satisfy constraint: [Member must have length less than or equal to 50]"
        in e
        for e in found
    )
    assert any(
        path in e
        and "Map value must satisfy constraint: [Member must have length greater than or equal to 1]"
        in e
        for e in found
    )


def test_configuration_values_may_be_long() -> None:
    params = {"actionType": None}
    assert errors("UpdateActionType", params)  # required
    long_value = {"ProjectName": "x" * 50_000}
    params2 = one_action(long_value)
    assert errors("CreatePipeline", params2) == []
    long_value["ProjectName"] = "x" * 50_001
    assert len(errors("CreatePipeline", params2)) == 1


def test_timestamps_accept_numbers_and_iso_strings() -> None:
    base = {"pipelineName": "p", "stageName": "s", "actionName": "a"}
    for created in (1700000000, 1700000000.5, "1700000000", "2026-11-21T10:00:00Z"):
        revision = {"revisionId": "r", "revisionChangeId": "c", "created": created}
        assert errors("PutActionRevision", {**base, "actionRevision": revision}) == []
    revision = {"revisionId": "r", "revisionChangeId": "c", "created": "yesterday"}
    assert len(errors("PutActionRevision", {**base, "actionRevision": revision})) == 1


def test_summarize_counts_errors() -> None:
    assert summarize(["a"]) == "1 validation error detected: a"
    assert summarize(["a", "b"]) == "2 validation errors detected: a; b"
