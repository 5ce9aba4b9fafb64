"""How `conveyor show` and `conveyor executions` tell what started an execution and why change
detection fails (pure rendering)."""

from __future__ import annotations

import click

from conveyor.cli import render
from conveyor.cli.extensions import _copy_detection


def test_trigger_is_type_then_detail() -> None:
    summary = {"trigger": {"triggerType": "CloudWatchEvent", "triggerDetail": "Source: commit a"}}
    assert render.trigger(summary) == "CloudWatchEvent: Source: commit a"
    assert render.trigger({"trigger": {"triggerType": "CreatePipeline"}}) == "CreatePipeline"
    assert render.trigger({}) == ""


def test_a_rollback_s_trigger_names_the_execution_it_rolled_back_to() -> None:
    target = "1f0c2a9e-0000-4000-8000-000000000000"
    summary = {
        "trigger": {"triggerType": "ManualRollback", "triggerDetail": "arn:aws:iam::1:user/a"},
        "executionType": "ROLLBACK",
        "rollbackMetadata": {"rollbackTargetPipelineExecutionId": target},
    }
    assert render.trigger_type(summary) == "ManualRollback to 1f0c2a9e"
    assert render.trigger(summary) == "ManualRollback to 1f0c2a9e: arn:aws:iam::1:user/a"
    automatic = {**summary, "trigger": {"triggerType": "AutomatedRollback"}}
    assert render.trigger_type(automatic) == "AutomatedRollback to 1f0c2a9e"
    assert render.trigger_type({"trigger": {"triggerType": "Webhook"}}) == "Webhook"


def test_state_shows_trigger_and_detection_problem() -> None:
    state = {
        "pipelineName": "app",
        "pipelineVersion": 1,
        "stageStates": [
            {
                "stageName": "Source",
                "latestExecution": {"pipelineExecutionId": "e1", "status": "Succeeded"},
                "actionStates": [
                    {
                        "actionName": "Source",
                        "latestExecution": {"status": "Succeeded"},
                        "changeDetection": {"status": "Failing", "message": "Branch main gone"},
                    }
                ],
            }
        ],
    }
    text = click.unstyle(render.pipeline_state(state, {"e1": "WebhookV2: Source: pull request 7"}))
    assert "execution e1  (WebhookV2: Source: pull request 7)" in text
    assert "change detection failing: Branch main gone" in text


def test_detection_survives_parsing() -> None:
    raw = {
        "stageStates": [
            {"actionStates": [{"actionName": "Source", "changeDetection": {"message": "x"}}]}
        ]
    }
    parsed = {"stageStates": [{"actionStates": [{"actionName": "Source"}]}]}
    _copy_detection(raw, parsed)
    assert parsed["stageStates"][0]["actionStates"][0]["changeDetection"] == {"message": "x"}
