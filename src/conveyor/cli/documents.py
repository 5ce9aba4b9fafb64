"""Reading a pipeline file: what `conveyor run`, `validate`, `create` and `update` take.

A file is a pipeline as ``aws codepipeline get-pipeline`` prints it, with or without the
top-level ``pipeline`` key, in JSON or the same structure in YAML. For local use ``roleArn``
and ``artifactStore`` may be left out, and a relative ``RepositoryUrl`` (Git source) resolves
against the file's folder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

LOCAL_ROLE = "arn:aws:iam::000000000000:role/conveyor-local"
LOCAL_BUCKET = "conveyor-artifacts"
_PATH_PROPERTIES = {("Source", "Git"): "RepositoryUrl"}


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
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise DocumentError(f"{path}: not valid {kind}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("pipeline"), dict):
        data = data["pipeline"]
    if not isinstance(data, dict):
        raise DocumentError(f"{path}: expected a pipeline (a mapping with name and stages)")
    return data


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
    """The declaration in ``path``, ready to run locally."""
    return for_local_use(read_document(path), path.resolve().parent)
