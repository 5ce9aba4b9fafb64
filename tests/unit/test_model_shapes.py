"""The input shapes read without botocore (`conveyor.api.model.input_shape`) are botocore's."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.api import model
from conveyor.api.validate import validate_input

SERVICES = (model.SERVICE, model.CODEBUILD, model.CLOUDTRAIL)


def kind(shape: Any) -> str:
    """botocore's class name, or ours as botocore names it (``_Structure``: StructureShape)."""
    name = type(shape).__name__.lstrip("_")
    return name if name.endswith("Shape") else f"{name}Shape"


def described(shape: Any, seen: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """All that validation can read of a shape, down its whole tree (a recursive shape once)."""
    seen = set() if seen is None else seen
    found: dict[str, Any] = {
        "class": kind(shape),
        "name": shape.name,
        "type": shape.type_name,
        "metadata": shape.metadata,
        "required": shape.required_members,
        "enum": getattr(shape, "enum", None),
    }
    key = (shape.name, repr(sorted(shape.metadata.items())))
    if key in seen:
        return found
    seen = seen | {key}
    if shape.type_name == "structure":
        found["members"] = {k: described(v, seen) for k, v in shape.members.items()}
    elif shape.type_name == "list":
        found["member"] = described(shape.member, seen)
    elif shape.type_name == "map":
        found["key"] = described(shape.key, seen)
        found["value"] = described(shape.value, seen)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_input_shape_is_botocores(service: str) -> None:
    assert model._description(service) is not None, "the fast path should serve this machine"
    names = sorted(model.operation_names(service))
    assert names
    for name in names:
        ours = model.input_shape(name, service)
        theirs = model.operation(name, service).input_shape
        if theirs is None:
            assert ours is None, name
            continue
        assert ours is not None, name
        assert type(ours).__module__ == "conveyor.api.model"
        assert described(ours) == described(theirs), name


def test_validation_gives_the_same_messages_on_both() -> None:
    bad = {
        "pipeline": {
            "name": "no spaces allowed",
            "roleArn": "x",
            "stages": [{"name": "S", "actions": [{"name": "A", "runOrder": 0}]}],
            "unknown": 1,
        }
    }
    ours = model.input_shape("CreatePipeline")
    theirs = model.operation("CreatePipeline").input_shape
    errors = validate_input(ours, copy.deepcopy(bad))
    assert errors and errors == validate_input(theirs, copy.deepcopy(bad))


def test_a_customised_botocore_search_path_is_left_to_botocore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    model._description.cache_clear()
    try:
        shape = model.input_shape("CreatePipeline")
        assert type(shape).__module__.startswith("botocore")
    finally:
        model._description.cache_clear()


def test_reading_an_input_shape_imports_no_botocore() -> None:
    code = (
        "import sys\n"
        "from conveyor.api.model import input_shape\n"
        "from conveyor.api.validate import validate_input\n"
        "shape = input_shape('CreatePipeline')\n"
        "assert validate_input(shape, {'pipeline': {}})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'botocore'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
