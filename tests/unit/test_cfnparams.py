"""How the CloudFormation action reads its inputs: artifact paths, template configurations,
ParameterOverrides with Fn::GetParam and Fn::GetArtifactAtt, and a stack's first failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.actions.base import ArtifactLocation
from conveyor.actions.cfnparams import (
    Misconfigured,
    artifact_path,
    parameter_overrides,
    template_configuration,
)
from conveyor.actions.cloudformation import first_failure

INPUTS = {"Build": ArtifactLocation("Build", "artifacts", "app/Build/abc123")}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "Build"
    root.mkdir()
    (root / "build.json").write_text(json.dumps({"tag": "v7", "count": 3}))
    (root / "config.json").write_text(
        json.dumps({"Parameters": {"Stage": "test"}, "Tags": {"team": "a"}, "StackPolicy": {}})
    )
    return {"Build": root}


def _files(found: dict[str, Path]) -> Callable[[str], Path]:
    def files(name: str) -> Path:
        if name not in found:
            raise Misconfigured(f"{name} is not an input artifact")
        return found[name]

    return files


def test_artifact_path_splits_at_the_double_colon() -> None:
    assert artifact_path("TemplatePath", "Build::dir/template.yaml") == (
        "Build",
        "dir/template.yaml",
    )
    for bad in ("template.yaml", "::x", "Build::"):
        with pytest.raises(Misconfigured, match="ArtifactName::path"):
            artifact_path("TemplatePath", bad)


def test_parameter_overrides_resolve_both_functions(files: dict[str, Path]) -> None:
    value = json.dumps(
        {
            "Plain": "x",
            "Tag": {"Fn::GetParam": ["Build", "build.json", "tag"]},
            "Count": {"Fn::GetParam": ["Build", "build.json", "count"]},
            "Bucket": {"Fn::GetArtifactAtt": ["Build", "BucketName"]},
            "Key": {"Fn::GetArtifactAtt": ["Build", "ObjectKey"]},
            "Url": {"Fn::GetArtifactAtt": ["Build", "URL"]},
        }
    )
    assert parameter_overrides(value, _files(files), INPUTS) == {
        "Plain": "x",
        "Tag": "v7",
        "Count": "3",
        "Bucket": "artifacts",
        "Key": "app/Build/abc123",
        "Url": "https://artifacts.s3.amazonaws.com/app/Build/abc123",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"A": {"Fn::GetParam": ["Build", "build.json", "nope"]}}', "has no nope"),
        ('{"A": {"Fn::GetParam": ["Build", "../x.json", "k"]}}', "is not a file"),
        ('{"A": {"Fn::GetParam": ["Other", "build.json", "k"]}}', "Other is not an input"),
        ('{"A": {"Fn::GetParam": ["Build", "build.json"]}}', "takes [ArtifactName, file, key]"),
        ('{"A": {"Fn::GetArtifactAtt": ["Build", "Size"]}}', "'Size' is not one of"),
        ('{"A": {"Fn::GetArtifactAtt": ["Other", "URL"]}}', "not an input artifact"),
        ('{"A": {"Fn::Sub": "x"}}', "unknown function 'Fn::Sub'"),
        ('["A"]', "must be a JSON object"),
    ],
)
def test_parameter_override_mistakes_name_the_parameter(
    files: dict[str, Path], value: str, message: str
) -> None:
    with pytest.raises(Misconfigured) as excinfo:
        parameter_overrides(value, _files(files), INPUTS)
    assert message in str(excinfo.value)


def test_template_configuration_reads_parameters_tags_and_policy(
    files: dict[str, Path],
) -> None:
    found = template_configuration(_files(files), "Build::config.json")
    assert found.parameters == {"Stage": "test"}
    assert found.tags == {"team": "a"}
    assert found.stack_policy == "{}"
    (files["Build"] / "config.json").write_text('{"Parameter": {}}')
    with pytest.raises(Misconfigured, match="unknown members Parameter"):
        template_configuration(_files(files), "Build::config.json")


def test_first_failure_is_the_earliest_failed_resource_of_the_latest_operation() -> None:
    events = [  # newest first, as DescribeStackEvents lists them
        {"LogicalResourceId": "app", "ResourceStatus": "ROLLBACK_COMPLETE"},
        {
            "LogicalResourceId": "Topic",
            "ResourceStatus": "CREATE_FAILED",
            "ResourceStatusReason": "Resource creation cancelled",
        },
        {
            "LogicalResourceId": "Queue",
            "ResourceStatus": "CREATE_FAILED",
            "ResourceStatusReason": "Queue name is taken",
        },
        {
            "LogicalResourceId": "app",
            "ResourceStatus": "CREATE_IN_PROGRESS",
            "ResourceStatusReason": "User Initiated",
        },
        {
            "LogicalResourceId": "Old",
            "ResourceStatus": "UPDATE_FAILED",
            "ResourceStatusReason": "an earlier failure",
        },
    ]
    assert first_failure(events) == ": Queue CREATE_FAILED: Queue name is taken"
    assert first_failure(events[3:]) == ""
