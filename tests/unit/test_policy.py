"""The IAM policy evaluator and reader, and the resource each operation acts on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from conveyor.domain.access import DEFERRED, MANAGED, resource_of
from conveyor.domain.arn import Scope
from conveyor.domain.policy import Decision, PolicyError, evaluate, parse_policy

SCOPE = Scope("us-east-1", "111122223333")
PIPE = "arn:aws:codepipeline:us-east-1:111122223333:app"


def policy(*statements: dict[str, Any]) -> Any:
    return parse_policy("test", {"Version": "2012-10-17", "Statement": list(statements)})


def no_facts(_: str) -> None:
    return None


def facts(**values: str | Sequence[str]) -> Any:
    table = {k.replace("_", ":", 1).lower(): v for k, v in values.items()}
    return table.get


def decide(
    policies: Sequence[Any], action: str, resource: str = PIPE, given: Any = no_facts
) -> str:
    return evaluate(policies, action, resource, given)


def test_nothing_is_allowed_by_default() -> None:
    assert decide([], "codepipeline:GetPipeline") == Decision.IMPLICIT_DENY
    only_get = policy({"Effect": "Allow", "Action": "codepipeline:GetPipeline", "Resource": "*"})
    assert decide([only_get], "codepipeline:DeletePipeline") == Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    full = MANAGED["AWSCodePipeline_FullAccess"]
    deny = policy(
        {"Effect": "Deny", "Action": "codepipeline:*StageTransition", "Resource": f"{PIPE}/Prod"}
    )
    assert decide([full, deny], "codepipeline:DisableStageTransition", f"{PIPE}/Prod") == (
        Decision.EXPLICIT_DENY
    )
    assert decide([deny, full], "codepipeline:DisableStageTransition", f"{PIPE}/Test") == (
        Decision.ALLOWED
    )


def test_actions_match_wildcards_without_regard_to_case_and_resources_with_it() -> None:
    allow = policy(
        {"Effect": "Allow", "Action": "CodePipeline:Get*", "Resource": f"{PIPE[:-3]}a?p"}
    )
    assert decide([allow], "codepipeline:GetPipelineState") == Decision.ALLOWED
    assert decide([allow], "codepipeline:ListPipelines") == Decision.IMPLICIT_DENY
    assert decide([allow], "codepipeline:GetPipeline", PIPE.replace("app", "APP")) == (
        Decision.IMPLICIT_DENY
    )
    assert decide([allow], "codepipeline:GetPipeline", f"{PIPE}/Stage") == Decision.IMPLICIT_DENY


def test_not_action_and_not_resource_match_everything_else() -> None:
    everything_but_delete = policy(
        {"Effect": "Allow", "NotAction": "codepipeline:Delete*", "NotResource": f"{PIPE}-secret"}
    )
    assert decide([everything_but_delete], "codepipeline:StartPipelineExecution") == "allowed"
    assert decide([everything_but_delete], "codepipeline:DeletePipeline") == "implicit"
    assert decide([everything_but_delete], "codepipeline:GetPipeline", f"{PIPE}-secret") == (
        "implicit"
    )


@pytest.mark.parametrize(
    ("operator", "key", "value", "given", "expected"),
    [
        ("StringEquals", "aws:username", "alice", {"aws_username": "alice"}, "allowed"),
        ("StringEquals", "aws:username", "alice", {"aws_username": "Alice"}, "implicit"),
        ("StringNotEquals", "aws:username", "bob", {"aws_username": "alice"}, "allowed"),
        ("StringNotEquals", "aws:username", "bob", {}, "allowed"),
        ("StringEqualsIgnoreCase", "aws:username", "ALICE", {"aws_username": "alice"}, "allowed"),
        (
            "StringLike",
            "aws:ResourceTag/team",
            "plat*",
            {"aws_resourcetag/team": "platform"},
            "allowed",
        ),
        ("StringLike", "aws:ResourceTag/team", "plat*", {}, "implicit"),
        ("StringNotLike", "aws:username", "adm*", {"aws_username": "admin"}, "implicit"),
        (
            "ArnLike",
            "aws:PrincipalArn",
            "arn:aws:iam::*:user/a*",
            {"aws_principalarn": "arn:aws:iam::1:user/al"},
            "allowed",
        ),
        (
            "ArnEquals",
            "aws:PrincipalArn",
            "arn:aws:iam::1:user/al",
            {"aws_principalarn": "arn:aws:iam::1:user/bo"},
            "implicit",
        ),
        (
            "ArnNotLike",
            "aws:PrincipalArn",
            "arn:*:user/bo",
            {"aws_principalarn": "arn:aws:iam::1:user/al"},
            "allowed",
        ),
        ("Bool", "aws:SecureTransport", "false", {"aws_securetransport": "false"}, "allowed"),
        ("Bool", "aws:SecureTransport", "true", {"aws_securetransport": "false"}, "implicit"),
        ("IpAddress", "aws:SourceIp", "10.0.0.0/8", {"aws_sourceip": "10.1.2.3"}, "allowed"),
        ("IpAddress", "aws:SourceIp", "10.0.0.0/8", {"aws_sourceip": "127.0.0.1"}, "implicit"),
        ("IpAddress", "aws:SourceIp", "2001:db8::/32", {"aws_sourceip": "2001:db8::1"}, "allowed"),
        ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", {"aws_sourceip": "127.0.0.1"}, "allowed"),
    ],
)
def test_condition_operators(
    operator: str, key: str, value: str, given: dict[str, str], expected: str
) -> None:
    allow = policy(
        {
            "Effect": "Allow",
            "Action": "codepipeline:*",
            "Resource": "*",
            "Condition": {operator: {key: value}},
        }
    )
    assert decide([allow], "codepipeline:GetPipeline", given=facts(**given)) == expected


def test_values_of_a_key_are_alternatives_and_keys_must_all_match() -> None:
    allow = policy(
        {
            "Effect": "Allow",
            "Action": "codepipeline:*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:username": ["alice", "bob"]},
                "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
            },
        }
    )
    both = facts(aws_username="bob", aws_sourceip="192.168.1.1")
    assert decide([allow], "codepipeline:GetPipeline", given=both) == "allowed"
    wrong_ip = facts(aws_username="bob", aws_sourceip="127.0.0.1")
    assert decide([allow], "codepipeline:GetPipeline", given=wrong_ip) == "implicit"


def test_a_deny_with_a_condition_only_denies_when_it_holds() -> None:
    full = MANAGED["AWSCodePipeline_FullAccess"]
    outside = policy(
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
        }
    )
    local = facts(aws_sourceip="127.0.0.1")
    remote = facts(aws_sourceip="203.0.113.9")
    assert decide([full, outside], "codepipeline:GetPipeline", given=local) == "allowed"
    assert decide([full, outside], "codepipeline:GetPipeline", given=remote) == "explicit"


def test_managed_policies_mean_what_aws_means() -> None:
    read = [MANAGED["AWSCodePipeline_ReadOnlyAccess"]]
    assert decide(read, "codepipeline:GetPipelineState") == "allowed"
    assert decide(read, "codepipeline:StartPipelineExecution") == "implicit"
    approve = [MANAGED["AWSCodePipelineApproverAccess"]]
    assert decide(approve, "codepipeline:PutApprovalResult", f"{PIPE}/Gate/Approve") == "allowed"
    assert decide(approve, "codepipeline:RetryStageExecution", f"{PIPE}/Gate") == "implicit"
    worker = [MANAGED["AWSCodePipelineCustomActionAccess"]]
    assert decide(worker, "codepipeline:PollForJobs", "*") == "allowed"
    assert decide(worker, "codepipeline:GetPipeline") == "implicit"
    assert decide([MANAGED["AWSCodePipeline_FullAccess"]], "codepipeline:DeletePipeline") == (
        "allowed"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "policy test: not valid JSON (line 1, column 2)"),
        ({"Statement": []}, "policy test: Statement must be an object or a non-empty list"),
        ({"Version": "2020-01-01", "Statement": {}}, "Version must be 2012-10-17"),
        ({"Version": "2012-10-17"}, "the Statement field is missing"),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "codepipeline:*", "Resource": "*"},
                    {"Sid": "Two", "Effect": "Permit", "Action": "*", "Resource": "*"},
                ]
            },
            "policy test, statement 2 (Two): Effect must be Allow or Deny, not 'Permit'",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "x:y", "Resource": "*"}},
            "statement 1: give exactly one of Action and NotAction",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": "*"}},
            "statement 1: give exactly one of Resource and NotResource",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": "GetPipeline", "Resource": "*"}},
            "statement 1: Action 'GetPipeline' is not of the form service:Operation",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}},
            "statement 1: Action must be a string or a non-empty list of strings",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}},
            "statement 1: Principal has no place in an identity-based policy",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Actions": "*"}},
            "statement 1: unknown field 'Actions'",
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringSortOf": {"a": "b"}},
                }
            },
            "statement 1: Condition operator 'StringSortOf' is not one of",
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"IpAddress": {"aws:SourceIp": "ten"}},
                }
            },
            "statement 1: Condition IpAddress aws:SourceIp: 'ten' is not an IP address or range",
        ),
    ],
)
def test_a_policy_with_a_mistake_is_refused_naming_statement_and_field(
    document: Any, message: str
) -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy("test", document)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("operation", "params", "resource"),
    [
        ("GetPipeline", {"name": "app"}, PIPE),
        ("CreatePipeline", {"pipeline": {"name": "app"}}, PIPE),
        ("ListPipelineExecutions", {"pipelineName": "app"}, PIPE),
        ("DisableStageTransition", {"pipelineName": "app", "stageName": "Prod"}, f"{PIPE}/Prod"),
        ("RetryStageExecution", {"pipelineName": "app", "stageName": "Prod"}, f"{PIPE}/Prod"),
        (
            "PutApprovalResult",
            {"pipelineName": "app", "stageName": "Gate", "actionName": "Approve"},
            f"{PIPE}/Gate/Approve",
        ),
        (
            "PollForJobs",
            {
                "actionTypeId": {
                    "category": "Deploy",
                    "owner": "Custom",
                    "provider": "Rollout",
                    "version": "1",
                }
            },
            "arn:aws:codepipeline:us-east-1:111122223333:actiontype:Custom/Deploy/Rollout/1",
        ),
        (
            "CreateCustomActionType",
            {"category": "Build", "provider": "Mine", "version": "2"},
            "arn:aws:codepipeline:us-east-1:111122223333:actiontype:Custom/Build/Mine/2",
        ),
        (
            "PutWebhook",
            {"webhook": {"name": "hook"}},
            "arn:aws:codepipeline:us-east-1:111122223333:webhook:hook",
        ),
        (
            "DeleteWebhook",
            {"name": "hook"},
            "arn:aws:codepipeline:us-east-1:111122223333:webhook:hook",
        ),
        ("TagResource", {"resourceArn": PIPE}, PIPE),
        ("ListPipelines", {}, "*"),
        ("AcknowledgeJob", {"jobId": "x"}, DEFERRED),
    ],
)
def test_each_operation_acts_on_the_arn_aws_uses(
    operation: str, params: dict[str, Any], resource: str
) -> None:
    assert resource_of(SCOPE, operation, params) == resource
