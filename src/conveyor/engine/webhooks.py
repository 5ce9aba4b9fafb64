"""Webhooks: defining, listing and deleting them, and turning a delivery into an execution.

PutWebhook creates a webhook or replaces the definition of the one of that name, which keeps
its URL; a webhook deleted and made again gets a new one. The URL ends in a random token, so
knowing a webhook's name is not enough to trigger it. A delivery that passed its
authentication (`conveyor.domain.delivery`) is matched against the filters with the target
action's configuration as it is now, and starts the pipeline with trigger ``Webhook`` and the
webhook's ARN as detail, recording ``lastTriggered`` in the same transaction. When the target
has gone (pipeline deleted, action renamed, a placeholder's property removed) the delivery is
refused and the webhook's ``errorCode``/``errorMessage`` say why until it next succeeds.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.domain.arn import Scope
from conveyor.domain.delivery import Refusal, unmatched
from conveyor.domain.errors import (
    ConcurrentModificationException,
    ConveyorError,
    ValidationException,
    WebhookNotFoundException,
)
from conveyor.domain.pipeline import Action
from conveyor.domain.plan import Plan
from conveyor.domain.tags import merged_tags
from conveyor.domain.webhooks import (
    WebhookDefinition,
    check_placeholders,
    parse_definition,
    require_placeholders,
    with_secret_kept,
)
from conveyor.engine import lookup
from conveyor.engine.clock import Clock
from conveyor.engine.executions import ExecutionService
from conveyor.engine.plans import Plans
from conveyor.engine.runner import Outcome
from conveyor.store import DuplicateKey, Store, Tx, WebhookRecord
from conveyor.store.webhooks import opened_definition

TRIGGER = "Webhook"
PATH = "/webhooks/"
_TARGET_GONE = 409


@dataclass(frozen=True, slots=True)
class WebhookView:
    record: WebhookRecord
    arn: str
    url: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Target:
    """The webhook's target as a version of its pipeline declares it."""

    version: int
    configuration: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Gone:
    """The webhook's target is not there any more: the error the webhook then shows."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Found:
    """The webhook a delivery's URL names, and its target as it was then."""

    record: WebhookRecord
    definition: WebhookDefinition
    arn: str
    target: Target | Gone


@dataclass(frozen=True, slots=True)
class Delivered:
    """A delivery that passed its checks: the execution it started, or why it started none."""

    execution_id: str | None
    ignored: str | None = None


def target_action(plan: Plan, definition: WebhookDefinition) -> Action | None:
    """The webhook's target: a source action of the pipeline's first stage."""
    if not plan.stages:
        return None
    action = plan.stages[0].actions.get(definition.target_action)
    return action if action is not None and action.is_source else None


