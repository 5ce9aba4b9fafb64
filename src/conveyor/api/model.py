"""The service models that botocore ships: operations, shapes, constraints.

Everything on the wire derives from them: which targets exist, what each input must satisfy,
which exceptions an operation declares. CodePipeline's is the API; CodeBuild's serves build
projects and CloudTrail's the audit trail's LookupEvents on the same endpoint. The
``X-Amz-Target`` prefix picks the model (or, in Smithy's RPC v2 CBOR protocol, which recent
SDKs speak to CodeBuild, the path ``/service/<prefix>/operation/<name>``).

The server reads the models through botocore's session (`service_model`, `operation`).
Checking a file offline (``conveyor validate``, ``run``, ``create``) needs only an operation's
input shapes, and importing botocore costs more than everything else ``conveyor run`` does
before its first action; so `input_shape` reads the same model file straight from botocore's
data folder, without importing botocore, into shapes that answer what validation asks of a
shape (`Shape`, `StructureShape`, `ListShape`, `MapShape`) exactly as botocore's do (a test
compares them shape by shape). When botocore would look elsewhere first (``AWS_DATA_PATH``,
``~/.aws/models``, an extras file), `input_shape` asks botocore itself.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from collections.abc import Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # botocore is imported by the functions that need it: it is slow to import
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
MODEL = "service-2"
# What botocore keeps of a shape's definition as its metadata (botocore.model.Shape).
METADATA = (
    "required",
    "min",
    "max",
    "pattern",
    "sensitive",
    "enum",
    "idempotencyToken",
    "error",
    "exception",
    "endpointdiscoveryid",
    "retryable",
    "document",
    "union",
    "contextParam",
    "clientContextParams",
    "requiresLength",
)


class Shape(Protocol):
    """What validation reads of a shape; botocore's shapes and `input_shape`'s both have it."""

    @property
    def name(self) -> str: ...

    @property
    def type_name(self) -> str: ...

    @property
    def metadata(self) -> dict[str, Any]: ...


class StructureShape(Shape, Protocol):
    @property
    def members(self) -> Mapping[str, Shape]: ...

    @property
    def required_members(self) -> list[str]: ...


class ListShape(Shape, Protocol):
    @property
    def member(self) -> Shape: ...


class MapShape(Shape, Protocol):
    @property
    def key(self) -> Shape: ...

    @property
    def value(self) -> Shape: ...


@cache
def service_model(service: str = SERVICE) -> ServiceModel:
    import botocore.session

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


def input_shape(name: str, service: str = SERVICE) -> StructureShape | None:
    """The input shape of the operation ``name``, or None when it takes no input."""
    description = _description(service)
    if description is None:
        return operation(name, service).input_shape
    reference = description["operations"][name].get("input")
    if reference is None:
        return None
    found = _Shapes(description["shapes"]).resolve(reference)
    assert isinstance(found, _Structure), f"{name}'s input is a {found.type_name}"
    return found


@cache
def _description(service: str) -> dict[str, Any] | None:
    """The service's model as botocore would load it, when botocore would load it from its
    own data folder alone; None when it would look elsewhere too (ask botocore then)."""
    if os.environ.get("AWS_DATA_PATH"):
        return None
    customer = Path(os.path.expanduser("~")) / ".aws" / "models" / service  # as botocore says
    if customer.exists():
        return None
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / service
    if not folder.is_dir():
        return None  # a service botocore does not ship: botocore says so
    # The latest API version: botocore picks the greatest folder name holding the model.
    versions = sorted(
        (v for v in folder.iterdir() if _model_file(v, MODEL) is not None),
        key=lambda v: v.name,
        reverse=True,
    )
    if not versions or _model_file(versions[0], f"{MODEL}.sdk-extras") is not None:
        return None
    path = _model_file(versions[0], MODEL)
    assert path is not None
    data = path.read_bytes()
    loaded: dict[str, Any] = json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
    return loaded


def _model_file(version: Path, name: str) -> Path | None:
    for candidate in (version / f"{name}.json", version / f"{name}.json.gz"):
        if candidate.is_file():
            return candidate
    return None


class _Shapes:
    """A model's shapes by name, each built when a reference to it is followed, as botocore's
    ShapeResolver does: the traits of a member reference are laid over the shape it names."""

    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self._definitions = definitions

    def resolve(self, reference: Mapping[str, Any]) -> _Shape:
        traits = dict(reference)
        name = traits.pop("shape")
        definition = self._definitions[name]
        if traits:
            definition = {**definition, **traits}
        kind = _KINDS.get(definition["type"], _Shape)
        return kind(name, definition, self)


class _Shape:
    def __init__(self, name: str, definition: Mapping[str, Any], shapes: _Shapes) -> None:
        self.name = name
        self.type_name: str = definition["type"]
        self._definition = definition
        self._shapes = shapes

    @cached_property
    def metadata(self) -> dict[str, Any]:
        return {key: self._definition[key] for key in METADATA if key in self._definition}

    @cached_property
    def required_members(self) -> list[str]:
        required: list[str] = self.metadata.get("required", [])
        return required

    def __repr__(self) -> str:
        return f"<{type(self).__name__}({self.name})>"


class _Structure(_Shape):
    @cached_property
    def members(self) -> dict[str, Shape]:
        members = self._definition.get("members", {})
        return {name: self._shapes.resolve(ref) for name, ref in members.items()}


class _List(_Shape):
    @cached_property
    def member(self) -> Shape:
        return self._shapes.resolve(self._definition["member"])


class _Map(_Shape):
    @cached_property
    def key(self) -> Shape:
        return self._shapes.resolve(self._definition["key"])

    @cached_property
    def value(self) -> Shape:
        return self._shapes.resolve(self._definition["value"])


class _String(_Shape):
    @cached_property
    def enum(self) -> list[str]:
        values: list[str] = self.metadata.get("enum", [])
        return values


_KINDS: dict[str, type[_Shape]] = {
    "structure": _Structure,
    "list": _List,
    "map": _Map,
    "string": _String,
}
