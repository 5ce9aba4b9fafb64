"""ListRuleTypes: the rule types of stage conditions, with their configuration properties."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.actions.base import ProviderConfig
from conveyor.artifacts.unpacked import Unpacked
from conveyor.domain.rulecatalog import BUILTIN_RULE_TYPES
from conveyor.rules import providers


def _by_provider(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]["provider"]: t for t in answer["ruleTypes"]}


def test_list_rule_types_lists_every_rule_type(client: Any) -> None:
    listed = _by_provider(client.list_rule_types())
    assert set(listed) == {
        "CloudWatchAlarm",
        "CodeBuild",
        "Commands",
        "DeploymentWindow",
        "LambdaInvoke",
        "VariableCheck",
    }
    check = listed["VariableCheck"]
    assert check["id"] == {
        "category": "Rule",
        "owner": "AWS",
        "provider": "VariableCheck",
        "version": "1",
    }
    properties = {p["name"]: p for p in check["ruleConfigurationProperties"]}
    assert set(properties) == {"Variable", "Value", "Operator"}
    assert all(p["required"] and not p["secret"] for p in properties.values())
    assert properties["Variable"]["key"] is True
    window = {
        p["name"]: p["required"] for p in listed["DeploymentWindow"]["ruleConfigurationProperties"]
    }
    assert window == {"Cron": True, "TimeZone": False}
    alarm = {p["name"]: p for p in listed["CloudWatchAlarm"]["ruleConfigurationProperties"]}
    assert alarm["WaitTime"]["type"] == "Number" and not alarm["WaitTime"]["required"]
    assert listed["CodeBuild"]["inputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 5}
    assert listed["Commands"]["ruleConfigurationProperties"] == []


def test_list_rule_types_filters(client: Any) -> None:
    assert len(client.list_rule_types(ruleOwnerFilter="AWS")["ruleTypes"]) == 6
    assert len(client.list_rule_types(regionFilter="us-east-1")["ruleTypes"]) == 6
    assert client.list_rule_types(regionFilter="eu-west-1")["ruleTypes"] == []


def test_list_rule_types_refuses_an_unknown_owner(unchecked_client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        unchecked_client.list_rule_types(ruleOwnerFilter="Custom")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "ruleOwnerFilter" in raised.value.response["Error"]["Message"]


def test_every_listed_rule_type_runs_here(tmp_path: Any) -> None:
    built = providers(ProviderConfig(home=tmp_path), Unpacked(tmp_path / "unpacked"))
    assert {t.id for t in BUILTIN_RULE_TYPES} == set(built)
