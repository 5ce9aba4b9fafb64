"""Building and reading CodePipeline ARNs; the only place that knows their layout.

Pipelines are ``arn:aws:codepipeline:{region}:{account}:{name}``, custom action types
``…:actiontype:{Owner}/{Category}/{Provider}/{Version}`` and webhooks ``…:webhook:{name}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.errors import InvalidArnException

_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[\w]+)*):codepipeline:(?P<region>[^:]+):(?P<account>[0-9]{12}):"
    r"(?P<resource>.+)"
)
_NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}")
_TOKEN = re.compile(r"[0-9A-Za-z_-]+")


class ResourceKind(StrEnum):
    PIPELINE = "pipeline"
    ACTION_TYPE = "actiontype"
    WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where resources live: the partition, Region and account every ARN carries."""

    region: str
    account: str
    partition: str = "aws"

    def prefix(self) -> str:
        return f"arn:{self.partition}:codepipeline:{self.region}:{self.account}"

    def pipeline(self, name: str) -> str:
        return f"{self.prefix()}:{name}"

    def webhook(self, name: str) -> str:
        return f"{self.prefix()}:webhook:{name}"

    def codebuild_project(self, name: str) -> str:
        """A CodeBuild project's ARN, ``arn:aws:codebuild:{region}:{account}:project/{name}``."""
        return f"arn:{self.partition}:codebuild:{self.region}:{self.account}:project/{name}"

    def action_type(self, type_id: ActionTypeId) -> str:
        t = type_id
        return f"{self.prefix()}:actiontype:{t.owner}/{t.category}/{t.provider}/{t.version}"


@dataclass(frozen=True, slots=True)
class ResourceArn:
    """A parsed taggable resource ARN."""

    scope: Scope
    kind: ResourceKind
    name: str
    action_type: ActionTypeId | None = None


def parse_resource_arn(arn: str) -> ResourceArn:
    """Read a pipeline, action-type or webhook ARN, or raise `InvalidArnException`."""
    match = _ARN.fullmatch(arn)
    if match is None:
        raise InvalidArnException(f"The ARN '{arn}' is not a CodePipeline resource ARN.")
    scope = Scope(match["region"], match["account"], match["partition"])
    resource = match["resource"]
    if resource.startswith("webhook:"):
        name = resource.removeprefix("webhook:")
        if _NAME.fullmatch(name):
            return ResourceArn(scope, ResourceKind.WEBHOOK, name)
    elif resource.startswith("actiontype:"):
        parts = resource.removeprefix("actiontype:").split("/")
        if len(parts) == 4 and all(_TOKEN.fullmatch(p) for p in parts):
            owner, category, provider, version = parts
            type_id = ActionTypeId(category, owner, provider, version)
            return ResourceArn(scope, ResourceKind.ACTION_TYPE, str(type_id), type_id)
    elif _NAME.fullmatch(resource):
        return ResourceArn(scope, ResourceKind.PIPELINE, resource)
    raise InvalidArnException(f"The ARN '{arn}' does not name a pipeline, action type or webhook.")
