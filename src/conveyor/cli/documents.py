"""Reading a pipeline file: what `conveyor run`, `validate`, `create` and `update` take.

A file is a pipeline as ``aws codepipeline get-pipeline`` prints it, with or without the
top-level ``pipeline`` key, in JSON or the same structure in YAML. For local use ``roleArn``
and ``artifactStore`` may be left out, and a relative ``RepositoryUrl`` (Git source) resolves
against the file's folder. `positions` gives the line and column of each part of the file, so
a problem can be shown where it is written (JSON is YAML, so one composer serves both).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

Place = tuple[int, int]  # line and column, both from 1
Positions = dict[tuple[str | int, ...], Place]

LOCAL_ROLE = "arn:aws:iam::000000000000:role/conveyor-local"
LOCAL_BUCKET = "conveyor-artifacts"
_PATH_PROPERTIES = {("Source", "Git"): "RepositoryUrl"}
_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


class DocumentError(ValueError):
    """A file that cannot be read as a pipeline; the message says where and why."""


def read_document(path: Path) -> dict[str, Any]:
    """The pipeline declaration in ``path``, exactly as written (no defaults)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(f"{path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        raise DocumentError(
            f"{path}:{_yaml_place(exc)}not valid YAML: {_yaml_reason(exc)}"
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("pipeline"), dict):
        data = data["pipeline"]
    if not isinstance(data, dict):
        raise DocumentError(f"{path}: expected a pipeline (a mapping with name and stages)")
    return data


def _yaml_place(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return "" if mark is None else f"{mark.line + 1}:{mark.column + 1}: "


def _yaml_reason(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    return ", ".join(p for p in parts if p) or str(exc)


def positions(path: Path) -> Positions:
    """Where each part of the pipeline in ``path`` is written: the key of a member, the start
    of a list item; paths as in findings (``("stages", 1, "name")``). Empty when unreadable."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "pipeline" and isinstance(value, yaml.MappingNode):
                root = value
    found: Positions = {}
    if root is not None:
        _walk(root, (), _place(root), found)
    return found


def _place(node: yaml.Node) -> Place:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, path: tuple[str | int, ...], place: Place, found: Positions) -> None:
    found[path] = place
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _walk(value, (*path, str(key.value)), _place(key), found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), _place(item), found)


def place_of(where: str, found: Positions) -> Place | None:
    """The position of ``stages[1].actions[0].name``, or of the nearest part that holds it
    (a missing member is shown at the structure it is missing from)."""
    parts: tuple[str | int, ...] = tuple(
        int(index) if index else name for index, name in _PART.findall(where)
    )
    if where == "pipeline":
        parts = ()
    while parts not in found and parts:
        parts = parts[:-1]
    return found.get(parts)


def for_local_use(declaration: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A copy with the local defaults filled in and relative repository paths made absolute."""
    result = copy.deepcopy(declaration)
    result.setdefault("roleArn", LOCAL_ROLE)
    if "artifactStore" not in result and "artifactStores" not in result:
        result["artifactStore"] = {"type": "S3", "location": LOCAL_BUCKET}
    for stage in result.get("stages") or ():
        for action in stage.get("actions") or () if isinstance(stage, dict) else ():
            if not isinstance(action, dict):
                continue
            type_id = action.get("actionTypeId") or {}
            kind = (str(type_id.get("category")), str(type_id.get("provider")))
            key = _PATH_PROPERTIES.get(kind)
            config = action.get("configuration")
            if key and isinstance(config, dict) and isinstance(config.get(key), str):
                config[key] = _resolve(config[key], folder)
    return result


def _resolve(value: str, folder: Path) -> str:
    """Relative paths are relative to the file's folder; URLs and absolute paths stay."""
    if (
        "://" in value
        or value.startswith(("/", "git@", "~"))
        or ":" in value.split("/", maxsplit=1)[0]
    ):
        return value
    return str((folder / value).resolve())


def load_pipeline(path: Path) -> dict[str, Any]:
    """The declaration in ``path``, ready to run locally or to send to a server: checked as
    ``conveyor validate`` checks it, and refused with the same messages when it has problems."""
    from conveyor.cli.validate import checked  # here: validate reads files with this module

    return checked(path)
