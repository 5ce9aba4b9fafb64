"""The CodePipeline service model that botocore ships: operations, shapes, constraints.

Everything on the wire derives from it: which targets exist, what each input must satisfy,
which exceptions an operation declares.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel

SERVICE = "codepipeline"
TARGET_PREFIX = "CodePipeline_20150709"


@cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE)


@cache
def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def snake_case(name: str) -> str:
    """botocore's Python name: ``StartPipelineExecution`` → ``start_pipeline_execution``."""
    from botocore import xform_name

    result: str = xform_name(name)
    return result


def declared_errors(name: str) -> frozenset[str]:
    shapes: list[Any] = operation(name).error_shapes
    return frozenset(shape.name for shape in shapes) | {"ValidationException"}
