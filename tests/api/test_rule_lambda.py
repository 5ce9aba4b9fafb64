"""The LambdaInvoke rule: a local handler's return or exception decides it, and a function
the settings do not map is invoked through the Lambda endpoint (moto's server)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.actions.base import FailureType, ProviderConfig
from conveyor.rules.lambdainvoke import LambdaRule
from tests.support.moto import CREDENTIALS, aws_client, configure, moto_server
from tests.support.rulejobs import log_of, rule_context

FUNCTIONS = """\
import json

def healthy(event, context):
    configuration = event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
    print("checking", configuration["UserParameters"])
    return {"healthy": True, "asked": configuration["UserParameters"]}

def unhealthy(event, context):
    raise RuntimeError("the canary is down")
"""


@pytest.fixture
def local(tmp_path: Path) -> ProviderConfig:
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "checks.py").write_text(FUNCTIONS)
    return ProviderConfig(
        home=tmp_path / "home",
        lambda_functions={
            name: {"handler": f"checks:{name}", "path": str(folder)}
            for name in ("healthy", "unhealthy")
        },
    )


def test_a_function_that_returns_passes_the_rule(tmp_path: Path, local: ProviderConfig) -> None:
    context = rule_context(tmp_path, {"FunctionName": "healthy", "UserParameters": "canary"})
    result = LambdaRule(local).run(context)
    assert result.succeeded, result.message
    assert result.summary == 'Function healthy returned {"healthy": true, "asked": "canary"}'
    assert "checking canary" in log_of(context)


def test_a_function_that_raises_fails_the_rule(tmp_path: Path, local: ProviderConfig) -> None:
    result = LambdaRule(local).run(rule_context(tmp_path, {"FunctionName": "unhealthy"}))
    assert not result.succeeded
    assert result.message and "the canary is down" in result.message


def test_an_unmapped_function_without_an_endpoint(tmp_path: Path, local: ProviderConfig) -> None:
    result = LambdaRule(local).run(rule_context(tmp_path, {"FunctionName": "elsewhere"}))
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    assert result.message and "aws_endpoints.lambda" in result.message
    assert "functions: healthy, unhealthy" in result.message


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        configure(url, {"lambda": {"use_docker": False}})
        yield url


def create_function(endpoint: str, name: str) -> None:
    """A function in moto's Lambda (which runs no code: it answers with the event it got)."""
    iam = aws_client("iam", endpoint)
    try:
        role = iam.get_role(RoleName="fn-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    aws_client("lambda", endpoint).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )


def test_a_function_through_the_lambda_endpoint(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    create_function(endpoint, "remote-check")
    config = ProviderConfig(home=tmp_path, aws_endpoints={"lambda": endpoint})
    context = rule_context(tmp_path, {"FunctionName": "remote-check", "UserParameters": "x"})
    result = LambdaRule(config).run(context)
    assert result.succeeded, result.message
    assert "through the Lambda endpoint" in log_of(context)
    # moto's Lambda answers with the event it was sent: the rule's job event.
    assert result.summary and result.summary.startswith("Function remote-check returned {")
    echoed = json.loads(result.summary.removeprefix("Function remote-check returned "))
    assert echoed["CodePipeline.job"]["id"] == "job-1"
