"""What each CodePipeline operation acts on, as IAM names it, and the managed policies.

An operation's IAM action is ``codepipeline:<Operation>``; its resource is the ARN AWS uses
for it: the pipeline, the stage (``…:NAME/STAGE``) for transitions, retries, rollbacks and
condition overrides, the action (``…:NAME/STAGE/ACTION``) for approvals and revisions, the
action type (``…:actiontype:OWNER/CATEGORY/PROVIDER/VERSION``), the webhook
(``…:webhook:NAME``), the tagged resource's own ARN; ``*`` for the operations that name none.
The job operations are decided by their handlers on the job's action type, which only the
job knows (`DEFERRED`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.policy import Policy, parse_policy

SERVICE_PREFIX = "codepipeline"
DEFERRED = ""
ANY = "*"

_BY_NAME = {"DeletePipeline", "GetPipeline", "GetPipelineState", "StartPipelineExecution"}
_BY_PIPELINE_NAME = {
    "GetPipelineExecution",
    "ListActionExecutions",
    "ListDeployActionExecutionTargets",
    "ListPipelineExecutions",
    "ListRuleExecutions",
    "StopPipelineExecution",
}
_BY_DECLARATION = {"CreatePipeline", "UpdatePipeline"}
_BY_STAGE = {
    "DisableStageTransition",
    "EnableStageTransition",
    "OverrideStageCondition",
    "RetryStageExecution",
    "RollbackStage",
}
_BY_ACTION = {"PutActionRevision", "PutApprovalResult"}
_BY_TYPE = {"DeleteCustomActionType", "GetActionType", "PollForJobs", "PollForThirdPartyJobs"}
_BY_WEBHOOK_NAME = {"DeregisterWebhookWithThirdParty", "RegisterWebhookWithThirdParty"}
_BY_RESOURCE_ARN = {"ListTagsForResource", "TagResource", "UntagResource"}
_JOBS = {
    "AcknowledgeJob",
    "AcknowledgeThirdPartyJob",
    "GetJobDetails",
    "GetThirdPartyJobDetails",
    "PutJobFailureResult",
    "PutJobSuccessResult",
    "PutThirdPartyJobFailureResult",
    "PutThirdPartyJobSuccessResult",
}


def iam_action(operation: str) -> str:
    return f"{SERVICE_PREFIX}:{operation}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _type_arn(scope: Scope, spec: Any, owner: str | None = None) -> str:
    spec = spec if isinstance(spec, Mapping) else {}
    type_id = ActionTypeId(
        _text(spec.get("category")),
        owner or _text(spec.get("owner")),
        _text(spec.get("provider")),
        _text(spec.get("version")),
    )
    return scope.action_type(type_id)


def resource_of(scope: Scope, operation: str, params: Mapping[str, Any]) -> str:
    """The ARN ``operation`` acts on with input ``params`` (already validated), ``*`` when it
    names none, or `DEFERRED` when its handler decides."""
    if operation in _BY_NAME:
        return scope.pipeline(_text(params.get("name")))
    if operation in _BY_PIPELINE_NAME:
        return scope.pipeline(_text(params.get("pipelineName")))
    if operation in _BY_DECLARATION:
        declaration = params.get("pipeline")
        name = declaration.get("name") if isinstance(declaration, Mapping) else None
        return scope.pipeline(_text(name))
    if operation in _BY_STAGE:
        return scope.pipeline(
            f"{_text(params.get('pipelineName'))}/{_text(params.get('stageName'))}"
        )
    if operation in _BY_ACTION:
        path = "/".join(_text(params.get(k)) for k in ("pipelineName", "stageName", "actionName"))
        return scope.pipeline(path)
    if operation in _BY_TYPE:
        spec = params.get("actionTypeId", params)
        return _type_arn(scope, spec, "Custom" if operation == "DeleteCustomActionType" else None)
    if operation == "CreateCustomActionType":
        return _type_arn(scope, params, "Custom")
    if operation == "UpdateActionType":
        action_type = params.get("actionType")
        spec = action_type.get("id") if isinstance(action_type, Mapping) else None
        return _type_arn(scope, spec)
    if operation in ("PutWebhook",):
        webhook = params.get("webhook")
        name = webhook.get("name") if isinstance(webhook, Mapping) else None
        return scope.webhook(_text(name))
    if operation == "DeleteWebhook":
        return scope.webhook(_text(params.get("name")))
    if operation in _BY_WEBHOOK_NAME:
        return scope.webhook(_text(params.get("webhookName")))
    if operation in _BY_RESOURCE_ARN:
        return _text(params.get("resourceArn")) or ANY
    if operation in _JOBS:
        return DEFERRED
    return ANY


def codebuild_resource_of(scope: Scope, operation: str, params: Mapping[str, Any]) -> str:
    """The ARN a CodeBuild operation acts on: the project it names (the one project
    BatchGetProjects asks for, the project of the build StopBuild and RetryBuild name), ``*``
    otherwise."""
    if operation in ("CreateProject", "UpdateProject", "DeleteProject"):
        name = _text(params.get("name"))
        return name if name.startswith("arn:") else scope.codebuild_project(name)
    if operation in ("StartBuild", "ListBuildsForProject"):
        name = _text(params.get("projectName"))
        return name if name.startswith("arn:") else scope.codebuild_project(name)
    if operation in ("StopBuild", "RetryBuild") and ":" in _text(params.get("id")):
        build_id = _text(params.get("id")).rpartition(":build/")[2]
        return scope.codebuild_project(build_id.rpartition(":")[0])
    names = params.get("names") if operation == "BatchGetProjects" else None
    if isinstance(names, list) and len(names) == 1:
        name = _text(names[0])
        return name if name.startswith("arn:") else scope.codebuild_project(name)
    return ANY


def is_read_only(operation: str) -> bool:
    return operation.startswith(("Get", "List", "BatchGet"))


# The managed policies, with AWS's names and, for the codepipeline actions, AWS's documents
# (the statements about other services' actions have no meaning here and are left out).
_READ = [
    "codepipeline:GetPipeline",
    "codepipeline:GetPipelineState",
    "codepipeline:GetPipelineExecution",
    "codepipeline:ListPipelineExecutions",
    "codepipeline:ListActionExecutions",
    "codepipeline:ListActionTypes",
    "codepipeline:ListPipelines",
    "codepipeline:ListTagsForResource",
]
_APPROVE = [
    "codepipeline:GetPipeline",
    "codepipeline:GetPipelineState",
    "codepipeline:GetPipelineExecution",
    "codepipeline:ListPipelineExecutions",
    "codepipeline:ListPipelines",
    "codepipeline:PutApprovalResult",
]
_CUSTOM = [
    "codepipeline:AcknowledgeJob",
    "codepipeline:GetJobDetails",
    "codepipeline:PollForJobs",
    "codepipeline:PutJobFailureResult",
    "codepipeline:PutJobSuccessResult",
]


def _allow(actions: list[str] | str) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [statement]}


MANAGED_DOCUMENTS: Mapping[str, Mapping[str, Any]] = {
    "AWSCodePipeline_FullAccess": _allow("codepipeline:*"),
    "AWSCodePipeline_ReadOnlyAccess": _allow(_READ),
    "AWSCodePipelineApproverAccess": _allow(_APPROVE),
    "AWSCodePipelineCustomActionAccess": _allow(_CUSTOM),
}
MANAGED: Mapping[str, Policy] = {
    name: parse_policy(name, document) for name, document in MANAGED_DOCUMENTS.items()
}
