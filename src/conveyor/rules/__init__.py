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

from conveyor.actions.base import Provider, ProviderConfig
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
    """The provider of each rule type."""
    from conveyor.rules.cloudwatchalarm import CloudWatchAlarm
    from conveyor.rules.codebuild import CodeBuildRule
    from conveyor.rules.commands import CommandsRule
    from conveyor.rules.deploymentwindow import DeploymentWindow
    from conveyor.rules.lambdainvoke import LambdaRule
    from conveyor.rules.variablecheck import VariableCheck

    return {
        VARIABLE_CHECK: VariableCheck(),
        COMMANDS: CommandsRule(config, unpacked),
        CODEBUILD: CodeBuildRule(config, unpacked),
        DEPLOYMENT_WINDOW: DeploymentWindow(),
        CLOUDWATCH_ALARM: CloudWatchAlarm(config),
        LAMBDA_INVOKE: LambdaRule(config),
    }
