"""What one event makes for the outbox to send: a notification per rule (made before the
event) that names its event type and target of that rule (FULL ones with
`conveyor.notify.attributes`), the approval notice of an approval action that starts (an
approval notice is sent with or without a rule, and starts the deliverer), and commit statuses
(`conveyor.notify.statuses`).
Rows of the deliveries table, written in the transaction that moves the outbox's cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from conveyor.notify import statuses
from conveyor.notify.attributes import additional_attributes, needs_actions
from conveyor.notify.messages import (
    approval_message,
    event_type_ids,
    is_approval_needed,
    notification,
)
from conveyor.notify.statuses import COMMIT_STATUS, StatusHost
from conveyor.store.notifications import RuleRecord
from conveyor.store.rows import dumps

# The rule ARN of an approval notice: sent to the approval action's NotificationArn, which is
# an SNS topic whether or not it is a rule's target.
APPROVAL = "approval"


def calls_for_notice(events: Iterable[tuple[str, dict[str, Any]]]) -> bool:
    """Whether any of these events (as a store's ``on_events`` has them) makes a delivery
    without a rule: an approval action's start, whose notice it sends."""
    return any(is_approval_needed(body) for _, body in events)


def deliveries_of(
    tx: Any,
    event: Any,
    rules: Iterable[RuleRecord],
    now: float,
    hosts: Mapping[str, StatusHost],
    console: str,
    known: dict[str, list[Any]],
) -> list[dict[str, Any]]:
    """The deliveries one event makes: a notification per matching rule and target, an
    approval notice, commit statuses. ``known``: the actions of the executions read so far
    in this pass, by execution id (read once a pass, so every event of the pass sees its
    execution as the pass found it, and a pass of 500 events reads a few executions, not
    500)."""
    body = event.body
    types = event_type_ids(body)
    rows: list[dict[str, Any]] = []

    def execution_actions() -> list[Any]:
        execution = (body.get("detail") or {}).get("execution-id")
        if not execution:
            return []
        found = known.get(execution)
        if found is None:
            found = known[execution] = tx.actions.of_execution(execution)
        return found

    def row(rule_arn: str, address: str, payload: dict[str, Any] | str) -> dict[str, Any]:
        return {
            "event_seq": event.seq,
            "pipeline_name": event.pipeline_name,
            "rule_arn": rule_arn,
            "address": address,
            "payload": payload,
            "status": "PENDING",
            "attempts": 0,
            "created": now,
            "next_attempt": now,
        }

    for rule in rules:
        # A rule tells of what happens once it exists: an event read late (a deliverer
        # started when the first rule was made, one catching up) is not news to it.
        if event.time < rule.created or not types & set(rule.definition["EventTypeIds"]):
            continue
        detail_type = rule.definition["DetailType"]
        attributes = None
        if detail_type == "FULL":
            found = execution_actions() if needs_actions(body) else []
            attributes = additional_attributes(body, found)
        # One text for every target of the rule.
        note = dumps(notification(body, rule.arn, detail_type, attributes))
        rows.extend(row(rule.arn, address, note) for address in rule.targets)
    if is_approval_needed(body):
        rows.extend(_approval(tx, event.seq, event.pipeline_name, body, now, console))
    if hosts and statuses.is_candidate(body):
        wanted = statuses.wanted(body, execution_actions(), hosts, console)
        rows.extend(row(COMMIT_STATUS, s.url, s.payload()) for s in wanted)
    return rows


def _approval(
    tx: Any, seq: int, pipeline: str, body: dict[str, Any], now: float, console: str
) -> list[dict[str, Any]]:
    """The approval notice of an approval action that has started, when its
    configuration names a NotificationArn."""
    detail = body["detail"]
    record = tx.actions.latest(detail["execution-id"], detail["stage"], detail["action"])
    if record is None or not record.token:
        return []
    configuration = record.input.get("resolvedConfiguration") or {}
    topic = configuration.get("NotificationArn")
    if not topic:
        return []
    message = approval_message(body, console, record.token, record.deadline, configuration)
    return [
        {
            "event_seq": seq,
            "pipeline_name": pipeline,
            "rule_arn": APPROVAL,
            "address": topic,
            "payload": message,
            "status": "PENDING",
            "attempts": 0,
            "created": now,
            "next_attempt": now,
        }
    ]
