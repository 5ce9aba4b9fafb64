"""The event types a notification rule may name: CodePipeline's, as AWS lists them.

Each id reads ``codepipeline-pipeline-<subject>-<state>``; the name is what the console
shows ("Pipeline execution: Failed"), the subject's detail type and state match the
EventBridge events Conveyor writes.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_NAME = "CodePipeline"
RESOURCE_TYPE = "Pipeline"


@dataclass(frozen=True, slots=True)
class EventType:
    id: str
    name: str
    # The EventBridge ``detail-type`` and ``detail.state`` this event type matches.
    detail_type: str
    state: str

    def summary(self) -> dict[str, str]:
        return {
            "EventTypeId": self.id,
            "ServiceName": SERVICE_NAME,
            "EventTypeName": self.name,
            "ResourceType": RESOURCE_TYPE,
        }


_SUBJECTS = {
    "action-execution": ("Action execution", "CodePipeline Action Execution State Change"),
    "stage-execution": ("Stage execution", "CodePipeline Stage Execution State Change"),
    "pipeline-execution": ("Pipeline execution", "CodePipeline Pipeline Execution State Change"),
    "manual-approval": ("Manual approval", "CodePipeline Action Execution State Change"),
}
_STATES = {
    "action-execution": ("succeeded", "failed", "canceled", "started"),
    "stage-execution": ("started", "succeeded", "resumed", "canceled", "failed"),
    "pipeline-execution": ("failed", "canceled", "started", "resumed", "succeeded", "superseded"),
    "manual-approval": ("failed", "needed", "succeeded"),
}
# A manual approval's states, as the approval action's own states.
_APPROVAL_STATES = {"failed": "FAILED", "needed": "STARTED", "succeeded": "SUCCEEDED"}


def _event_types() -> tuple[EventType, ...]:
    found = []
    for subject, states in _STATES.items():
        label, detail_type = _SUBJECTS[subject]
        for state in states:
            found.append(
                EventType(
                    id=f"codepipeline-pipeline-{subject}-{state}",
                    name=f"{label}: {state.capitalize()}",
                    detail_type=detail_type,
                    state=_APPROVAL_STATES[state]
                    if subject == "manual-approval"
                    else state.upper(),
                )
            )
    return tuple(sorted(found, key=lambda t: t.id))


EVENT_TYPES = _event_types()
BY_ID = {t.id: t for t in EVENT_TYPES}
