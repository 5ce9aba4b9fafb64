"""Stage-condition rules: each rule type's provider, run as a job like an action.

A rule's type is ``ActionTypeId("Rule", "AWS", provider, "1")``; its provider gets the rule's
resolved configuration, commands and input artifacts in a `JobContext` and answers whether the
rule passed (`JobResult.succeeded`), with a ``summary`` for ListRuleExecutions and a
``message`` saying why it failed. A rule that has to wait (outside a deployment window, while
an alarm is watched) waits inside its job, honouring ``cancelled`` and ``time_left``. Every
rule type has its provider here; one whose service the settings do not name fails saying which
setting it needs.
"""

from __future__ import annotations

from conveyor.actions.base import Provider, ProviderConfig, deferred
from conveyor.artifacts.unpacked import Unpacked
from conveyor.domain.actiontype import ActionTypeId

__all__ = [
    "CLOUDWATCH_ALARM",
    "CODEBUILD",
    "COMMANDS",
    "DEPLOYMENT_WINDOW",
    "LAMBDA_INVOKE",
    "RULE_CATEGORY",
    "VARIABLE_CHECK",
    "providers",
    "rule_type",
]

RULE_CATEGORY = "Rule"


def rule_type(provider: str) -> ActionTypeId:
    """The type id a rule of ``provider`` runs under."""
    return ActionTypeId(RULE_CATEGORY, "AWS", provider, "1")


VARIABLE_CHECK = rule_type("VariableCheck")
COMMANDS = rule_type("Commands")
CODEBUILD = rule_type("CodeBuild")
DEPLOYMENT_WINDOW = rule_type("DeploymentWindow")
CLOUDWATCH_ALARM = rule_type("CloudWatchAlarm")
LAMBDA_INVOKE = rule_type("LambdaInvoke")


def providers(config: ProviderConfig, unpacked: Unpacked) -> dict[ActionTypeId, Provider]:
    """The provider of each rule type, each made when its first job runs."""
    return {
        VARIABLE_CHECK: deferred("conveyor.rules.variablecheck", "VariableCheck"),
        COMMANDS: deferred("conveyor.rules.commands", "CommandsRule", config, unpacked),
        CODEBUILD: deferred("conveyor.rules.codebuild", "CodeBuildRule", config, unpacked),
        DEPLOYMENT_WINDOW: deferred("conveyor.rules.deploymentwindow", "DeploymentWindow"),
        CLOUDWATCH_ALARM: deferred("conveyor.rules.cloudwatchalarm", "CloudWatchAlarm", config),
        LAMBDA_INVOKE: deferred("conveyor.rules.lambdainvoke", "LambdaRule", config),
    }
