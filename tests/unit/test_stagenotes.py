"""What `conveyor show` says about rollbacks and retries beside a stage, and the stage's
conditions under it."""

from __future__ import annotations

from typing import Any

import click

from conveyor.cli import render
from conveyor.cli.stagenotes import RuleNote, condition_notes, stage_notes


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


def _state_with_conditions() -> dict[str, Any]:
    rule = {"ruleName": "Window", "latestExecution": {"status": "Succeeded"}}
    failed = {
        "ruleName": "Tests",
        "latestExecution": {"status": "Failed", "summary": "exit status 2\nmore"},
    }
    return {
        "pipelineName": "app",
        "pipelineVersion": 1,
        "stageStates": [
            {
                "stageName": "Deploy",
                "latestExecution": {"pipelineExecutionId": "e1", "status": "Failed"},
                "beforeEntryConditionState": {
                    "latestExecution": {"status": "Failed"},
                    "conditionStates": [
                        {"latestExecution": {"status": "Failed"}, "ruleStates": [rule, failed]}
                    ],
                },
                "onSuccessConditionState": {
                    "conditionStates": [{"ruleStates": [{"ruleName": "Alarm"}]}],
                },
                "onFailureConditionState": {
                    "latestExecution": {"status": "Overridden"},
                    "conditionStates": [
                        {
                            "ruleStates": [
                                {"ruleName": "Check", "latestExecution": {"status": "Succeeded"}}
                            ]
                        }
                    ],
                },
                "actionStates": [{"actionName": "Push", "latestExecution": {"status": "Failed"}}],
            },
            {"stageName": "Plain", "actionStates": []},
        ],
    }


def test_condition_notes_name_each_kind_its_status_and_its_rules() -> None:
    stage = _state_with_conditions()["stageStates"][0]
    notes = condition_notes(stage)
    assert [(n.kind, n.status) for n in notes] == [
        ("beforeEntry", "Failed"),
        ("onSuccess", None),
        ("onFailure", "Overridden"),
    ]
    assert notes[0].rules == [
        RuleNote("Window", "Succeeded", None),
        RuleNote("Tests", "Failed", "exit status 2\nmore"),
    ]
    assert notes[1].rules == [RuleNote("Alarm", None, None)]
    assert condition_notes({"stageName": "Plain"}) == []


def test_show_draws_conditions_under_the_stage_header() -> None:
    text = click.unstyle(render.pipeline_state(_state_with_conditions()))
    lines = text.splitlines()
    header = lines.index("Deploy  Failed  execution e1")
    assert lines[header + 1 : header + 4] == [
        "  ◇ beforeEntry Failed: Window Succeeded, Tests Failed (exit status 2)",
        "  ◇ onSuccess -: Alarm -",
        "  ◇ onFailure Overridden: Check Succeeded",
    ]
    assert "◇" not in "\n".join(lines[lines.index("Plain  -") :])
