"""The ``Deploy/AWS/ECS/1`` executor: a standard (rolling) ECS deploy, through boto3.

The input artifact's image definitions file (``FileName``, ``imagedefinitions.json`` by
default: ``[{"name": container, "imageUri": image}, ...]``) names new images for containers
of the service's current task definition. A new revision of that task definition is
registered with those images, the service is updated to it, and the action waits (up to
``DeploymentTimeout`` minutes, 60 by default) for the service's primary deployment to
complete: its rollout state ``COMPLETED``, or as many tasks running as the service wants. A
failed rollout fails the action with ECS's reason.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from conveyor.actions import aws
from conveyor.actions.base import JobContext, JobResult, ProviderConfig
from conveyor.actions.inputs import input_file
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["EcsDeploy"]

# What RegisterTaskDefinition takes back from DescribeTaskDefinition's answer.
_REGISTRABLE = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)
_DEFAULT_FILE = "imagedefinitions.json"
_DEFAULT_MINUTES = 60


def _image_definitions(text: str, name: str) -> dict[str, str]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise aws.Misconfigured(f"{name} is not valid JSON: {error}") from error
    if not isinstance(raw, list) or not raw:
        raise aws.Misconfigured(f"{name} must be a non-empty list of {{name, imageUri}} objects")
    found: dict[str, str] = {}
    for entry in raw:
        if not (isinstance(entry, dict) and entry.get("name") and entry.get("imageUri")):
            raise aws.Misconfigured(f"{name}: every entry needs a name and an imageUri")
        found[str(entry["name"])] = str(entry["imageUri"])
    return found


def new_task_definition(current: dict[str, Any], images: dict[str, str]) -> dict[str, Any]:
    """RegisterTaskDefinition's arguments: ``current`` with the containers' new images."""
    containers = [dict(c) for c in current.get("containerDefinitions") or ()]
    names = {c.get("name") for c in containers}
    missing = sorted(set(images) - names)
    if missing:
        raise aws.Failed(
            f"The task definition {current.get('family')} has no container named "
            f"{', '.join(missing)} (containers: {', '.join(sorted(map(str, names)))})"
        )
    for container in containers:
        if container.get("name") in images:
            container["image"] = images[container["name"]]
    arguments = {k: current[k] for k in _REGISTRABLE if current.get(k) not in (None, [], {})}
    arguments["containerDefinitions"] = containers
    return arguments


class EcsDeploy:
    """Deploys new images to an ECS service at the ``ecs`` endpoint of the settings."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None = None) -> None:
        self.config = config
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        return aws.reported("ECS", "deploy", lambda: self._run(context))

    def _images(self, context: JobContext) -> dict[str, str]:
        if len(context.input_artifacts) != 1:
            raise aws.Misconfigured("An ECS deploy action has exactly one input artifact")
        artifact = context.input_artifacts[0]
        name = context.configuration.get("FileName", "").strip() or _DEFAULT_FILE
        found = input_file(
            context,
            artifact,
            name,
            max_bytes=self.config.max_artifact_bytes,
            unpacked=self.unpacked,
        )
        if found is None:
            raise aws.Misconfigured(f"{name} is not a file of input artifact {artifact.name}")
        return _image_definitions(found.read_text(encoding="utf-8"), name)

    def _run(self, context: JobContext) -> JobResult:
        settings = {k: v.strip() for k, v in context.configuration.items()}
        cluster, service = settings.get("ClusterName", ""), settings.get("ServiceName", "")
        if not cluster or not service:
            raise aws.Misconfigured("The configuration needs ClusterName and ServiceName")
        minutes_text = settings.get("DeploymentTimeout") or str(_DEFAULT_MINUTES)
        if not minutes_text.isdigit() or not 1 <= int(minutes_text) <= _DEFAULT_MINUTES:
            raise aws.Misconfigured("DeploymentTimeout is a number of minutes from 1 to 60")
        images = self._images(context)
        ecs: Any = aws.client(self.config, "ecs", context)

        def described() -> dict[str, Any]:
            found = ecs.describe_services(cluster=cluster, services=[service])
            if not found.get("services"):
                reasons = ", ".join(f.get("reason", "") for f in found.get("failures") or ())
                raise aws.Failed(f"Service {service} not found in cluster {cluster} ({reasons})")
            return dict(found["services"][0])

        current = ecs.describe_task_definition(taskDefinition=described()["taskDefinition"])
        arguments = new_task_definition(current["taskDefinition"], images)
        registered = ecs.register_task_definition(**arguments)["taskDefinition"]
        arn = registered["taskDefinitionArn"]
        context.log.write(f"Registered {arn}\n")
        ecs.update_service(cluster=cluster, service=service, taskDefinition=arn)
        context.log.write(f"Updated service {service} of cluster {cluster}\n")

        def settled() -> bool | None:
            found = described()
            primary = [d for d in found.get("deployments") or () if d["status"] == "PRIMARY"]
            state = primary[0].get("rolloutState") if primary else None
            if state == "FAILED":
                reason = primary[0].get("rolloutStateReason") or "no reason given"
                raise aws.Failed(f"The deployment of {arn} to {service} failed: {reason}")
            running = int(found.get("runningCount", 0)) >= int(found.get("desiredCount", 0))
            moved = found.get("taskDefinition") == arn
            return True if moved and (state == "COMPLETED" or running) else None

        limit = int(minutes_text) * 60
        waiting = replace(context, time_left=min(limit, context.time_left or limit))
        started = time.monotonic()
        aws.wait(waiting, settled, f"service {service} to run {arn}")
        context.log.write(f"Service {service} runs {arn} ({time.monotonic() - started:.0f} s)\n")
        return JobResult(
            succeeded=True,
            summary=f"Deployed {arn} to service {service}",
            external_execution_id=arn,
        )
