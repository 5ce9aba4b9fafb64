"""What `conveyor show` says about rollbacks and retries beside a stage."""

from __future__ import annotations

from conveyor.cli.stagenotes import stage_notes


def test_a_rollback_in_the_stage_and_its_retries_are_named() -> None:
    stage = {
        "latestExecution": {"pipelineExecutionId": "e", "status": "Succeeded", "type": "ROLLBACK"},
        "retryStageMetadata": {"autoStageRetryAttempt": 1, "manualStageRetryAttempt": 2},
    }
    assert stage_notes(stage) == "  (rollback)  (retried 2x, 1x automatically)"


def test_automatic_and_manual_retries_alone() -> None:
    automatic = {"retryStageMetadata": {"autoStageRetryAttempt": 1}}
    assert stage_notes(automatic) == "  (retried 1x automatically)"
    manual = {"retryStageMetadata": {"manualStageRetryAttempt": 3}}
    assert stage_notes(manual) == "  (retried 3x)"


def test_what_the_stage_does_on_failure_when_its_declaration_is_known() -> None:
    declared = {"name": "Deploy", "onFailure": {"result": "ROLLBACK"}}
    assert stage_notes({}, declared) == "  (on failure: rollback)"
    assert stage_notes({"latestExecution": {"type": "STANDARD"}}) == ""
