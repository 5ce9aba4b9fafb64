"""The built-in action types Conveyor ships with, as plain data.

Each entry states what a pipeline action of that type may be configured with (which properties
are required, which identify the resource the action works on), how many input and output
artifacts it takes, and how long one job of it may run. The AWS-named types follow the
CodePipeline action structure reference; ``Source/Git`` is Conveyor's own. Nothing here
performs I/O: engines and the API read this table, and custom types are kept elsewhere.
"""

from __future__ import annotations

from conveyor.domain.actiontype import (
    ActionCategory,
    ActionOwner,
    ActionType,
    ActionTypeId,
    ArtifactBounds,
    ConfigurationProperty,
    PropertyType,
)

__all__ = ["BUILTIN_ACTION_TYPES", "builtin_action_type"]

_VERSION = "1"
_HOUR = 60 * 60

# Default job timeouts, in seconds (CodePipeline quotas; Commands is bound by its build limit).
_DEFAULT_TIMEOUT = _HOUR
_S3_DEPLOY_TIMEOUT = 90 * 60
_MANUAL_APPROVAL_TIMEOUT = 7 * 24 * _HOUR
_COMMANDS_TIMEOUT = 55 * 60

_STRING = PropertyType.STRING
_BOOLEAN = PropertyType.BOOLEAN


def _aws_id(category: ActionCategory, provider: str) -> ActionTypeId:
    return ActionTypeId(
        category=category.value, owner=ActionOwner.AWS.value, provider=provider, version=_VERSION
    )


def _bounds(minimum: int, maximum: int | None = None) -> ArtifactBounds:
    return ArtifactBounds(minimum=minimum, maximum=minimum if maximum is None else maximum)


_CODEBUILD_PROPERTIES: tuple[ConfigurationProperty, ...] = (
    ConfigurationProperty(
        name="ProjectName",
        required=True,
        key=True,
        type=_STRING,
        description="Name of the build project that runs the job.",
    ),
    ConfigurationProperty(
        name="PrimarySource",
        required=False,
        type=_STRING,
        description=(
            "Input artifact whose directory holds the buildspec and is the working directory. "
            "Needed when the action has more than one input."
        ),
    ),
    ConfigurationProperty(
        name="BatchEnabled",
        required=False,
        type=_BOOLEAN,
        description="Run the job as a batch of several builds in one execution.",
    ),
    ConfigurationProperty(
        name="BuildspecOverride",
        required=False,
        type=_STRING,
        description=(
            "Buildspec for this build only, replacing the project's: inline YAML, a path under "
            "the primary source, or an S3 object ARN."
        ),
    ),
    ConfigurationProperty(
        name="CombineArtifacts",
        required=False,
        type=_BOOLEAN,
        description="Merge the artifacts of every build in a batch into one. Needs BatchEnabled.",
    ),
    ConfigurationProperty(
        name="EnvironmentVariables",
        required=False,
        type=_STRING,
        description=(
            "JSON list of {name, value, type} objects; type is PLAINTEXT (default), "
            "PARAMETER_STORE or SECRETS_MANAGER."
        ),
    ),
    ConfigurationProperty(
        name="BuildSpec",
        required=False,
        type=_STRING,
        description=(
            "Conveyor extension: path of a buildspec file in the primary source, or inline "
            "buildspec YAML, used when no project buildspec applies."
        ),
    ),
)

_CODEBUILD_INPUTS = _bounds(1, 5)
_CODEBUILD_OUTPUTS = _bounds(0, 5)


