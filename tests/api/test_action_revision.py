"""PutActionRevision through boto3 against a real local git repository, on both databases."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.server import Running
from tests.conftest import make_client
from tests.support.engine import (
    commands,
    commit,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)
from tests.support.errors import code


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path, {"version.txt": "one\n"}, "version one")
    return path


@pytest.fixture
def app(client: Any, repo: Path) -> Any:
    """A pipeline whose build reads the file the source emitted, once its first run is done."""
    build = commands("Read", "export CONTENT=$(cat version.txt)", outputVariables=["CONTENT"])
    client.create_pipeline(pipeline=declaration("app", repo, stage("Build", build)))
    first = latest_execution_id(client, "app")
    assert wait_status(client, "app", first, "Succeeded", "Failed") == "Succeeded"
    return client


def revision(revision_id: str) -> dict[str, Any]:
    return {"revisionId": revision_id, "revisionChangeId": revision_id[:12], "created": time.time()}


def put(client: Any, revision_id: str, **names: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.put_action_revision(
        pipelineName=names.get("pipeline", "app"),
        stageName=names.get("stage", "Source"),
        actionName=names.get("action", "Source"),
        actionRevision=revision(revision_id),
    )
    return answer


def outputs(client: Any, execution_id: str) -> dict[str, dict[str, str]]:
    details = client.list_action_executions(
        pipelineName="app", filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
    return {d["actionName"]: d["output"].get("outputVariables", {}) for d in details}


def test_put_action_revision_runs_exactly_the_given_commit(app: Any, repo: Path) -> None:
    old = commit(repo, {"version.txt": "two\n"}, "version two")
    commit(repo, {"version.txt": "three\n"}, "version three")  # the branch has moved on
    answer = put(app, old)
    assert answer["newRevision"] is True
    execution_id = answer["pipelineExecutionId"]
    assert wait_status(app, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    execution = app.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]
    assert execution["trigger"] == {"triggerType": "PutActionRevision", "triggerDetail": old}
    assert [r["revisionId"] for r in execution["artifactRevisions"]] == [old]
    seen = outputs(app, execution_id)
    assert seen["Source"]["CommitId"] == old
    assert seen["Read"]["CONTENT"] == "two"


def test_a_revision_already_seen_is_not_new_and_starts_nothing(app: Any, repo: Path) -> None:
    first = latest_execution_id(app, "app")
    head = outputs(app, first)["Source"]["CommitId"]
    # The revision the action emitted last.
    again = put(app, head)
    assert again["newRevision"] is False and again["pipelineExecutionId"] == first
    # A revision put before, even while its execution still runs.
    new = commit(repo, {"version.txt": "two\n"}, "version two")
    started = put(app, new)
    repeated = put(app, new)
    assert started["newRevision"] is True
    assert repeated["newRevision"] is False
    assert repeated["pipelineExecutionId"] == started["pipelineExecutionId"]
    summaries = app.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    assert [s["trigger"]["triggerType"] for s in summaries].count("PutActionRevision") == 1


@pytest.mark.parametrize(
    ("names", "error", "words"),
    [
        ({"pipeline": "nope"}, "PipelineNotFoundException", "nope"),
        ({"stage": "Nope"}, "StageNotFoundException", "Nope"),
        ({"action": "Nope"}, "ActionNotFoundException", "Nope"),
        ({"stage": "Build", "action": "Read"}, "ActionNotFoundException", "source action"),
    ],
)
def test_put_action_revision_names_what_it_cannot_find(
    app: Any, repo: Path, names: dict[str, str], error: str, words: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        put(app, "0" * 40, **names)
    assert code(excinfo) == error
    assert words in excinfo.value.response["Error"]["Message"]


def test_put_action_revision_refuses_what_is_not_a_commit(app: Any, unchecked_client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        put(app, "main")
    assert code(excinfo) == "ValidationException"
    assert "actionRevision.revisionId" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        unchecked_client.put_action_revision(
            pipelineName="app",
            stageName="Source",
            actionName="Source",
            actionRevision={"revisionId": "a" * 40},
        )
    assert code(excinfo) == "ValidationException"
    assert "actionRevision.revisionChangeId" in excinfo.value.response["Error"]["Message"]
    summaries = app.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    assert len(summaries) == 1


def test_a_commit_the_repository_does_not_have_fails_the_source(app: Any) -> None:
    answer = put(app, "0123456789" * 4)
    execution_id = answer["pipelineExecutionId"]
    assert wait_status(app, "app", execution_id, "Succeeded", "Failed") == "Failed"
    summary = app.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]
    assert summary["trigger"]["triggerType"] == "PutActionRevision"


@pytest.mark.parametrize(
    ("provider", "configuration", "folder"),
    [
        ("CodeCommit", {"RepositoryName": "website", "BranchName": "main"}, ("website",)),
        (
            "CodeStarSourceConnection",
            {
                "ConnectionArn": "arn:aws:codestar-connections:us-east-1:000000000000:connection/c",
                "FullRepositoryId": "acme/api",
                "BranchName": "main",
            },
            ("acme", "api"),
        ),
    ],
)
def test_codecommit_and_connection_sources_fetch_the_given_commit(
    client: Any,
    server: Running,
    provider: str,
    configuration: dict[str, str],
    folder: tuple[str, ...],
) -> None:
    repo = server.application.engine.settings.home.joinpath("repositories", *folder)
    old = make_repo(repo, {"version.txt": "one\n"}, "version one")
    commit(repo, {"version.txt": "two\n"}, "version two")
    source = {
        "name": "Source",
        "actionTypeId": {
            "category": "Source",
            "owner": "AWS",
            "provider": provider,
            "version": "1",
        },
        "configuration": configuration,
        "outputArtifacts": [{"name": "Src"}],
    }
    build = commands("Read", "export CONTENT=$(cat version.txt)", outputVariables=["CONTENT"])
    pipeline = declaration("app", repo, stage("Build", build))
    pipeline["stages"][0]["actions"] = [source]
    client.create_pipeline(pipeline=pipeline)
    answer = put(client, old)
    execution_id = answer["pipelineExecutionId"]
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    seen = outputs(client, execution_id)
    assert seen["Source"]["CommitId"] == old
    assert seen["Read"]["CONTENT"] == "one"


def test_the_same_revision_put_at_once_starts_one_execution(
    app: Any, repo: Path, server: Running
) -> None:
    new = commit(repo, {"version.txt": "two\n"}, "version two")
    clients = [make_client(server.endpoint) for _ in range(4)]
    with ThreadPoolExecutor(len(clients)) as pool:
        answers = list(pool.map(lambda c: put(c, new), clients))
    assert sorted(a["newRevision"] for a in answers) == [False, False, False, True]
    assert len({a["pipelineExecutionId"] for a in answers}) == 1
