"""Which provider does the work of each built-in action type.

`providers` builds, from the installation's settings, the provider of every action type
Conveyor runs itself: the local ones always, those that call an AWS service once
``aws_endpoints`` names it, and the stage-condition rules (`conveyor.rules`), which run as jobs
too. Other types (custom, third-party, built-in types with no executor here) are served by job
workers.
"""

from __future__ import annotations

from conveyor.actions.base import Provider, ProviderConfig, deferred
from conveyor.artifacts.unpacked import Unpacked
from conveyor.domain.actiontype import ActionTypeId
from conveyor.rules import providers as rule_providers

__all__ = [
    "AWS_SERVICES",
    "CLOUDFORMATION",
    "CODEBUILD",
    "CODEBUILD_TEST",
    "CODECOMMIT_SOURCE",
    "COMMANDS",
    "CONNECTION_SOURCE",
    "ECR_SOURCE",
    "ECS_DEPLOY",
    "GITHUB_SOURCE",
    "GIT_SOURCE",
    "LAMBDA",
    "S3_DEPLOY",
    "S3_SOURCE",
    "STEP_FUNCTIONS",
    "providers",
]

GIT_SOURCE = ActionTypeId("Source", "AWS", "Git", "1")
CODECOMMIT_SOURCE = ActionTypeId("Source", "AWS", "CodeCommit", "1")
CONNECTION_SOURCE = ActionTypeId("Source", "AWS", "CodeStarSourceConnection", "1")
S3_SOURCE = ActionTypeId("Source", "AWS", "S3", "1")
COMMANDS = ActionTypeId("Compute", "AWS", "Commands", "1")
CODEBUILD = ActionTypeId("Build", "AWS", "CodeBuild", "1")
CODEBUILD_TEST = ActionTypeId("Test", "AWS", "CodeBuild", "1")
S3_DEPLOY = ActionTypeId("Deploy", "AWS", "S3", "1")
CLOUDFORMATION = ActionTypeId("Deploy", "AWS", "CloudFormation", "1")
GITHUB_SOURCE = ActionTypeId("Source", "ThirdParty", "GitHub", "1")
LAMBDA = ActionTypeId("Invoke", "AWS", "Lambda", "1")
ECS_DEPLOY = ActionTypeId("Deploy", "AWS", "ECS", "1")
STEP_FUNCTIONS = ActionTypeId("Invoke", "AWS", "StepFunctions", "1")
ECR_SOURCE = ActionTypeId("Source", "AWS", "ECR", "1")

# The services that ``aws_endpoints`` may name: those some executor or rule calls.
# The AWS services Conveyor calls: those of the action types and rules above, and SNS, where
# notifications and approval notices are published.
AWS_SERVICES = frozenset(
    {"cloudformation", "ecs", "stepfunctions", "ecr", "s3", "lambda", "cloudwatch", "sns"}
)


def providers(config: ProviderConfig) -> dict[ActionTypeId, Provider]:
    """The provider of each built-in action type this installation runs; those that read
    input artifacts share one set of unpacked artifacts under ``home/unpacked``, where the
    Git sources leave the trees they check out. Each is
    made, its module imported, when its first job runs (`Deferred`)."""
    unpacked = Unpacked(config.home / "unpacked", max_bytes=config.max_artifact_bytes)
    codebuild = deferred("conveyor.actions.codebuild", "CodeBuild", config, unpacked)
    sources = "conveyor.actions.sources"
    built: dict[ActionTypeId, Provider] = {
        GIT_SOURCE: deferred("conveyor.actions.git", "GitSource", unpacked),
        CODEBUILD: codebuild,
        CODEBUILD_TEST: codebuild,
        CODECOMMIT_SOURCE: deferred(sources, "CodeCommitSource", config, unpacked),
        CONNECTION_SOURCE: deferred(sources, "ConnectionSource", config, unpacked),
        GITHUB_SOURCE: deferred(sources, "GitHubSource", config, unpacked),
        S3_SOURCE: deferred(sources, "S3Source", config),
        COMMANDS: deferred("conveyor.actions.commands", "Commands", config, unpacked),
        S3_DEPLOY: deferred("conveyor.actions.s3deploy", "S3Deploy", config, unpacked),
    }
    endpoints = config.aws_endpoints
    if "cloudformation" in endpoints:
        from conveyor.actions.cloudformation import (
            CloudFormationDeploy,
        )  # here: boto3 is slow to import

        built[CLOUDFORMATION] = CloudFormationDeploy(config, unpacked)
    if "ecs" in endpoints:
        from conveyor.actions.ecsdeploy import EcsDeploy  # here: boto3 is slow to import

        built[ECS_DEPLOY] = EcsDeploy(config, unpacked)
    if "stepfunctions" in endpoints:
        from conveyor.actions.stepfunctions import StepFunctionsInvoke  # here: boto3

        built[STEP_FUNCTIONS] = StepFunctionsInvoke(config, unpacked)
    if "ecr" in endpoints:
        from conveyor.actions.ecrsource import EcrSource  # here: boto3 is slow to import

        built[ECR_SOURCE] = EcrSource(config)
    if config.lambda_functions or "lambda" in endpoints:
        built[LAMBDA] = deferred("conveyor.actions.lambdainvoke", "LambdaInvoke", config)
    built.update(rule_providers(config, unpacked))
    return built
