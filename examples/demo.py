"""The demo behind ``make demo``: a real pipeline run on a Conveyor server, driven by the AWS
CLI and boto3.

It makes a git repository of the sample hello-service, starts a server on a free loopback
port with a fresh home folder, creates the pipeline in ``pipeline.json`` with the AWS CLI (which
starts its first execution), follows the execution stage by stage, approves the release when
the approval asks, and shows what the actions produced. Then it updates the pipeline and reads
both versions back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console

from conveyor.config import Settings
from conveyor.server import running

HERE = Path(__file__).parent
AWS = str(Path(sys.executable).with_name("aws"))
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
}
COLOURS = {"Succeeded": "green", "Failed": "red", "InProgress": "yellow", "Stopped": "magenta"}
console = Console(highlight=False)


def step(text: str) -> None:
    console.print(f"\n[bold cyan]▶ {text}[/]")


def aws(endpoint: str, *args: str) -> Any:
    shown = " ".join(a if len(a) < 60 else a[:57] + "..." for a in args)
    console.print(f"[dim]$ aws codepipeline {shown} --endpoint-url {endpoint}[/]")
    env = {**os.environ, **CREDENTIALS, "AWS_CONFIG_FILE": os.devnull}
    command = [AWS, "codepipeline", *args, "--endpoint-url", endpoint, "--output", "json"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout) if result.stdout.strip() else {}


def make_repository(folder: Path) -> None:
    """The sample application as a git repository with one commit on main."""
    shutil.copytree(HERE / "hello-service", folder)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Demo",
        "GIT_AUTHOR_EMAIL": "demo@conveyor.invalid",
        "GIT_COMMITTER_NAME": "Demo",
        "GIT_COMMITTER_EMAIL": "demo@conveyor.invalid",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "Greet people"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True)


def status(value: str | None) -> str:
    value = value or "-"
    return f"[{COLOURS.get(value, 'white')}]{value}[/]"


def follow(client: Any, execution_id: str, approve: bool) -> str:
    """Print each action's status as it changes; approve the release when it asks."""
    seen: dict[str, str] = {}
    while True:
        state = client.get_pipeline_state(name="hello-service")
        for stage in state["stageStates"]:
            for action in stage["actionStates"]:
                latest = action.get("latestExecution") or {}
                key = f"{stage['stageName']}/{action['actionName']}"
                if latest.get("status") and seen.get(key) != latest["status"]:
                    seen[key] = latest["status"]
                    console.print(f"  {key:<24} {status(latest['status'])}")
                    if latest["status"] == "Failed":
                        console.print(f"    [red]{latest['errorDetails']['message']}[/]")
                token = latest.get("token")
                if approve and token and latest.get("status") == "InProgress":
                    summary = "Tests passed; ship it."
                    client.put_approval_result(
                        pipelineName="hello-service",
                        stageName=stage["stageName"],
                        actionName=action["actionName"],
                        token=token,
                        result={"status": "Approved", "summary": summary},
                    )
                    console.print(f"  [bold]approved[/] with token {token[:8]}…: {summary}")
        execution = client.get_pipeline_execution(
            pipelineName="hello-service", pipelineExecutionId=execution_id
        )["pipelineExecution"]
        if execution["status"] not in ("InProgress", "Stopping"):
            return str(execution["status"])
        time.sleep(0.05)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-demo-") as scratch:
        root = Path(scratch)
        make_repository(root / "hello-service")
        release = root / "release"
        definition = json.loads((HERE / "pipeline.json").read_text())
        pipeline = definition["pipeline"]
        pipeline["stages"][0]["actions"][0]["configuration"]["RepositoryUrl"] = str(
            root / "hello-service"
        )
        pipeline["variables"][0]["defaultValue"] = str(release)
        (root / "pipeline.json").write_text(json.dumps(definition))

        with running(Settings(home=root / "home")) as server:
            endpoint = server.endpoint
            console.print(f"[bold]Conveyor[/] is serving the CodePipeline API at {endpoint}")
            client = boto3.client(
                "codepipeline",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="demo",
                aws_secret_access_key="demo",
            )

            step("Create the pipeline with the AWS CLI: it starts its first execution")
            started = time.monotonic()
            aws(endpoint, "create-pipeline", "--cli-input-json", f"file://{root / 'pipeline.json'}")
            summaries = aws(
                endpoint, "list-pipeline-executions", "--pipeline-name", "hello-service"
            )
            execution_id = summaries["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
            console.print(f"execution {execution_id}")

            step("Follow it stage by stage (the approval is answered with boto3)")
            result = follow(client, execution_id, approve=True)
            console.print(f"execution {status(result)} in {time.monotonic() - started:.2f} s")

            step("What the actions produced")
            details = client.list_action_executions(
                pipelineName="hello-service", filter={"pipelineExecutionId": execution_id}
            )["actionExecutionDetails"]
            for detail in reversed(details):
                variables = detail["output"].get("outputVariables") or {}
                shown = ", ".join(
                    f"{k}={v[:12]}" for k, v in variables.items() if k != "CommitMessage"
                )
                console.print(f"  {detail['stageName']}/{detail['actionName']}: {shown or '-'}")
            console.print(
                f"released files in {release}: {sorted(p.name for p in release.iterdir())}"
            )

            step("Update the pipeline, then read both versions back")
            changed = client.get_pipeline(name="hello-service")["pipeline"]
            changed["stages"][1]["actions"][0]["commands"].insert(0, "python3 --version")
            version = client.update_pipeline(pipeline=changed)["pipeline"]["version"]
            first = aws(
                endpoint, "get-pipeline", "--name", "hello-service", "--pipeline-version", "1"
            )
            console.print(
                f"now version {version}; version 1 still reads back: "
                f"{len(first['pipeline']['stages'])} stages"
            )

        console.print(
            "\n[bold green]Done.[/] Run your own server with [bold]make server[/] and point the "
            "AWS CLI at it:\n  aws codepipeline list-pipelines --endpoint-url http://127.0.0.1:8470"
        )
        if result != "Succeeded":
            sys.exit(1)


if __name__ == "__main__":
    main()
