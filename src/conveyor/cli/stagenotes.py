"""What `conveyor show` says beside a stage's status about V2 stages: a rollback execution
in the stage, its automatic and manual retries, what the stage does on failure, and under the
stage, its conditions with their rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


# GetPipelineState's key for each kind of condition, and the name a stage declares it by.
CONDITION_KINDS = (
    ("beforeEntryConditionState", "beforeEntry"),
    ("onSuccessConditionState", "onSuccess"),
    ("onFailureConditionState", "onFailure"),
)


@dataclass(frozen=True, slots=True)
class RuleNote:
    name: str
    status: str | None
    summary: str | None  # only when the rule failed


@dataclass(frozen=True, slots=True)
class ConditionNote:
    kind: str  # beforeEntry, onSuccess or onFailure
    status: str | None  # the conditions' overall status; None before any was evaluated
    rules: list[RuleNote]


def condition_notes(stage: Mapping[str, Any]) -> list[ConditionNote]:
    """Each kind of condition the stage's state has, in the order a stage meets them: its
    overall status, then every rule of its conditions with the status of its latest run."""
    notes = []
    for key, kind in CONDITION_KINDS:
        state = stage.get(key)
        if not state:
            continue
        rules = []
        for condition in state.get("conditionStates") or ():
            for rule in condition.get("ruleStates") or ():
                latest = rule.get("latestExecution") or {}
                failed = latest.get("status") == "Failed"
                summary = latest.get("summary") if failed else None
                rules.append(RuleNote(rule.get("ruleName") or "?", latest.get("status"), summary))
        overall = (state.get("latestExecution") or {}).get("status")
        notes.append(ConditionNote(kind, overall, rules))
    return notes
