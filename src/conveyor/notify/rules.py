"""Notification rules as the CodeStar Notifications API manages them.

A rule names one pipeline (its ``Resource``), the event types it sends, and up to ten
targets. Targets are kept apart from rules, by address, as AWS keeps them: unsubscribing
leaves the target; `delete_target` forgets it.

Target types: ``SNS`` (a topic ARN), and Conveyor's own ``Webhook`` and ``Slack`` (an
``http(s)`` URL). A Webhook address may carry its signing secret in the URL's fragment
(``https://host/hook#secret=…``): a fragment is never sent over HTTP, so the secret is taken
off the address, kept sealed, and never shown again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from conveyor.domain.arn import Scope
from conveyor.domain.errors import (
    ConfigurationException,
    LimitExceededException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ValidationException,
)
from conveyor.engine.clock import Clock
from conveyor.notify.catalog import BY_ID
from conveyor.store import Store
from conveyor.store.notifications import RuleRecord, TargetRecord

TARGET_TYPES = ("SNS", "Webhook", "Slack")
MAX_RULES = 1000
MAX_TAGS = 50
_SNS_ARN = re.compile(r"arn:aws[^:\s]*:sns:[^:\s]+:\d{12}:[\w-]{1,256}")
_SECRET = "secret"


@dataclass(frozen=True, slots=True)
class Target:
    type: str
    # The address as kept and shown: a Webhook's secret taken off.
    address: str
    secret: str | None = None


def target_from(raw: dict[str, Any], field: str = "Target") -> Target:
    """A target as a request gives it, checked; raises `ValidationException` naming
    ``field``."""
    kind = raw.get("TargetType")
    address = raw.get("TargetAddress")
    if kind is None or address is None:
        raise ValidationException(f"{field} needs a TargetType and a TargetAddress.")
    if kind not in TARGET_TYPES:
        raise ValidationException(
            f"{field}.TargetType '{kind}' is not one of {', '.join(TARGET_TYPES)}."
        )
    if kind == "SNS":
        if not _SNS_ARN.fullmatch(address):
            raise ValidationException(f"{field}.TargetAddress of an SNS target is a topic ARN.")
        return Target(kind, address)
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationException(
            f"{field}.TargetAddress of a {kind} target is an http or https URL."
        )
    secret = None
    if parts.fragment:
        if kind != "Webhook":
            raise ValidationException(f"{field}.TargetAddress of a {kind} target has no fragment.")
        values = parse_qs(parts.fragment).get(_SECRET)
        if not values or not values[0]:
            raise ValidationException(
                f"{field}.TargetAddress: a Webhook's fragment is '#secret=<signing secret>'."
            )
        secret = values[0]
    return Target(kind, urlunsplit(parts._replace(fragment="")), secret)


def rule_arn(scope: Scope) -> str:
    return (
        f"arn:{scope.partition}:codestar-notifications:{scope.region}:{scope.account}"
        f":notificationrule/{secrets.token_hex(20)}"
    )


def _event_types(ids: list[str], field: str = "EventTypeIds") -> list[str]:
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        raise ValidationException(
            f"{field}: '{unknown[0]}' is not an event type of a CodePipeline pipeline; "
            "ListEventTypes lists them."
        )
    return list(dict.fromkeys(ids))


def _tags(raw: dict[str, str] | None) -> dict[str, str]:
    tags = dict(raw or {})
    if len(tags) > MAX_TAGS:
        raise LimitExceededException(f"A notification rule has at most {MAX_TAGS} tags.")
    reserved = [k for k in tags if k.lower().startswith("aws:")]
    if reserved:
        raise ValidationException(f"Tags: the prefix 'aws:' of '{reserved[0]}' is reserved.")
    return tags


def _targets(raw: list[dict[str, Any]]) -> list[Target]:
    found = [target_from(t, f"Targets.{n}.member") for n, t in enumerate(raw, start=1)]
    if not found:
        raise ValidationException("Targets: a notification rule needs at least one target.")
    return found


class NotificationRuleService:
    def __init__(self, store: Store, scope: Scope, clock: Clock) -> None:
        self.store = store
        self.scope = scope
        self.clock = clock

    def _resource(self, resource: str) -> str:
        prefix = self.scope.prefix() + ":"
        name = resource.removeprefix(prefix)
        if not resource.startswith(prefix) or not name or "/" in name:
            raise ValidationException(
                f"Resource '{resource}' is not the ARN of a pipeline in {self.scope.region} "
                f"of account {self.scope.account}."
            )
        with self.store.read() as tx:
            if tx.pipelines.get(name) is None:
                raise ConfigurationException(f"Resource '{resource}': no such pipeline.")
        return resource

    def _keep_targets(self, tx: Any, targets: list[Target], now: float) -> tuple[str, ...]:
        for target in targets:
            kept = tx.notifications.target(target.address)
            if kept is not None and kept.type != target.type:
                raise ConfigurationException(
                    f"Target '{target.address}' is already kept as a {kept.type} target."
                )
            tx.notifications.add_target(
                TargetRecord(target.address, target.type, "ACTIVE", now, target.secret)
            )
        return tuple(dict.fromkeys(t.address for t in targets))

    def create(self, params: dict[str, Any], caller: str) -> str:
        resource = self._resource(params["Resource"])
        events = _event_types(params["EventTypeIds"])
        targets = _targets(params["Targets"])
        token = params.get("ClientRequestToken")
        definition = {
            "EventTypeIds": events,
            "DetailType": params["DetailType"],
            "Status": params.get("Status") or "ENABLED",
            "Tags": _tags(params.get("Tags")),
            "CreatedBy": caller,
            "ClientRequestToken": token,
        }
        now = self.clock.now()
        with self.store.write() as tx:
            same = tx.notifications.by_name(params["Name"])
            if same is not None:
                if token is not None and same.definition.get("ClientRequestToken") == token:
                    return same.arn
                raise ResourceAlreadyExistsException(
                    f"A notification rule named '{params['Name']}' already exists."
                )
            if tx.notifications.count() >= MAX_RULES:
                raise LimitExceededException(f"An account has at most {MAX_RULES} rules.")
            addresses = self._keep_targets(tx, targets, now)
            arn = rule_arn(self.scope)
            tx.notifications.insert(
                RuleRecord(arn, params["Name"], resource, definition, now, now, addresses)
            )
        return arn

    def _get(self, tx: Any, arn: str) -> RuleRecord:
        record: RuleRecord | None = tx.notifications.get(arn)
        if record is None:
            raise ResourceNotFoundException(f"Notification rule '{arn}' does not exist.")
        return record

    def describe(self, arn: str) -> dict[str, Any]:
        with self.store.read() as tx:
            record = self._get(tx, arn)
            targets = [tx.notifications.target(a) for a in record.targets]
        d = record.definition
        return {
            "Arn": record.arn,
            "Name": record.name,
            "EventTypes": [BY_ID[i].summary() for i in d["EventTypeIds"] if i in BY_ID],
            "Resource": record.resource,
            "Targets": [target_summary(t) for t in targets if t is not None],
            "DetailType": d["DetailType"],
            "CreatedBy": d["CreatedBy"],
            "Status": d["Status"],
            "CreatedTimestamp": record.created,
            "LastModifiedTimestamp": record.updated,
            "Tags": d["Tags"],
        }

    def rules(self) -> list[RuleRecord]:
        with self.store.read() as tx:
            found: list[RuleRecord] = tx.notifications.all()
        return found

    def update(self, params: dict[str, Any]) -> None:
        arn = params["Arn"]
        now = self.clock.now()
        events = _event_types(params["EventTypeIds"]) if "EventTypeIds" in params else None
        targets = _targets(params["Targets"]) if "Targets" in params else None
        with self.store.write() as tx:
            record = self._get(tx, arn)
            name = params.get("Name") or record.name
            other = tx.notifications.by_name(name)
            if other is not None and other.arn != arn:
                raise ResourceAlreadyExistsException(
                    f"A notification rule named '{name}' already exists."
                )
            definition = dict(record.definition)
            if events is not None:
                definition["EventTypeIds"] = events
            for key in ("DetailType", "Status"):
                if key in params:
                    definition[key] = params[key]
            tx.notifications.redefine(arn, name, definition, now)
            if targets is not None:
                tx.notifications.set_targets(arn, self._keep_targets(tx, targets, now))

    def delete(self, arn: str) -> None:
        """Deleting a rule that is not there succeeds, as AWS's does."""
        with self.store.write() as tx:
            tx.notifications.delete(arn)

    def subscribe(self, arn: str, raw: dict[str, Any]) -> None:
        target = target_from(raw)
        with self.store.write() as tx:
            record = self._get(tx, arn)
            if target.address in record.targets:
                return
            if len(record.targets) >= 10:
                raise ValidationException("Target: a notification rule has at most 10 targets.")
            addresses = self._keep_targets(tx, [target], self.clock.now())
            tx.notifications.set_targets(arn, record.targets + addresses)

    def unsubscribe(self, arn: str, address: str) -> None:
        with self.store.write() as tx:
            record = tx.notifications.get(arn)
            if record is None:
                raise ValidationException(f"Arn: notification rule '{arn}' does not exist.")
            kept = tuple(a for a in record.targets if a != address)
            tx.notifications.set_targets(arn, kept)

    def targets(self) -> list[TargetRecord]:
        with self.store.read() as tx:
            found: list[TargetRecord] = tx.notifications.targets()
        return found

    def delete_target(self, address: str, force: bool) -> None:
        with self.store.write() as tx:
            users = tx.notifications.rules_sending_to(address)
            if users and not force:
                raise ValidationException(
                    f"TargetAddress: {len(users)} notification rule(s) still send to it; "
                    "unsubscribe it from them first, or set ForceUnsubscribeAll."
                )
            tx.notifications.delete_target(address)

    def tags(self, arn: str) -> dict[str, str]:
        with self.store.read() as tx:
            tags: dict[str, str] = self._get(tx, arn).definition["Tags"]
        return tags

    def tag(self, arn: str, tags: dict[str, str]) -> dict[str, str]:
        with self.store.write() as tx:
            record = self._get(tx, arn)
            merged = _tags({**record.definition["Tags"], **tags})
            definition = {**record.definition, "Tags": merged}
            tx.notifications.redefine(arn, record.name, definition, record.updated)
        return merged

    def untag(self, arn: str, keys: list[str]) -> None:
        with self.store.write() as tx:
            record = self._get(tx, arn)
            kept = {k: v for k, v in record.definition["Tags"].items() if k not in keys}
            definition = {**record.definition, "Tags": kept}
            tx.notifications.redefine(arn, record.name, definition, record.updated)


def target_summary(record: TargetRecord) -> dict[str, str]:
    return {
        "TargetAddress": record.address,
        "TargetType": record.type,
        "TargetStatus": record.status,
    }


__all__ = ["NotificationRuleService", "Target", "target_from", "target_summary"]
