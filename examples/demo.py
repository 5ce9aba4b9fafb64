"""The demo behind ``make demo``: a Conveyor server driven by the AWS CLI and boto3.

It starts a server on a free loopback port with a fresh home folder, then creates, lists,
updates and reads back a pipeline exactly as one would against AWS CodePipeline, shows an
error the server rejects the way AWS does, and stops the server.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from rich.console import Console

from conveyor.config import Settings
from conveyor.server import running

HERE = Path(__file__).parent
AWS = str(Path(sys.executable).with_name("aws"))
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "conveyor",
    "AWS_SECRET_ACCESS_KEY": "conveyor",
    "AWS_DEFAULT_REGION": "us-east-1",
}
console = Console(highlight=False)


def step(text: str) -> None:
    console.print(f"\n[bold cyan]▶ {text}[/]")


def aws(endpoint: str, *args: str) -> Any:
    command = [AWS, "codepipeline", *args, "--endpoint-url", endpoint, "--output", "json"]
    console.print(f"[dim]$ aws codepipeline {' '.join(args)} --endpoint-url {endpoint}[/]")
    env = {**os.environ, **CREDENTIALS, "AWS_CONFIG_FILE": os.devnull}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout) if result.stdout.strip() else {}


def outline(declaration: dict[str, Any]) -> str:
    return " → ".join(
        f"{stage['name']}[{', '.join(a['name'] for a in stage['actions'])}]"
        for stage in declaration["stages"]
    )


def main() -> None:
    definition = HERE / "pipeline.json"
    with (
        tempfile.TemporaryDirectory(prefix="conveyor-demo-") as home,
        running(Settings(home=Path(home))) as server,
    ):
        endpoint = server.endpoint
        console.print(f"[bold]Conveyor[/] is serving the CodePipeline API at {endpoint}")
        client = boto3.client(
            "codepipeline",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="conveyor",
            aws_secret_access_key="conveyor",
        )

        step("Create a pipeline with the AWS CLI")
        created = aws(
            endpoint,
            "create-pipeline",
            "--cli-input-json",
            f"file://{definition}",
            "--tags",
            "key=team,value=web",
        )
        pipeline = created["pipeline"]
        console.print(
            f"created [bold]{pipeline['name']}[/] version {pipeline['version']}: "
            f"{outline(pipeline)}"
        )

        step("List pipelines")
        for summary in aws(endpoint, "list-pipelines")["pipelines"]:
            console.print(
                f"{summary['name']}  version {summary['version']}  "
                f"{summary['pipelineType']}  {summary['executionMode']}"
            )

        step("Update it with boto3: add an approval before the deploy")
        changed = copy.deepcopy(pipeline)
        changed["stages"].insert(
            2,
            {
                "name": "Approve",
                "actions": [
                    {
                        "name": "Release",
                        "actionTypeId": {
                            "category": "Approval",
                            "owner": "AWS",
                            "provider": "Manual",
                            "version": "1",
                        },
                        "configuration": {"CustomData": "Ship hello-service?"},
                    }
                ],
            },
        )
        updated = client.update_pipeline(pipeline=changed)["pipeline"]
        console.print(f"now version {updated['version']}: {outline(updated)}")

        step("Read back both versions")
        latest = aws(endpoint, "get-pipeline", "--name", "hello-service")
        first = aws(endpoint, "get-pipeline", "--name", "hello-service", "--pipeline-version", "1")
        console.print(f"version {first['pipeline']['version']}: {outline(first['pipeline'])}")
        console.print(f"version {latest['pipeline']['version']}: {outline(latest['pipeline'])}")
        console.print(f"ARN {latest['metadata']['pipelineArn']}")

        step("A broken pipeline is refused the way CodePipeline refuses it")
        broken = copy.deepcopy(changed)
        broken["name"] = "broken"
        broken["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "Missing"}]
        try:
            client.create_pipeline(pipeline=broken)
        except ClientError as error:
            console.print(
                f"[red]{error.response['Error']['Code']}[/]: {error.response['Error']['Message']}"
            )

        step("Action types Conveyor knows")
        types = client.list_action_types(actionOwnerFilter="AWS")["actionTypes"]
        console.print(", ".join(f"{t['id']['category']}/{t['id']['provider']}" for t in types))

    console.print(
        "\n[bold green]Done.[/] Run your own server with [bold]make server[/] "
        "(or [bold].venv/bin/conveyor server[/]) and point the AWS CLI at it:\n"
        "  aws codepipeline list-pipelines --endpoint-url http://127.0.0.1:8470"
    )


if __name__ == "__main__":
    main()
