"""`conveyor server` as people run it: signals, restarts, the AWS CLI against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_client
from tests.e2e.serverproc import server_process
from tests.support.declarations import pipeline
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)

AWS = str(Path(sys.executable).with_name("aws"))
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "conveyor",
    "AWS_SECRET_ACCESS_KEY": "conveyor",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_server_stops_cleanly_and_a_restart_keeps_everything(tmp_path: Path, stop: int) -> None:
    home = tmp_path / "home"
    with server_process(home) as (endpoint, process):
        client = make_client(endpoint)
        client.create_pipeline(pipeline=pipeline(), tags=[{"key": "k", "value": "v"}])
        client.update_pipeline(pipeline=pipeline())
        process.send_signal(stop)
        assert process.wait(timeout=15) == 0
    with server_process(home) as (endpoint, _):
        client = make_client(endpoint)
        assert client.get_pipeline(name="app")["pipeline"]["version"] == 2
        assert client.get_pipeline(name="app", version=1)["pipeline"]["version"] == 1
        arn = "arn:aws:codepipeline:us-east-1:000000000000:app"
        assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [
            {"key": "k", "value": "v"}
        ]


def test_aws_cli_reads_a_pipeline_back(tmp_path: Path) -> None:
    definition = tmp_path / "pipeline.json"
    definition.write_text(json.dumps({"pipeline": pipeline()}))
    with server_process(tmp_path / "home") as (endpoint, _):

        def aws(*args: str) -> dict[str, object]:
            result = subprocess.run(
                [AWS, "codepipeline", *args, "--endpoint-url", endpoint, "--output", "json"],
                env={**os.environ, **AWS_ENV},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            parsed: dict[str, object] = json.loads(result.stdout)
            return parsed

        created = aws("create-pipeline", "--cli-input-json", f"file://{definition}")
        assert created["pipeline"] == aws("get-pipeline", "--name", "app")["pipeline"]
        listed = aws("list-pipelines")
        assert [p["name"] for p in listed["pipelines"]] == ["app"]  # type: ignore[index, union-attr]
        metadata = aws("get-pipeline", "--name", "app")["metadata"]
        assert metadata["pipelineArn"] == "arn:aws:codepipeline:us-east-1:000000000000:app"  # type: ignore[index]
        missing = subprocess.run(
            [AWS, "codepipeline", "get-pipeline", "--name", "nope", "--endpoint-url", endpoint],
            env={**os.environ, **AWS_ENV},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert missing.returncode != 0
        assert "PipelineNotFoundException" in missing.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "notaport"], "notaport"),
        (["--database", "postgresql://nobody:secret@127.0.0.1:1/none"], "cannot open the database"),
        (["--database", "mysql+nodriver://x/y"], "cannot open the database"),
    ],
)
def test_server_reports_bad_settings_clearly(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conveyor", "server", "--home", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr


def test_server_logs_each_state_change_as_json(tmp_path: Path) -> None:
    """One line per execution state change and per action end, each a JSON object with the
    facts as keys; the "listening" line comes once the server listens."""
    repo = tmp_path / "repo"
    make_repo(repo)
    home = tmp_path / "home"
    with server_process(home, args=["--log-format", "json"]) as (endpoint, process):
        client = make_client(endpoint)
        client.create_pipeline(
            pipeline=declaration("app", repo, stage("Build", commands("Make", "false")))
        )
        execution_id = latest_execution_id(client, "app")
        wait_status(client, "app", execution_id, "Failed")
        port = endpoint.rpartition(":")[2]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    lines = [
        json.loads(line) for line in (tmp_path / f"server-{port}.log").read_text().splitlines()
    ]
    assert any("listening on" in line["message"] for line in lines)
    changes = [
        (line.get("stage"), line.get("action"), line["state"])
        for line in lines
        if line["logger"] == "conveyor.events"
        and line["level"] == "INFO"
        and line["execution"] == execution_id
        and line["pipeline"] == "app"
    ]
    assert changes == [
        (None, None, "STARTED"),
        ("Source", "Source", "SUCCEEDED"),
        ("Build", "Make", "FAILED"),
        (None, None, "FAILED"),
    ]
