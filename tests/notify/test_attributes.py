"""FULL notifications: the ``additionalAttributes`` CodePipeline's processed events carry, and
BASIC ones without them."""

from __future__ import annotations

from typing import Any

from conveyor.notify.attributes import additional_attributes, needs_actions
from conveyor.notify.messages import notification
from conveyor.store.actions import ActionRecord

RULE = "arn:aws:codestar-notifications:us-east-1:000000000000:notificationrule/abc"


def event(detail_type: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": f"CodePipeline {detail_type} Execution State Change",
        "source": "aws.codepipeline",
        "account": "000000000000",
        "time": "2026-12-01T19:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:codepipeline:us-east-1:000000000000:app"],
        "detail": {"pipeline": "app", "execution-id": "x-1", "version": 1, **detail},
    }


def attempt(
    stage: str,
    action: str,
    status: str,
    started: float,
    category: str = "Build",
    provider: str = "CodeBuild",
    attempt: int = 1,
    error: str | None = None,
    variables: dict[str, str] | None = None,
) -> ActionRecord:
    type_id = {"category": category, "owner": "AWS", "provider": provider, "version": "1"}
    return ActionRecord(
        id=f"{action}-{attempt}",
        execution_id="x-1",
        pipeline_id=1,
        pipeline_version=1,
        stage=stage,
        action=action,
        attempt=attempt,
        status=status,
        started=started,
        updated=started,
        deadline=None,
        summary=None,
        external_id=None,
        external_url=None,
        error_code="JobFailed" if error else None,
        error_message=error,
        percent_complete=None,
        token=None,
        updated_by=None,
        input={"actionTypeId": type_id},
        output_artifacts=[],
        output_variables=variables,
        revision=None,
    )


SOURCE = attempt(
    "Source",
    "Src",
    "Succeeded",
    1.0,
    "Source",
    "CodeStarSourceConnection",
    variables={
        "BranchName": "main",
        "CommitId": "abc123",
        "RepositoryName": "app",
        "CommitMessage": "first",
    },
)


def test_a_failed_pipeline_names_its_failed_actions_and_stage() -> None:
    actions = [
        SOURCE,
        attempt("Build", "Unit", "Failed", 2.0, error="exit 1"),
        attempt("Build", "Lint", "Succeeded", 2.0),
        # Retried: only the latest attempt counts, and it failed too.
        attempt("Build", "Unit", "Failed", 3.0, attempt=2, error="exit 2"),
        attempt("Build", "Docs", "Failed", 3.5, error="no docs"),
    ]
    failed = event("Pipeline", state="FAILED")
    assert needs_actions(failed)
    assert additional_attributes(failed, actions) == {
        "failedActionCount": 2,
        "failedActions": [
            {"action": "Unit", "additionalInformation": "exit 2"},
            {"action": "Docs", "additionalInformation": "no docs"},
        ],
        "failedStage": "Build",
    }


def test_a_failed_action_tells_why() -> None:
    failed = event("Action", stage="Build", action="Unit", state="FAILED")
    actions = [attempt("Build", "Unit", "Failed", 2.0, error="exit 1")]
    assert additional_attributes(failed, actions) == {"additionalInformation": "exit 1"}


def test_a_started_stage_names_the_source_actions_and_their_variables() -> None:
    started = event("Stage", stage="Build", state="STARTED")
    assert additional_attributes(started, [SOURCE, attempt("Build", "B", "InProgress", 2)]) == {
        "sourceActions": [
            {
                "sourceActionName": "Src",
                "sourceActionProvider": "CodeStarSourceConnection",
                "sourceActionVariables": {
                    "BranchName": "main",
                    "CommitId": "abc123",
                    "RepositoryName": "app",
                },
            }
        ]
    }


def test_other_events_carry_empty_attributes_and_need_no_actions() -> None:
    succeeded = event("Pipeline", state="SUCCEEDED")
    assert not needs_actions(succeeded)
    assert additional_attributes(succeeded, [SOURCE]) == {}


def test_full_and_basic_notifications_in_the_processed_shape() -> None:
    succeeded = event("Pipeline", state="SUCCEEDED")
    full = notification(succeeded, RULE, "FULL", additional_attributes(succeeded))
    basic = notification(succeeded, RULE, "BASIC")
    assert full == {
        "account": "000000000000",
        "detailType": "CodePipeline Pipeline Execution State Change",
        "region": "us-east-1",
        "source": "aws.codepipeline",
        "time": "2026-12-01T19:00:00Z",
        "notificationRuleArn": RULE,
        "detail": succeeded["detail"],
        "resources": succeeded["resources"],
        "additionalAttributes": {},
    }
    assert basic == {k: v for k, v in full.items() if k != "additionalAttributes"}
