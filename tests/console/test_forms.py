"""The console's forms: each calls the engine as the API does, refuses a missing or forged
CSRF token, and shows the API's error when the engine refuses."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.server import Running
from tests.conftest import make_client
from tests.console.conftest import Console, gated
from tests.support.engine import (
    action_state,
    approval_token,
    commands,
    declaration,
    execution_status,
    latest_execution_id,
    stage,
    stage_state,
    wait_for,
    wait_status,
)


def executions(api: Any) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = api.list_pipeline_executions(pipelineName="app")[
        "pipelineExecutionSummaries"
    ]
    return summaries


def test_release_change_starts_an_execution_with_variables_and_redirects(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(
        pipeline=gated(repo) | {"variables": [{"name": "COLOUR", "defaultValue": "blue"}]}
    )
    approval_token(api, "app")
    answer = console.post("/pipelines/app/release", {"variables": "COLOUR=green\n"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/pipelines/app?notice=Started+execution")
    newest = executions(api)
    assert len(newest) == 2
    started = api.get_pipeline_execution(
        pipelineName="app", pipelineExecutionId=newest[0]["pipelineExecutionId"]
    )["pipelineExecution"]
    assert started["trigger"]["triggerType"] == "StartPipelineExecution"
    assert {"name": "COLOUR", "resolvedValue": "green"} in started["variables"]
    assert "Started execution" in console.get(answer.headers["location"]).text


def test_release_change_sent_twice_starts_one_execution(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    approval_token(api, "app")
    token = re.search(
        r'name="clientRequestToken" value="([^"]+)"', console.get("/pipelines/app").text
    )
    assert token
    for _ in range(2):
        answer = console.post("/pipelines/app/release", {"clientRequestToken": token[1]})
        assert answer.status_code == 303
    assert len(executions(api)) == 2  # the first, and one started by the form


def test_a_post_without_the_csrf_token_or_with_a_forged_one_changes_nothing(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    console.get("/pipelines/app")  # the browser has its cookie
    missing = console.post("/pipelines/app/release", {}, token=False)
    forged = console.post("/pipelines/app/release", {"csrf": "abc.def"}, token=False)
    assert missing.status_code == 403 and forged.status_code == 403
    assert "security token" in missing.text
    other = Console(console.endpoint)  # a token from another browser does not fit this cookie
    try:
        stolen = other.csrf("/pipelines/app")
    finally:
        other.close()
    assert console.post("/pipelines/app/release", {"csrf": stolen}, token=False).status_code == 403
    assert len(executions(api)) == 1


def test_release_change_with_a_malformed_line_names_the_field(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    answer = console.post("/pipelines/app/release", {"sourceRevisions": "Source COMMIT_ID"})
    assert answer.status_code == 400
    assert "ValidationException" in answer.text and "sourceRevisions" in answer.text


def test_approve_with_a_comment_as_put_approval_result_does(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = latest_execution_id(api, "app")
    token = approval_token(api, "app")
    answer = console.post(
        "/pipelines/app/approve",
        {
            "stageName": "Gate",
            "actionName": "Approve",
            "token": token,
            "status": "Approved",
            "summary": "Looks good",
        },
    )
    assert answer.status_code == 303
    assert wait_status(api, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    approved = action_state(api, "app", "Gate", "Approve")
    assert approved["summary"] == "Looks good"
    assert approved["lastUpdatedBy"].endswith(":user/console")
    again = console.post(
        "/pipelines/app/approve",
        {"stageName": "Gate", "actionName": "Approve", "token": token, "status": "Rejected"},
    )
    assert again.status_code == 400
    assert "ApprovalAlreadyCompletedException" in again.text  # the API's own error


def test_reject_fails_the_execution(console: Console, api: Any, repo: Path) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = latest_execution_id(api, "app")
    token = approval_token(api, "app")
    console.post(
        "/pipelines/app/approve",
        {"stageName": "Gate", "actionName": "Approve", "token": token, "status": "Rejected"},
    )
    assert wait_status(api, "app", execution_id, "Succeeded", "Failed") == "Failed"


def test_disable_and_enable_a_transition(console: Console, api: Any, repo: Path) -> None:
    api.create_pipeline(pipeline=gated(repo))
    approval_token(api, "app")
    refused = console.post(
        "/pipelines/app/transition", {"stageName": "Deploy", "transitionType": "Inbound"}
    )
    assert refused.status_code == 400 and "reason" in refused.text  # a reason is required
    console.post(
        "/pipelines/app/transition",
        {"stageName": "Deploy", "transitionType": "Inbound", "reason": "Freeze"},
    )
    state = stage_state(api, "app", "Deploy")["inboundTransitionState"]
    assert state["enabled"] is False and state["disabledReason"] == "Freeze"
    assert "Transition disabled" in console.get("/pipelines/app").text
    console.post(
        "/pipelines/app/transition",
        {"stageName": "Deploy", "transitionType": "Inbound", "enable": "1"},
    )
    assert stage_state(api, "app", "Deploy")["inboundTransitionState"]["enabled"] is True
    missing = console.post(
        "/pipelines/app/transition",
        {"stageName": "Nowhere", "transitionType": "Inbound", "reason": "x"},
    )
    assert missing.status_code == 400 and "StageNotFoundException" in missing.text


def test_stop_and_abandon_an_execution(console: Console, api: Any, repo: Path) -> None:
    api.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Wait", "sleep 30")))
    )
    execution_id = latest_execution_id(api, "app")
    wait_for(lambda: action_state(api, "app", "Build", "Wait").get("status") == "InProgress")
    answer = console.post(
        "/pipelines/app/stop",
        {"pipelineExecutionId": execution_id, "reason": "Not now", "abandon": "1"},
    )
    assert answer.status_code == 303
    assert wait_status(api, "app", execution_id, "Stopped") == "Stopped"
    again = console.post("/pipelines/app/stop", {"pipelineExecutionId": execution_id})
    assert again.status_code == 400
    assert "PipelineExecutionNotStoppableException" in again.text


def test_retry_failed_actions_of_a_failed_stage(
    console: Console, api: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    api.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Check", f"test -e {flag}")))
    )
    execution_id = latest_execution_id(api, "app")
    assert wait_status(api, "app", execution_id, "Failed", "Succeeded") == "Failed"
    assert "Retry failed actions" in console.get("/pipelines/app").text
    flag.touch()
    answer = console.post(
        "/pipelines/app/retry",
        {"stageName": "Build", "pipelineExecutionId": execution_id, "retryMode": "FAILED_ACTIONS"},
    )
    assert answer.status_code == 303
    assert wait_status(api, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    assert execution_status(api, "app", execution_id) == "Succeeded"
    attempts = console.get(f"/pipelines/app/executions/{execution_id}").text
    assert "attempt 2" in attempts  # both attempts of the retried action are shown
    refused = console.post(
        "/pipelines/app/retry",
        {"stageName": "Build", "pipelineExecutionId": execution_id, "retryMode": "ALL_ACTIONS"},
    )
    assert refused.status_code == 400 and "StageNotRetryableException" in refused.text


def test_a_form_is_refused_in_the_api_s_words_where_the_api_refuses_it(
    console: Console, api: Any, live: Running, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    approval_token(api, "app")
    unchecked = make_client(live.endpoint, validate=False)
    with pytest.raises(ClientError) as refused_by_api:
        unchecked.disable_stage_transition(
            pipelineName="app", stageName="Deploy", transitionType="Inbound", reason="No, not now"
        )
    api_error = refused_by_api.value.response["Error"]
    assert api_error["Code"] == "ValidationException"
    answer = console.post(
        "/pipelines/app/transition",
        {"stageName": "Deploy", "transitionType": "Inbound", "reason": "No, not now"},
    )
    assert answer.status_code == 400
    shown = html.unescape(answer.text)
    assert f"<strong>ValidationException</strong>: {api_error['Message']}" in shown
    assert stage_state(api, "app", "Deploy")["inboundTransitionState"]["enabled"] is True
    too_long = console.post(
        "/pipelines/app/stop",
        {"pipelineExecutionId": latest_execution_id(api, "app"), "reason": "x" * 201},
    )
    assert too_long.status_code == 400 and "reason" in too_long.text
    assert execution_status(api, "app", latest_execution_id(api, "app")) == "InProgress"


def test_in_parallel_mode_an_approval_is_answered_on_its_execution_s_page(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo) | {"executionMode": "PARALLEL"})
    execution_id = latest_execution_id(api, "app")
    wait_for(lambda: action_state(api, "app", "Gate", "Approve").get("status") == "InProgress")
    assert "token" not in action_state(api, "app", "Gate", "Approve")  # as the API hides it
    assert 'name="token"' not in console.get("/pipelines/app").text
    page = console.get(f"/pipelines/app/executions/{execution_id}").text
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token and "Waiting for approval" in page and "Check the build" in page
    answer = console.post(
        "/pipelines/app/approve",
        {"stageName": "Gate", "actionName": "Approve", "token": token[1], "status": "Approved"},
    )
    assert answer.status_code == 303
    assert wait_status(api, "app", execution_id, "Succeeded", "Failed") == "Succeeded"


def test_rollback_form_rolls_a_stage_back_and_the_pages_show_the_rollback(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(
        pipeline=declaration("app", repo, stage("Deploy", commands("Ship", "true")))
    )
    first = latest_execution_id(api, "app")
    assert wait_status(api, "app", first, "Succeeded", "Failed") == "Succeeded"
    page = console.get("/pipelines/app").text
    forms = re.findall(
        r'<form method="post" action="/pipelines/app/rollback".*?</form>', page, re.S
    )
    assert len(forms) == 1, "only Deploy (not the source stage) can be rolled back"
    assert 'name="stageName" value="Deploy"' in forms[0]
    assert re.findall(r'<option value="([^"]+)"', forms[0]) == [first]

    answer = console.post(
        "/pipelines/app/rollback", {"stageName": "Deploy", "targetPipelineExecutionId": first}
    )
    assert answer.status_code == 303, answer.text
    (rollback,) = [e for e in executions(api) if e.get("executionType") == "ROLLBACK"]
    rollback_id = rollback["pipelineExecutionId"]
    assert rollback["trigger"]["triggerType"] == "ManualRollback"
    assert rollback["rollbackMetadata"]["rollbackTargetPipelineExecutionId"] == first
    assert rollback_id in console.get(answer.headers["location"]).text  # the notice
    assert wait_status(api, "app", rollback_id, "Succeeded", "Failed") == "Succeeded"

    target_link = f'href="/pipelines/app/executions/{first}"'
    pipeline_page = console.get("/pipelines/app").text
    deploy = pipeline_page[pipeline_page.index('id="stage-Deploy"') :]
    assert re.search(
        r'<span class="chip rollback">Rolled back</span> <small[^>]*>to <a ' + target_link, deploy
    )
    forms = re.findall(
        r'<form method="post" action="/pipelines/app/rollback".*?</form>', deploy, re.S
    )
    assert re.findall(r'<option value="([^"]+)"', forms[0]) == [first]  # not the rollback
    history = console.get("/pipelines/app/executions").text
    row = re.search(rf"<tr>\s*<th scope=\"row\"><a [^>]*{rollback_id}.*?</tr>", history, re.S)
    assert row and "chip rollback" in row[0] and "ManualRollback" in row[0]
    assert f"Deploy to <a {target_link}>" in row[0]
    execution = console.get(f"/pipelines/app/executions/{rollback_id}").text
    assert re.search(rf"Rollback</span> of stage Deploy to execution <a {target_link}>", execution)
    assert "chip rollback" not in console.get(f"/pipelines/app/executions/{first}").text
    assert "chip rollback" in console.get("/").text  # the latest execution is the rollback

    refused = console.post(
        "/pipelines/app/rollback", {"stageName": "Deploy", "targetPipelineExecutionId": rollback_id}
    )
    assert refused.status_code == 400
    assert "UnableToRollbackStageException" in refused.text and "itself a rollback" in refused.text
    missing = console.post("/pipelines/app/rollback", {"stageName": "Deploy"})
    assert missing.status_code == 400 and "ValidationException" in missing.text
    assert len(executions(api)) == 2
