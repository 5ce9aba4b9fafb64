"""Members Conveyor adds to CodePipeline's answers, kept where boto3 would drop them.

boto3 keeps only the members its model knows; GetPipelineState's action states also carry
``changeDetection`` (why change detection cannot follow a source), which `keep_extensions`
copies from the raw answer into the parsed one.
"""

from __future__ import annotations

import json
from typing import Any


def _copy_detection(raw: dict[str, Any], parsed: dict[str, Any]) -> None:
    for raw_stage, stage in zip(
        raw.get("stageStates") or (), parsed.get("stageStates") or (), strict=False
    ):
        for raw_action, action in zip(
            raw_stage.get("actionStates") or (), stage.get("actionStates") or (), strict=False
        ):
            if isinstance(raw_action, dict) and raw_action.get("changeDetection"):
                action["changeDetection"] = raw_action["changeDetection"]


def _after_state(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    try:
        raw = json.loads(http_response.content)
    except (ValueError, TypeError):
        return
    if isinstance(raw, dict):
        _copy_detection(raw, parsed)


def keep_extensions(client: Any) -> Any:
    client.meta.events.register("after-call.codepipeline.GetPipelineState", _after_state)
    return client