BUILTIN_ACTION_TYPES: tuple[ActionType, ...] = (
    ActionType(
        id=_aws_id(ActionCategory.APPROVAL, "Manual"),
        input_artifacts=_bounds(0),
        output_artifacts=_bounds(0),
        properties=(
            ConfigurationProperty(
                name="NotificationArn",
                required=False,
                type=_STRING,
                description="Topic told when the action starts waiting for a decision.",
            ),
            ConfigurationProperty(
                name="CustomData",
                required=False,
                type=_STRING,
                description="Free text shown to reviewers alongside the approval request.",
            ),
            ConfigurationProperty(
                name="ExternalEntityLink",
                required=False,
                type=_STRING,
                description="URL of something reviewers should look at before deciding.",
            ),
        ),
        description="Pause the pipeline until someone approves or rejects.",
        job_timeout=_MANUAL_APPROVAL_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.BUILD, "CodeBuild"),
        input_artifacts=_CODEBUILD_INPUTS,
        output_artifacts=_CODEBUILD_OUTPUTS,
        properties=_CODEBUILD_PROPERTIES,
        description="Run a build from a buildspec over the input artifacts.",
        job_timeout=_DEFAULT_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.COMPUTE, "Commands"),
        input_artifacts=_bounds(1, 10),
        output_artifacts=_bounds(0, 1),
        properties=(
            ConfigurationProperty(
                name="EnvironmentType",
                required=False,
                type=_STRING,
                description=(
                    "Build environment image: LINUX_CONTAINER (default) or "
                    "WINDOWS_SERVER_2022_CONTAINER."
                ),
            ),
            ConfigurationProperty(
                name="ComputeType",
                required=False,
                type=_STRING,
                description=(
                    "Machine size: BUILD_GENERAL1_SMALL (default), BUILD_GENERAL1_MEDIUM or "
                    "BUILD_GENERAL1_LARGE."
                ),
            ),
            ConfigurationProperty(
                name="VpcId",
                required=False,
                type=_STRING,
                description="VPC to run in when the commands must reach private resources.",
            ),
            ConfigurationProperty(
                name="Subnets",
                required=False,
                type=_STRING,
                description="Subnets of that VPC to attach the build to.",
            ),
            ConfigurationProperty(
                name="SecurityGroupIds",
                required=False,
                type=_STRING,
                description="Security groups of that VPC to attach the build to.",
            ),
        ),
        description=(
            "Run the action's own shell commands (set outside the configuration) with no "
            "build project."
        ),
        job_timeout=_COMMANDS_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.DEPLOY, "S3"),
        input_artifacts=_bounds(1),
        output_artifacts=_bounds(0),
        properties=(
            ConfigurationProperty(
                name="BucketName",
                required=True,
                key=True,
                type=_STRING,
                description="Bucket the files are written to.",
            ),
            ConfigurationProperty(
                name="Extract",
                required=True,
                type=_BOOLEAN,
                description="true: unpack the artifact before upload; false: upload it as one "
                "zip object.",
            ),
            ConfigurationProperty(
                name="ObjectKey",
                required=False,
                type=_STRING,
                description="Key of the uploaded object, or prefix for extracted files. Required "
                "when Extract is false.",
            ),
            ConfigurationProperty(
                name="KMSEncryptionKeyARN",
                required=False,
                type=_STRING,
                description="Symmetric KMS key (ID, ARN or alias ARN) that encrypts what is "
                "uploaded.",
            ),
            ConfigurationProperty(
                name="CannedACL",
                required=False,
                type=_STRING,
                description="Canned ACL applied to every object written, replacing any it had.",
            ),
            ConfigurationProperty(
                name="CacheControl",
                required=False,
                type=_STRING,
                description="Cache-Control header value set on every object written.",
            ),
        ),
        description="Write the input artifact to a bucket, zipped or unpacked.",
        job_timeout=_S3_DEPLOY_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.SOURCE, "CodeCommit"),
        input_artifacts=_bounds(0),
        output_artifacts=_bounds(1),
        properties=(
            ConfigurationProperty(
                name="RepositoryName",
                required=True,
                key=True,
                type=_STRING,
                description="Repository watched for new commits.",
            ),
            ConfigurationProperty(
                name="BranchName",
                required=True,
                type=_STRING,
                description="Branch watched for new commits.",
            ),
            ConfigurationProperty(
                name="PollForSourceChanges",
                required=False,
                type=_BOOLEAN,
                description="Poll the repository for changes; polling is on when omitted.",
            ),
            ConfigurationProperty(
                name="OutputArtifactFormat",
                required=False,
                type=_STRING,
                description="CODE_ZIP (default) or CODEBUILD_CLONE_REF, which only CodeBuild "
                "actions can consume.",
            ),
        ),
        description="Start on commits to a CodeCommit branch and emit its contents.",
        job_timeout=_DEFAULT_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.SOURCE, "CodeStarSourceConnection"),
        input_artifacts=_bounds(0),
        output_artifacts=_bounds(1),
        properties=(
            ConfigurationProperty(
                name="ConnectionArn",
                required=True,
                key=True,
                type=_STRING,
                description="Connection that grants access to the hosted repository.",
            ),
            ConfigurationProperty(
                name="FullRepositoryId",
                required=True,
                key=True,
                type=_STRING,
                description="Owner and repository name, as owner/repo.",
            ),
            ConfigurationProperty(
                name="BranchName",
                required=True,
                type=_STRING,
                description="Branch watched for new commits.",
            ),
            ConfigurationProperty(
                name="OutputArtifactFormat",
                required=False,
                type=_STRING,
                description="CODE_ZIP (default) or CODEBUILD_CLONE_REF, which only CodeBuild "
                "actions can consume.",
            ),
            ConfigurationProperty(
                name="DetectChanges",
                required=False,
                type=_BOOLEAN,
                description="Start the pipeline on new commits; true when omitted.",
            ),
        ),
        description="Start on commits to a hosted Git repository reached through a connection.",
        job_timeout=_DEFAULT_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.SOURCE, "Git"),
        input_artifacts=_bounds(0),
        output_artifacts=_bounds(1),
        properties=(
            ConfigurationProperty(
                name="RepositoryUrl",
                required=True,
                key=True,
                type=_STRING,
                description="Repository to fetch: any URL git can clone from, or a local path.",
            ),
            ConfigurationProperty(
                name="BranchName",
                required=False,
                type=_STRING,
                description="Branch to follow; main when omitted.",
            ),
            ConfigurationProperty(
                name="DetectChanges",
                required=False,
                type=_BOOLEAN,
                description="Start the pipeline on new commits to the branch; true when omitted.",
            ),
        ),
        description="Conveyor's plain Git source: emit a branch of any Git repository.",
        job_timeout=_DEFAULT_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.SOURCE, "S3"),
        input_artifacts=_bounds(0),
        output_artifacts=_bounds(1),
        properties=(
            ConfigurationProperty(
                name="S3Bucket",
                required=True,
                key=True,
                type=_STRING,
                description="Versioned bucket watched for new object versions.",
            ),
            ConfigurationProperty(
                name="S3ObjectKey",
                required=True,
                key=True,
                type=_STRING,
                description="Key of the object (usually a zip) watched for new versions.",
            ),
            ConfigurationProperty(
                name="PollForSourceChanges",
                required=False,
                type=_BOOLEAN,
                description="Poll the bucket for changes; polling is on when omitted.",
            ),
            ConfigurationProperty(
                name="AllowOverrideForS3ObjectKey",
                required=False,
                type=_BOOLEAN,
                description="Let a source revision override at start replace S3ObjectKey; "
                "false when omitted.",
            ),
        ),
        description="Start on new versions of an object in a bucket and emit that object.",
        job_timeout=_DEFAULT_TIMEOUT,
    ),
    ActionType(
        id=_aws_id(ActionCategory.TEST, "CodeBuild"),
        input_artifacts=_CODEBUILD_INPUTS,
        output_artifacts=_CODEBUILD_OUTPUTS,
        properties=_CODEBUILD_PROPERTIES,
        description="Run tests from a buildspec over the input artifacts.",
        job_timeout=_DEFAULT_TIMEOUT,
    ),
)

_BY_ID: dict[ActionTypeId, ActionType] = {t.id: t for t in BUILTIN_ACTION_TYPES}


def builtin_action_type(type_id: ActionTypeId) -> ActionType | None:
    """The built-in type named by ``type_id``, or ``None`` when Conveyor has no such type."""
    return _BY_ID.get(type_id)
