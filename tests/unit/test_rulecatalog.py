"""The rule catalog: every rule type of the reference, and the checks of a rule declaration."""

from __future__ import annotations

import pytest

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.catalog import builtin_action_type, how_it_runs_here
from conveyor.domain.rulecatalog import BUILTIN_RULE_TYPES, builtin_rule_type, rule_problems


def _rule(provider: str) -> ActionTypeId:
    return ActionTypeId("Rule", "AWS", provider, "1")


def test_the_catalog_holds_every_rule_type_of_the_reference() -> None:
    assert [t.id.provider for t in BUILTIN_RULE_TYPES] == [
        "CloudWatchAlarm",
        "CodeBuild",
        "Commands",
        "DeploymentWindow",
        "LambdaInvoke",
        "VariableCheck",
    ]
    assert {t.id.provider for t in BUILTIN_RULE_TYPES if t.skip} == {
        "LambdaInvoke",
        "VariableCheck",
    }
    for rule_type in BUILTIN_RULE_TYPES:
        assert builtin_rule_type(rule_type.id) is rule_type
        assert all(p.description and len(p.description) <= 160 for p in rule_type.properties)
        assert len(rule_type.properties) <= 10


def test_a_well_formed_rule_has_no_problems() -> None:
    check = {"Variable": "#{S.BranchName}", "Value": "main", "Operator": "EQ"}
    assert rule_problems("Main", _rule("VariableCheck"), check, skip=True) == []
    assert rule_problems("Run", _rule("Commands"), {}, inputs=1, commands=2) == []
    assert rule_problems("Window", _rule("DeploymentWindow"), {"Cron": "* * * * * ?"}) == []


@pytest.mark.parametrize(
    ("provider", "configuration", "extra", "named"),
    [
        ("Nope", {}, {}, "Provider: 'Nope'"),
        ("VariableCheck", {"Variable": "a", "Value": "b"}, {}, "Operator is required"),
        ("VariableCheck", {"Variable": "a", "Value": "b", "Operator": "GT"}, {}, "not 'GT'"),
        ("DeploymentWindow", {"Cron": "* * * * * ?", "Zone": "UTC"}, {}, "Zone is not one"),
        ("CodeBuild", {"ProjectName": "p"}, {}, "1 to 5 input artifacts, not 0"),
        ("Commands", {}, {}, "needs commands"),
        ("LambdaInvoke", {"FunctionName": "f"}, {"commands": 1}, "only a Commands rule"),
        ("CloudWatchAlarm", {"AlarmName": "a"}, {"skip": True}, "only LambdaInvoke, VariableCheck"),
    ],
)
def test_rule_problems_name_the_rule_and_the_field(
    provider: str, configuration: dict[str, str], extra: dict[str, int | bool], named: str
) -> None:
    problems = rule_problems("R1", _rule(provider), configuration, **extra)  # type: ignore[arg-type]
    assert len(problems) == 1, problems
    assert named in problems[0]
    assert "'R1'" in problems[0]


def test_how_it_runs_here() -> None:
    commands = builtin_action_type(ActionTypeId("Compute", "AWS", "Commands", "1"))
    stack = builtin_action_type(ActionTypeId("Deploy", "AWS", "CloudFormation", "1"))
    approval = builtin_action_type(ActionTypeId("Approval", "AWS", "Manual", "1"))
    assert commands and stack and approval
    assert how_it_runs_here(commands, runs_here=True, left_to_workers=False).executor == "Conveyor"
    assert how_it_runs_here(approval, runs_here=False, left_to_workers=False).executor == "Conveyor"
    unrun = how_it_runs_here(stack, runs_here=False, left_to_workers=False)
    assert (unrun.executor, unrun.job_workers_may_poll) == ("None", False)
    assert unrun.setting == "aws_endpoints.cloudformation"
    polled = how_it_runs_here(stack, runs_here=False, left_to_workers=True)
    assert (polled.executor, polled.job_workers_may_poll) == ("JobWorker", True)
