"""What a notification says: which rules' event types an event matches, the notification's
JSON (the EventBridge event in AWS's "processed" shape), and a Slack message of it.

Pure: events in, JSON out.
"""

from __future__ import annotations

from typing import Any

from conveyor.notify.catalog import EVENT_TYPES


def event_type_ids(event: dict[str, Any]) -> set[str]:
    """The notification event types an EventBridge event is an instance of."""
    detail = event.get("detail") or {}
    state = detail.get("state")
    kind = (detail.get("type") or {}).get("category")
    found = set()
    for event_type in EVENT_TYPES:
        if event_type.detail_type != event.get("detail-type") or event_type.state != state:
            continue
        is_approval = event_type.id.startswith("codepipeline-pipeline-manual-approval-")
        if is_approval and kind != "Approval":
            continue
        found.add(event_type.id)
    return found


def notification(
    event: dict[str, Any],
    rule_arn: str,
    detail_type: str,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The notification of ``event`` for a rule, in AWS's "processed" shape: the envelope's
    ``version`` and ``id`` left out, ``detail-type`` written ``detailType``, the rule's ARN
    added; a FULL rule's also carries ``additionalAttributes`` (`conveyor.notify.attributes`)."""
    body = {k: v for k, v in event.items() if k not in _LEFT_OUT}
    body["detailType"] = event.get("detail-type")
    body["notificationRuleArn"] = rule_arn
    if detail_type == "FULL":
        body["additionalAttributes"] = attributes or {}
    return body


# What the processed shape leaves out of the EventBridge envelope.
_LEFT_OUT = frozenset({"detail-type", "version", "id"})


def console_link(base: str, event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    link = f"{base.rstrip('/')}/pipelines/{detail.get('pipeline', '')}"
    execution = detail.get("execution-id")
    return f"{link}/executions/{execution}" if execution else link


def slack_message(note: dict[str, Any], base: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: the pipeline, what happened, the failing action and
    its reason, and a link to the console."""
    detail = note.get("detail") or {}
    subject = " / ".join(str(detail[k]) for k in ("pipeline", "stage", "action") if detail.get(k))
    kind = (
        str(note.get("detailType") or "")
        .removeprefix("CodePipeline ")
        .removesuffix(" State Change")
    )
    text = f"*{subject}*: {kind} {detail.get('state', '')}".rstrip()
    reason = (detail.get("execution-result") or {}).get("external-execution-summary")
    if reason:
        text += f"\n> {reason}"
    link = console_link(base, note)
    return {"text": f"{text}\n<{link}|Open in Conveyor>"}


APPROVAL_TYPE = {"category": "Approval", "owner": "AWS", "provider": "Manual"}


def is_approval_needed(event: dict[str, Any]) -> bool:
    detail = event.get("detail") or {}
    kind = detail.get("type") or {}
    return (
        event.get("detail-type") == "CodePipeline Action Execution State Change"
        and detail.get("state") == "STARTED"
        and all(kind.get(k) == v for k, v in APPROVAL_TYPE.items())
    )


def _iso_minutes(when: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%MZ")


def approval_message(
    event: dict[str, Any],
    base: str,
    token: str,
    expires: float | None,
    configuration: dict[str, str],
) -> dict[str, Any]:
    """AWS's approval notice: the Region, a link to the pipeline, and the approval (its
    token, when it expires, the links to review it, the custom data)."""
    detail = event["detail"]
    pipeline, stage, action = detail["pipeline"], detail["stage"], detail["action"]
    link = f"{base.rstrip('/')}/pipelines/{pipeline}"
    approval = {
        "pipelineName": pipeline,
        "stageName": stage,
        "actionName": action,
        "token": token,
        "expires": _iso_minutes(expires) if expires is not None else None,
        "externalEntityLink": configuration.get("ExternalEntityLink"),
        "approvalReviewLink": f"{link}#approve/{stage}/{action}/{token}",
        "customData": configuration.get("CustomData"),
    }
    return {
        "region": event.get("region"),
        "consoleLink": link,
        "approval": {k: v for k, v in approval.items() if v is not None},
    }
