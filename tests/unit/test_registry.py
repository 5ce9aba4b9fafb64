"""The registry runs exactly what the catalog says runs here, and nothing it does not."""

from __future__ import annotations

import threading
from pathlib import Path

from conveyor.actions.base import Deferred, JobContext, JobResult, ProviderConfig
from conveyor.actions.registry import AWS_SERVICES, LAMBDA, providers
from conveyor.domain.catalog import BUILTIN_ACTION_TYPES

ENDPOINTS = {
    "cloudformation": "http://127.0.0.1:1",
    "ecs": "http://127.0.0.1:1",
    "ecr": "http://127.0.0.1:1",
    "stepfunctions": "http://127.0.0.1:1",
}
APPROVAL = ("Approval", "Manual")


def test_without_settings_only_the_local_types_run(tmp_path: Path) -> None:
    built = {i for i in providers(ProviderConfig(home=tmp_path)) if i.category != "Rule"}
    local = {t.id for t in BUILTIN_ACTION_TYPES if t.local}
    # Approvals are local but make no job: nothing provides them.
    assert built == {i for i in local if (i.category, i.provider) != APPROVAL}


def test_each_setting_a_type_needs_brings_its_executor(tmp_path: Path) -> None:
    config = ProviderConfig(
        home=tmp_path,
        aws_endpoints=ENDPOINTS,
        lambda_functions={"f": {"handler": "m:f", "path": str(tmp_path)}},
    )
    built = {i for i in providers(config) if i.category != "Rule"}
    for action_type in BUILTIN_ACTION_TYPES:
        if action_type.needs:
            assert action_type.id in built, action_type.id
        elif not action_type.local:
            assert action_type.id not in built, action_type.id
    settings = {t.needs for t in BUILTIN_ACTION_TYPES if t.needs}
    assert settings == {f"aws_endpoints.{name}" for name in ENDPOINTS} | {
        "lambda_functions or aws_endpoints.lambda"
    }


def test_a_lambda_endpoint_alone_brings_the_lambda_executor(tmp_path: Path) -> None:
    config = ProviderConfig(home=tmp_path, aws_endpoints={"lambda": "http://127.0.0.1:1"})
    assert LAMBDA in providers(config)
    assert LAMBDA not in providers(ProviderConfig(home=tmp_path))


def test_every_service_a_type_needs_may_be_set() -> None:
    named = {
        part.strip().removeprefix("aws_endpoints.")
        for t in BUILTIN_ACTION_TYPES
        if t.needs
        for part in t.needs.split(" or ")
        if part.strip().startswith("aws_endpoints.")
    }
    assert named <= AWS_SERVICES
    assert {"cloudwatch", "lambda", "s3"} <= AWS_SERVICES  # rules, Lambda, large templates


def test_every_rule_type_has_a_provider(tmp_path: Path) -> None:
    built = providers(ProviderConfig(home=tmp_path))
    assert {i.provider for i in built if i.category == "Rule"} == {
        "VariableCheck",
        "Commands",
        "CodeBuild",
        "DeploymentWindow",
        "CloudWatchAlarm",
        "LambdaInvoke",
    }


def test_every_provider_is_made_when_first_asked_for(tmp_path: Path) -> None:
    config = ProviderConfig(
        home=tmp_path,
        aws_endpoints={"lambda": "http://127.0.0.1:1"},
        lambda_functions={"f": {"handler": "m:f", "path": str(tmp_path)}},
    )
    for type_id, provider in providers(config).items():
        if isinstance(provider, Deferred):
            made = provider.provider()
            assert not isinstance(made, Deferred), type_id
            assert provider.provider() is made, type_id  # made once, then kept
            assert callable(made.run), type_id


class _Counted:
    made = 0

    def __init__(self) -> None:
        type(self).made += 1

    def run(self, context: JobContext) -> JobResult:
        return JobResult(succeeded=True)


def test_two_first_jobs_at_once_make_one_provider() -> None:
    deferred = Deferred(_Counted)
    go = threading.Barrier(8)

    def first() -> None:
        go.wait()
        deferred.provider()

    threads = [threading.Thread(target=first) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _Counted.made == 1
