"""Defaults, masking and secret carry-over on declarations."""

from __future__ import annotations

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.declaration import leftover_masks, masked, normalized, restore_secrets
from conveyor.domain.pipeline import MASK, ExecutionMode, PipelineType
from tests.support.declarations import pipeline


def secrets(type_id: ActionTypeId) -> frozenset[str]:
    return frozenset({"BranchName"}) if type_id.provider == "Git" else frozenset()


def test_normalized_fills_defaults_without_touching_the_input() -> None:
    declaration = pipeline()
    result = normalized(
        declaration, version=3, pipeline_type=PipelineType.V2, execution_mode=ExecutionMode.QUEUED
    )
    assert (result["version"], result["pipelineType"], result["executionMode"]) == (
        3,
        "V2",
        "QUEUED",
    )
    build = result["stages"][1]["actions"][0]
    assert (build["runOrder"], build["outputArtifacts"]) == (1, [])
    assert "runOrder" not in declaration["stages"][1]["actions"][0]


def test_masked_hides_secrets_only() -> None:
    result = masked(pipeline(), secrets)
    config = result["stages"][0]["actions"][0]["configuration"]
    assert config == {"RepositoryUrl": "https://example.com/app.git", "BranchName": MASK}
    assert pipeline()["stages"][0]["actions"][0]["configuration"]["BranchName"] == "main"


def test_restore_secrets_takes_the_previous_value_for_the_same_action() -> None:
    previous = pipeline()
    sent = masked(previous, secrets)
    assert restore_secrets(sent, previous, secrets) == previous
    assert leftover_masks(restore_secrets(sent, previous, secrets), secrets) == []


def test_a_mask_on_a_new_action_is_left_over() -> None:
    sent = masked(pipeline(), secrets)
    sent["stages"][0]["actions"][0]["name"] = "Renamed"
    restored = restore_secrets(sent, pipeline(), secrets)
    assert leftover_masks(restored, secrets) == [("Source", "Renamed", "BranchName")]
