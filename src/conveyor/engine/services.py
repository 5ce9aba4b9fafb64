"""The engine's services, assembled once per process from the store and the settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from conveyor.domain.arn import Scope
from conveyor.engine.actiontypes import ActionTypeService
from conveyor.engine.clock import Clock, SystemClock
from conveyor.engine.pipelines import PipelineService
from conveyor.engine.tags import TagService
from conveyor.store import Store

_TOKEN_KEY = "page_token_key"


@dataclass(frozen=True, slots=True)
class Limits:
    max_pipelines: int | None = None
    max_custom_action_types: int | None = None
    max_tags: int = 50


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    scope: Scope
    clock: Clock
    pipelines: PipelineService
    action_types: ActionTypeService
    tags: TagService
    # Signs page tokens; shared through the database by every server of one installation.
    token_key: bytes

    @classmethod
    def build(
        cls, store: Store, scope: Scope, limits: Limits, clock: Clock | None = None
    ) -> Services:
        clock = clock or SystemClock()
        with store.write() as tx:
            key = tx.meta.setdefault(_TOKEN_KEY, secrets.token_hex(32))
        return cls(
            store=store,
            scope=scope,
            clock=clock,
            pipelines=PipelineService(
                store, scope, clock, max_pipelines=limits.max_pipelines, max_tags=limits.max_tags
            ),
            action_types=ActionTypeService(
                store,
                scope,
                clock,
                max_custom=limits.max_custom_action_types,
                max_tags=limits.max_tags,
            ),
            tags=TagService(store, scope, clock, max_tags=limits.max_tags),
            token_key=bytes.fromhex(key),
        )
