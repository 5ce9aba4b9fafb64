"""Helpers for tests that run pipelines: git repositories, declarations, waiting for states."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.declarations import ROLE

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Conveyor Test",
    "GIT_AUTHOR_EMAIL": "test@conveyor.invalid",
    "GIT_COMMITTER_NAME": "Conveyor Test",
    "GIT_COMMITTER_EMAIL": "test@conveyor.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None, message: str = "first") -> str:
    """A git repository on branch main with one commit of ``files``; the commit id."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return commit(path, files or {"README.md": "hello\n"}, message)


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def git_source(
    url: Path | str, output: str = "Src", namespace: str | None = "SRC"
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": str(url), "BranchName": "main"},
        "outputArtifacts": [{"name": output}],
    }
    if namespace:
        action["namespace"] = namespace
    return action


def commands(
    name: str, *lines: str, run_order: int = 1, inputs: tuple[str, ...] = ("Src",), **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {
            "category": "Compute",
            "owner": "AWS",
            "provider": "Commands",
            "version": "1",
        },
        "commands": list(lines),
        "inputArtifacts": [{"name": n} for n in inputs],
        "runOrder": run_order,
        **extra,
    }


def approval(name: str = "Approve", **configuration: str) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {
            "category": "Approval",
            "owner": "AWS",
            "provider": "Manual",
            "version": "1",
        },
        "configuration": configuration,
    }


def declaration(name: str, repo: Path, *stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    result = {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [{"name": "Source", "actions": [git_source(repo)]}, *stages],
    }
    result.update(extra)
    return result


def stage(name: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "actions": list(actions)}


VAULT = {"category": "Deploy", "owner": "Custom", "provider": "Vault", "version": "1"}


def vault_pipeline(client: Any, repo: Path, api_key: str) -> dict[str, Any]:
    """The custom type ``Vault`` (``Target``, and ``ApiKey`` marked secret), and the pipeline
    ``app`` whose Deploy stage's ``Push`` action is one with that ``ApiKey``; CreatePipeline's
    answer."""
    client.create_custom_action_type(
        category="Deploy",
        provider="Vault",
        version="1",
        configurationProperties=[
            {"name": "Target", "required": True, "key": True, "secret": False},
            {"name": "ApiKey", "required": True, "key": False, "secret": True},
        ],
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    make_repo(repo)
    push = {
        "name": "Push",
        "actionTypeId": VAULT,
        "configuration": {"Target": "prod", "ApiKey": api_key},
        "inputArtifacts": [{"name": "Src"}],
    }
    created: dict[str, Any] = client.create_pipeline(
        pipeline=declaration("app", repo, stage("Deploy", push))
    )
    return created


# Between two looks, a waiting test sleeps from the first to the last, growing by the factor:
# most checks are API calls, and a test that asks every 20 ms takes the processor from the
# server whose work it waits for.
LOOK_AGAIN = (0.005, 1.5, 0.1)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    pause, factor, longest = LOOK_AGAIN
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(pause)
        pause = min(pause * factor, longest)


def execution_status(client: Any, pipeline: str, execution_id: str) -> str:
    response = client.get_pipeline_execution(
        pipelineName=pipeline, pipelineExecutionId=execution_id
    )
    status: str = response["pipelineExecution"]["status"]
    return status


def wait_status(
    client: Any, pipeline: str, execution_id: str, *statuses: str, timeout: float = 20.0
) -> str:
    return str(
        wait_for(
            lambda: (s := execution_status(client, pipeline, execution_id)) in statuses and s,
            timeout,
            f"execution {execution_id} to be {'/'.join(statuses)}",
        )
    )


def latest_execution_id(client: Any, pipeline: str) -> str:
    summaries = client.list_pipeline_executions(pipelineName=pipeline)["pipelineExecutionSummaries"]
    value: str = summaries[0]["pipelineExecutionId"]
    return value


def action_state(client: Any, pipeline: str, stage_name: str, action: str) -> dict[str, Any]:
    for stage_state in client.get_pipeline_state(name=pipeline)["stageStates"]:
        if stage_state["stageName"] == stage_name:
            for state in stage_state["actionStates"]:
                if state["actionName"] == action:
                    return dict(state.get("latestExecution") or {})
    raise AssertionError(f"no action {stage_name}/{action}")


def stage_state(client: Any, pipeline: str, stage_name: str) -> dict[str, Any]:
    for state in client.get_pipeline_state(name=pipeline)["stageStates"]:
        if state["stageName"] == stage_name:
            return dict(state)
    raise AssertionError(f"no stage {stage_name}")


def approval_token(
    client: Any, pipeline: str, stage_name: str = "Gate", action: str = "Approve"
) -> str:
    return str(
        wait_for(
            lambda: action_state(client, pipeline, stage_name, action).get("token"),
            what="an approval token",
        )
    )
