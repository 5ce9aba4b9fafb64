"""The ``Deploy/AWS/CloudFormation/1`` executor: a stack or a change set, through boto3.

Each ``ActionMode`` does what CodePipeline does. ``CREATE_UPDATE`` creates the stack or
updates it (no changes is a success); ``REPLACE_ON_FAILURE`` does the same but first deletes a
stack left in a failed state; ``DELETE_ONLY`` deletes the stack if there is one;
``CHANGE_SET_REPLACE`` replaces the named change set with a new one (of a new stack, if need
be) without executing it; ``CHANGE_SET_EXECUTE`` executes it. The action then waits for the
stack to settle: a failure names the first resource that failed and why. The stack's outputs
become the action's output variables, and with ``OutputFileName`` a JSON file in the output
artifact. The template (``TemplatePath``), the template configuration and the files that
``Fn::GetParam`` reads come from the input artifacts, unpacked once each when first needed. A
template over the 51,200 bytes CloudFormation takes in a request is put in S3 first and passed
by its URL (`conveyor.actions.cfntemplates`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conveyor.actions import aws
from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.cfnparams import (
    Misconfigured,
    TemplateConfiguration,
    artifact_path,
    parameter_overrides,
    template_configuration,
)
from conveyor.actions.cfntemplates import TEMPLATE_BODY_LIMIT, upload_template
from conveyor.actions.inputs import input_file, input_root, put_output
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["CloudFormationDeploy"]

_MODES = (
    "CREATE_UPDATE",
    "DELETE_ONLY",
    "REPLACE_ON_FAILURE",
    "CHANGE_SET_REPLACE",
    "CHANGE_SET_EXECUTE",
)
_SETTLED_OK = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
# States REPLACE_ON_FAILURE replaces: the stack is deleted, then created again.
_FAILED = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "DELETE_FAILED",
        "UPDATE_ROLLBACK_FAILED",
    }
)
_REVIEW = "REVIEW_IN_PROGRESS"
_NO_CHANGES = ("No updates are to be performed", "didn't contain changes", "No changes")


class _Failed(Exception):
    """The stack or change set ended badly; the message says which resource and why."""


def first_failure(events: list[dict[str, Any]]) -> str:
    """The first resource that failed in the stack's latest operation, and why, from its
    events (newest first, as DescribeStackEvents lists them); empty when none failed."""
    latest: list[dict[str, Any]] = []
    for event in events:
        if event.get("ResourceStatusReason") == "User Initiated":
            break
        latest.append(event)
    for event in reversed(latest):
        if str(event.get("ResourceStatus", "")).endswith("_FAILED"):
            reason = event.get("ResourceStatusReason") or "no reason given"
            return f": {event.get('LogicalResourceId')} {event['ResourceStatus']}: {reason}"
    return ""


class _Job:
    """One action's work: the configuration read, a client, the input artifacts' files."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None, context: JobContext):
        self.config = config
        self.unpacked = unpacked
        self.context = context
        self.settings = {k: v.strip() for k, v in context.configuration.items()}
        self.stack = self.settings.get("StackName", "")
        # The stack's id once known: names can be reused, ids cannot.
        self.stack_ref = self.stack
        self.cfn: Any = aws.client(config, "cloudformation", context)
        self.inputs = {a.name: a for a in context.input_artifacts}

    def log(self, line: str) -> None:
        self.context.log.write(line + "\n")
        self.context.log.flush()

    def files(self, name: str) -> Path:
        """The files of input artifact ``name``, unpacked the first time they are asked for."""
        artifact = self.inputs.get(name)
        if artifact is None:
            known = ", ".join(self.inputs) or "none"
            raise Misconfigured(f"{name} is not an input artifact of this action (inputs: {known})")
        return input_root(
            self.context,
            artifact,
            max_bytes=self.config.max_artifact_bytes,
            unpacked=self.unpacked,
        )

    # What the stack is made of -----------------------------------------------------------

    def template(self) -> str:
        value = self.settings.get("TemplatePath", "")
        if not value:
            raise Misconfigured(f"TemplatePath is required in {self.settings['ActionMode']} mode")
        name, path = artifact_path("TemplatePath", value)
        self.files(name)  # an unknown artifact is named as such
        found = input_file(
            self.context,
            self.inputs[name],
            path,
            max_bytes=self.config.max_artifact_bytes,
            unpacked=self.unpacked,
        )
        if found is None:
            raise Misconfigured(f"TemplatePath: {path} is not a file of input artifact {name}")
        return found.read_text(encoding="utf-8")

    def template_argument(self) -> dict[str, str]:
        """``TemplateBody``, or for a template over CloudFormation's 51,200 bytes,
        ``TemplateURL`` once the template is in the templates bucket."""
        body = self.template()
        if len(body.encode("utf-8")) <= TEMPLATE_BODY_LIMIT:
            return {"TemplateBody": body}
        return {"TemplateURL": upload_template(self.config, self.context, body, self.log)}

    def stack_arguments(self) -> tuple[dict[str, Any], str | None]:
        """What create_stack, update_stack and create_change_set all take, and the stack
        policy of the template configuration (which change sets cannot take)."""
        configuration = TemplateConfiguration()
        if self.settings.get("TemplateConfiguration"):
            configuration = template_configuration(
                self.files, self.settings["TemplateConfiguration"]
            )
        parameters = dict(configuration.parameters)
        if self.settings.get("ParameterOverrides"):
            parameters.update(
                parameter_overrides(self.settings["ParameterOverrides"], self.files, self.inputs)
            )
        arguments: dict[str, Any] = {"StackName": self.stack, **self.template_argument()}
        if parameters:
            arguments["Parameters"] = [
                {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()
            ]
        capabilities = [c.strip() for c in self.settings.get("Capabilities", "").split(",")]
        if any(capabilities):
            arguments["Capabilities"] = [c for c in capabilities if c]
        if self.settings.get("RoleArn"):
            arguments["RoleARN"] = self.settings["RoleArn"]
        if configuration.tags:
            arguments["Tags"] = [{"Key": k, "Value": v} for k, v in configuration.tags.items()]
        return arguments, configuration.stack_policy

    # Looking at the stack -------------------------------------------------------------------

    def current(self) -> dict[str, Any] | None:
        """The stack, or None when there is none (or only a deleted one)."""
        try:
            stacks = self.cfn.describe_stacks(StackName=self.stack_ref)["Stacks"]
        except aws.AwsError as error:
            if "does not exist" in aws.describe(error):
                return None
            raise
        if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            return None
        return dict(stacks[0])

    def settle(self, review_settles: bool = True) -> dict[str, Any] | None:
        """Wait until the stack is in no *_IN_PROGRESS state but REVIEW_IN_PROGRESS (a new
        stack waiting for its first change set to run); None once it is gone."""

        def look() -> tuple[dict[str, Any] | None] | None:
            found = self.current()
            status = "" if found is None else str(found["StackStatus"])
            if status.endswith("_IN_PROGRESS") and not (review_settles and status == _REVIEW):
                return None
            return (found,)

        (found,) = aws.wait(self.context, look, f"stack {self.stack}")
        return found

    def failure_reason(self) -> str:
        try:
            events = self.cfn.describe_stack_events(StackName=self.stack_ref)["StackEvents"]
        except aws.AwsError:
            return ""
        return first_failure(events)

    def settled_well(self, what: str, review_settles: bool = True) -> dict[str, Any]:
        found = self.settle(review_settles)
        if found is None:
            raise _Failed(f"Stack {self.stack} is gone after {what}")
        status = found["StackStatus"]
        if status not in _SETTLED_OK:
            raise _Failed(f"Stack {self.stack} is {status} after {what}{self.failure_reason()}")
        self.log(f"Stack {self.stack} is {status}")
        return found

    # The modes ---------------------------------------------------------------------------

    def create_or_update(self, replace_failed: bool) -> dict[str, Any]:
        found = self.settle()
        if found is not None and replace_failed and found["StackStatus"] in _FAILED:
            self.log(f"Stack {self.stack} is {found['StackStatus']}: deleting it to replace it")
            self.delete()
            found = None
        arguments, policy = self.stack_arguments()
        if policy is not None:
            arguments["StackPolicyBody"] = policy
        if found is None:
            self.log(f"Creating stack {self.stack}")
            self.cfn.create_stack(**arguments)
            return self.settled_well("its creation")
        try:
            self.log(f"Updating stack {self.stack}")
            self.cfn.update_stack(**arguments)
        except aws.AwsError as error:
            if any(text in aws.describe(error) for text in _NO_CHANGES):
                self.log(f"Stack {self.stack} is up to date: nothing to change")
                return found
            raise
        return self.settled_well("its update")

    def delete(self) -> None:
        found = self.settle()
        if found is None:
            self.log(f"Stack {self.stack} does not exist: nothing to delete")
            return
        self.log(f"Deleting stack {self.stack}")
        self.cfn.delete_stack(StackName=self.stack)
        if self.settle() is not None:
            left = self.current()
            status = left["StackStatus"] if left else "gone"
            raise _Failed(f"Stack {self.stack} is {status} after deletion{self.failure_reason()}")
        self.log(f"Stack {self.stack} is deleted")

    def change_set_name(self) -> str:
        name = self.settings.get("ChangeSetName", "")
        if not name:
            raise Misconfigured(f"ChangeSetName is required in {self.settings['ActionMode']} mode")
        return name

    def replace_change_set(self) -> None:
        name = self.change_set_name()
        found = self.settle()
        if found is not None:
            summaries = self.cfn.list_change_sets(StackName=self.stack).get("Summaries") or ()
            if any(c.get("ChangeSetName") == name for c in summaries):
                self.cfn.delete_change_set(StackName=self.stack, ChangeSetName=name)
                self.log(f"Deleted the earlier change set {name}")
        arguments, _ = self.stack_arguments()
        exists = found is not None and found["StackStatus"] != _REVIEW
        kind = "UPDATE" if exists else "CREATE"
        self.log(f"Creating change set {name} ({kind}) of stack {self.stack}")
        self.cfn.create_change_set(ChangeSetName=name, ChangeSetType=kind, **arguments)

        def look() -> dict[str, Any] | None:
            found = self.cfn.describe_change_set(StackName=self.stack, ChangeSetName=name)
            moving = str(found["Status"]).endswith(("_PENDING", "_IN_PROGRESS"))
            return None if moving else dict(found)

        change_set = aws.wait(self.context, look, f"change set {name}")
        status, reason = change_set["Status"], change_set.get("StatusReason") or ""
        if status == "FAILED" and not any(text in reason for text in _NO_CHANGES):
            raise _Failed(f"Change set {name} of stack {self.stack} failed: {reason}")
        self.log(f"Change set {name} is {status}{': ' + reason if reason else ''}")

    def execute_change_set(self) -> dict[str, Any]:
        name = self.change_set_name()
        self.settle()
        change_set = self.cfn.describe_change_set(StackName=self.stack, ChangeSetName=name)
        self.stack_ref = change_set["StackId"]
        self.log(f"Executing change set {name} of stack {self.stack}")
        self.cfn.execute_change_set(StackName=self.stack, ChangeSetName=name)
        return self.settled_well(f"executing change set {name}", review_settles=False)

    # Outputs --------------------------------------------------------------------------------

    def outputs(self, stack: dict[str, Any] | None) -> dict[str, str]:
        if stack is None:
            return {}
        return {o["OutputKey"]: str(o["OutputValue"]) for o in stack.get("Outputs") or ()}

    def write_outputs(self, outputs: dict[str, str]) -> None:
        name = self.settings.get("OutputFileName", "")
        if not name:
            return
        if not self.context.output_artifacts:
            raise Misconfigured("OutputFileName needs an output artifact to write the file to")
        inside = Path("/outputs", name).resolve()
        if not inside.is_relative_to("/outputs") or inside == Path("/outputs"):
            raise Misconfigured(f"OutputFileName {name!r} must stay inside the output artifact")
        put_output(self.context, name, json.dumps(outputs, indent=2) + "\n")
        self.log(f"Wrote the stack outputs to {name} in {self.context.output_artifacts[0].name}")

    def run(self) -> JobResult:
        mode = self.settings.get("ActionMode", "")
        if mode not in _MODES:
            raise Misconfigured(f"ActionMode must be one of {', '.join(_MODES)}, not {mode!r}")
        if not self.stack:
            raise Misconfigured("The configuration has no StackName")
        stack: dict[str, Any] | None = None
        if mode in ("CREATE_UPDATE", "REPLACE_ON_FAILURE"):
            stack = self.create_or_update(replace_failed=mode == "REPLACE_ON_FAILURE")
        elif mode == "DELETE_ONLY":
            self.delete()
        elif mode == "CHANGE_SET_REPLACE":
            self.replace_change_set()
        else:
            stack = self.execute_change_set()
        outputs = self.outputs(stack)
        self.write_outputs(outputs)
        summary = {
            "CREATE_UPDATE": f"Stack {self.stack} is up to date",
            "REPLACE_ON_FAILURE": f"Stack {self.stack} is up to date",
            "DELETE_ONLY": f"Stack {self.stack} is deleted",
            "CHANGE_SET_REPLACE": f"Change set {self.settings.get('ChangeSetName')} is ready",
            "CHANGE_SET_EXECUTE": f"Change set {self.settings.get('ChangeSetName')} is executed",
        }[mode]
        stack_id = stack.get("StackId") if stack else None
        return JobResult(
            succeeded=True,
            summary=summary,
            output_variables=outputs,
            external_execution_id=stack_id,
        )


class CloudFormationDeploy:
    """Deploys CloudFormation stacks at the ``cloudformation`` endpoint of the settings."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None = None) -> None:
        self.config = config
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        try:
            return _Job(self.config, self.unpacked, context).run()
        except Misconfigured as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        except (_Failed, aws.Stopped, ArtifactError) as error:
            return JobResult.failed(str(error))
        except aws.AwsError as error:
            return JobResult.failed(f"CloudFormation refused: {aws.describe(error)}")
        except (OSError, UnicodeDecodeError) as error:
            return JobResult.failed(f"CloudFormation deploy failed: {error}")
