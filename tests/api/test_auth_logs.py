"""Action logs with `auth: required`: signed requests only, from callers who may list the
pipeline's action executions; `conveyor logs` signs with the user's key."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.config import Settings
from conveyor.server import Running, running
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import (
    action_state,
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, auth="required")) as live:
        yield live


def _get(request: urllib.request.Request) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _signed(url: str, key: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    from conveyor.cli.remote import signed_get

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key[1])
    return signed_get(url)


def test_logs_answer_signed_callers_who_may_read_them(
    secured: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repo(tmp_path / "repo")
    admin_key = make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    admin = signed_client(secured, admin_key)
    admin.create_pipeline(
        pipeline=declaration(
            "app", tmp_path / "repo", stage("Build", commands("Run", "echo hello-from-the-log"))
        )
    )
    execution = latest_execution_id(admin, "app")
    assert wait_status(admin, "app", execution, "Succeeded", "Failed") == "Succeeded"
    url = action_state(admin, "app", "Build", "Run")["externalExecutionUrl"]
    status, text = _get(urllib.request.Request(url))
    assert status == 403 and "MissingAuthenticationTokenException" in text
    reader = make_user(secured, "reader", managed=["AWSCodePipeline_ReadOnlyAccess"])
    status, text = _get(_signed(url, reader, monkeypatch))
    assert (status, "hello-from-the-log" in text) == (200, True)
    other = make_user(secured, "other", policies=[allow("codepipeline:GetPipeline")])
    status, text = _get(_signed(url, other, monkeypatch))
    assert status == 400 and "not authorized to perform: codepipeline:ListActionExecutions" in text
    env = {"AWS_ACCESS_KEY_ID": reader[0], "AWS_SECRET_ACCESS_KEY": reader[1]}
    shown = CliRunner(env=env).invoke(
        cli, ["logs", "app", "Build", "Run", "--endpoint", secured.endpoint]
    )
    assert shown.exit_code == 0, shown.output
    assert "hello-from-the-log" in shown.output
