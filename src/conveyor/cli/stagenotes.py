"""What `conveyor show` says beside a stage's status about V2 stages: a rollback execution
in the stage, its automatic and manual retries, and what the stage does on failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def stage_notes(stage: Mapping[str, Any], declared: Mapping[str, Any] | None = None) -> str:
    """Plain text to append to the stage's header line; empty when there is nothing to say.

    ``declared``: the stage's declaration, when known (for its ``onFailure``)."""
    notes = []
    latest = stage.get("latestExecution") or {}
    if latest.get("type") == "ROLLBACK":
        notes.append("rollback")
    retry = stage.get("retryStageMetadata") or {}
    automatic = retry.get("autoStageRetryAttempt")
    manual = retry.get("manualStageRetryAttempt")
    if automatic and manual:
        notes.append(f"retried {manual}x, {automatic}x automatically")
    elif automatic:
        notes.append(f"retried {automatic}x automatically")
    elif manual:
        notes.append(f"retried {manual}x")
    on_failure = ((declared or {}).get("onFailure") or {}).get("result")
    if on_failure in ("RETRY", "ROLLBACK"):
        notes.append(f"on failure: {on_failure.lower()}")
    return "".join(f"  ({note})" for note in notes)
