"""The service models that botocore ships: operations, shapes, constraints.

Everything on the wire derives from them: which targets exist, what each input must satisfy,
which exceptions an operation declares. CodePipeline's is the API; CodeBuild's serves build
projects and CloudTrail's the audit trail's LookupEvents on the same endpoint. The
``X-Amz-Target`` prefix picks the model (or, in Smithy's RPC v2 CBOR protocol, which recent
SDKs speak to CodeBuild, the path ``/service/<prefix>/operation/<name>``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel

SERVICE = "codepipeline"
TARGET_PREFIX = "CodePipeline_20150709"
CLOUDTRAIL = "cloudtrail"
CODEBUILD = "codebuild"
# Notification rules, in REST-JSON: routed by method and path (`conveyor.api.restjson`).
NOTIFICATIONS = "codestar-notifications"
# X-Amz-Target prefix → the service whose model it names.
SERVICES = {
    TARGET_PREFIX: SERVICE,
    "CodeBuild_20161006": CODEBUILD,
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": CLOUDTRAIL,
}


@cache
def service_model(service: str = SERVICE) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


@cache
def operation_names(service: str = SERVICE) -> frozenset[str]:
    return frozenset(service_model(service).operation_names)


def operation(name: str, service: str = SERVICE) -> OperationModel:
    return service_model(service).operation_model(name)


def snake_case(name: str) -> str:
    """botocore's Python name: ``StartPipelineExecution`` → ``start_pipeline_execution``."""
    from botocore import xform_name

    result: str = xform_name(name)
    return result


def declared_errors(name: str, service: str = SERVICE) -> frozenset[str]:
    shapes: list[Any] = operation(name, service).error_shapes
    return frozenset(shape.name for shape in shapes) | {"ValidationException"}