class WebhookService:
    def __init__(
        self,
        store: Store,
        scope: Scope,
        clock: Clock,
        plans: Plans,
        executions: ExecutionService,
        *,
        max_tags: int,
        base_url: str | None,
    ) -> None:
        self._store = store
        self._scope = scope
        self._clock = clock
        self._plans = plans
        self._executions = executions
        self._max_tags = max_tags
        self._base = (base_url or "").rstrip("/")

    def _view(self, tx: Tx, record: WebhookRecord) -> WebhookView:
        arn = self._scope.webhook(record.name)
        return WebhookView(record, arn, f"{self._base}{PATH}{record.token}", tx.tags.of(arn))

    def _target(self, tx: Tx, definition: WebhookDefinition) -> Action:
        pipeline = lookup.pipeline(tx, self._scope, definition.target_pipeline)
        plan = self._plans.get(tx, pipeline.id, pipeline.version)
        action = target_action(plan, definition)
        if action is None:
            raise ValidationException(
                f"webhook.targetAction '{definition.target_action}' is not a source action of "
                f"the first stage of pipeline '{definition.target_pipeline}'."
            )
        return action

    # -- the API ------------------------------------------------------------------------------

    def put(self, raw: Mapping[str, Any], tags: Sequence[tuple[str, str]]) -> WebhookView:
        definition = parse_definition(raw)
        arn = self._scope.webhook(definition.name)
        try:
            with self._store.write() as tx:
                require_placeholders(definition, self._target(tx, definition).config)
                now = self._clock.now()
                existing = tx.webhooks.get(definition.name)
                stored = with_secret_kept(raw, existing.definition if existing else None)
                if existing is None:
                    token = secrets.token_urlsafe(32)
                    tx.webhooks.insert(WebhookRecord(definition.name, token, stored, now, now))
                    tx.tags.clear(arn)
                else:
                    tx.webhooks.redefine(definition.name, stored, now)
                tx.tags.put(arn, merged_tags(arn, tx.tags.of(arn), tags, self._max_tags))
                record = tx.webhooks.get(definition.name)
                assert record is not None
                return self._view(tx, record)
        except DuplicateKey as exc:
            raise ConcurrentModificationException(
                f"Webhook '{definition.name}' was being put by another request at the same "
                "time; try again."
            ) from exc

    def page(self, after: str | None, limit: int) -> tuple[list[WebhookView], str | None]:
        """A page of webhooks in name order, and the name the next page starts after."""
        with self._store.read() as tx:
            records = tx.webhooks.page(after, limit + 1)
            views = [self._view(tx, r) for r in records[:limit]]
        following = views[-1].record.name if len(records) > limit else None
        return views, following

    def delete(self, name: str) -> None:
        """Delete the webhook; deleting one that does not exist succeeds, as in AWS."""
        with self._store.write() as tx:
            if tx.webhooks.delete(name):
                tx.tags.clear(self._scope.webhook(name))

    def require(self, name: str | None) -> None:
        """Register/DeregisterWebhookWithThirdParty: no third party is told anything (a
        Conveyor webhook's sender is configured by whoever owns it); the webhook must exist."""
        if name is not None:
            with self._store.read() as tx:
                if tx.webhooks.get(name) is not None:
                    return
        raise WebhookNotFoundException(
            f"There is no webhook named '{name}'."
            if name is not None
            else "webhookName is required: name the webhook created with PutWebhook."
        )

    # -- deliveries ---------------------------------------------------------------------------

    def find(self, token: str) -> Found | None:
        """The webhook whose URL ends in ``token``, with its target; the definition's secret
        token opened, to check the delivery's signature with."""
        with self._store.read() as tx:
            record = tx.webhooks.by_token(token)
            if record is None:
                return None
            box = self._store.box
            raw = (
                record.definition if box is None else opened_definition(record.definition, box.open)
            )
            definition = parse_definition(raw)
            target = self._target_of(tx, definition)
        return Found(record, definition, self._scope.webhook(record.name), target)

    def trigger(self, found: Found, payload: Any) -> Delivered | Refusal:
        """Start the webhook's pipeline when ``payload`` passes its filters.

        The filters run outside any transaction, against the target `find` saw; the start
        checks, with the pipeline locked, that the pipeline is still at that version, and
        runs them again if it is not."""
        definition = found.definition
        checked = _matched(definition, found.target, payload)
        if isinstance(checked, Gone):
            with self._store.write() as tx:
                return self._failed(tx, found, checked)
        if not isinstance(checked, int):
            return checked

        def work(tx: Tx) -> tuple[Delivered | Refusal, Outcome]:
            pipeline = tx.pipelines.get(definition.target_pipeline, lock=True)
            if pipeline is None or pipeline.version != checked:
                again = _matched(definition, self._target_of(tx, definition), payload)
                if isinstance(again, Gone):
                    return self._failed(tx, found, again), Outcome()
                if not isinstance(again, int):
                    return again, Outcome()
            assert pipeline is not None
            execution_id, outcome = self._executions.start_locked(
                tx, pipeline, trigger_type=TRIGGER, trigger_detail=found.arn
            )
            tx.webhooks.triggered(found.record.name, self._clock.now())
            return Delivered(execution_id), outcome

        try:
            return self._executions.write(work)
        except ConveyorError as error:
            with self._store.write() as tx:
                return self._failed(tx, found, Gone(error.code, error.message))

    def _target_of(self, tx: Tx, definition: WebhookDefinition) -> Target | Gone:
        name = definition.target_pipeline
        pipeline = tx.pipelines.get(name)
        if pipeline is None:
            return Gone("PipelineNotFoundException", f"The webhook's pipeline '{name}' is gone.")
        action = target_action(self._plans.get(tx, pipeline.id, pipeline.version), definition)
        if action is None:
            return Gone(
                "ActionNotFoundException",
                f"Pipeline '{name}' has no source action '{definition.target_action}' in its "
                "first stage any more.",
            )
        problem = check_placeholders(definition, action.config)
        if problem is not None:
            return Gone("InvalidWebhookFilterPatternException", problem)
        return Target(pipeline.version, action.config)

    def _failed(self, tx: Tx, found: Found, gone: Gone) -> Refusal:
        tx.webhooks.failed(found.record.name, gone.code, gone.message)
        return Refusal(_TARGET_GONE, gone.message)


def _matched(
    definition: WebhookDefinition, target: Target | Gone, payload: Any
) -> int | Delivered | Refusal | Gone:
    """The pipeline version whose filters the payload passes; or the delivery ignored,
    refused, or failed because the target is gone."""
    if isinstance(target, Gone):
        return target
    try:
        reason = unmatched(definition, payload, target.configuration)
    except RecursionError:
        return Refusal(400, "The body is nested too deeply for the filters to be applied.")
    return target.version if reason is None else Delivered(None, reason)
