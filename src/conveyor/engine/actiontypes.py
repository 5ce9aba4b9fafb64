"""Action types: the built-in catalog plus the custom and third-party types in the store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.domain.actiontype import ActionOwner, ActionType, ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.catalog import BUILTIN_ACTION_TYPES, builtin_action_type
from conveyor.domain.customtypes import check_definition, from_custom, from_declaration
from conveyor.domain.errors import (
    ActionTypeNotFoundException,
    LimitExceededException,
    RequestFailedException,
    ValidationException,
)
from conveyor.domain.tags import merged_tags
from conveyor.engine.clock import Clock
from conveyor.store import ActionTypeRecord, Store, Tx


def _action_type(record: ActionTypeRecord) -> ActionType:
    if record.id.owner == ActionOwner.CUSTOM:
        return from_custom(record.id, record.definition)
    return from_declaration(record.definition)


def resolver(tx: Tx) -> Callable[[ActionTypeId], ActionType | None]:
    """Look types up in the catalog, then among the stored ones that are not deleted."""
    cache: dict[ActionTypeId, ActionType | None] = {}

    def resolve(type_id: ActionTypeId) -> ActionType | None:
        found = builtin_action_type(type_id)
        if found is not None or type_id.owner == ActionOwner.AWS:
            return found
        if type_id not in cache:
            record = tx.action_types.get(type_id)
            cache[type_id] = None if record is None or record.deleted else _action_type(record)
        return cache[type_id]

    return resolve


def secret_names(tx: Tx) -> Callable[[ActionTypeId], frozenset[str]]:
    resolve = resolver(tx)

    def names(type_id: ActionTypeId) -> frozenset[str]:
        found = resolve(type_id)
        return found.secret_names if found is not None else frozenset()

    return names


@dataclass(frozen=True, slots=True)
class CreatedType:
    action_type: ActionType
    tags: dict[str, str]


class ActionTypeService:
    def __init__(
        self, store: Store, scope: Scope, clock: Clock, *, max_custom: int | None, max_tags: int
    ) -> None:
        self._store = store
        self._scope = scope
        self._clock = clock
        self._max_custom = max_custom
        self._max_tags = max_tags

    def all(self, owner: str | None = None) -> list[ActionType]:
        """Every type, built-in first, in a stable order."""
        builtin = [t for t in BUILTIN_ACTION_TYPES if owner in (None, t.id.owner)]
        with self._store.read() as tx:
            stored = [_action_type(r) for r in tx.action_types.all(owner)]
        return builtin + stored

    def get(self, type_id: ActionTypeId) -> ActionType:
        with self._store.read() as tx:
            found = resolver(tx)(type_id)
        if found is None:
            raise ActionTypeNotFoundException(f"Action type {type_id} does not exist.")
        return found

    def create_custom(
        self, type_id: ActionTypeId, definition: Mapping[str, Any], tags: list[tuple[str, str]]
    ) -> CreatedType:
        action_type = from_custom(type_id, definition)
        _raise_problems(action_type)
        arn = self._scope.action_type(type_id)
        now = self._clock.now()
        with self._store.write() as tx:
            existing = tx.action_types.get(type_id)
            if existing is not None and existing.definition != dict(definition):
                state = "a deleted" if existing.deleted else "an existing"
                raise ValidationException(
                    f"Action type {type_id} is already used by {state} action type with a "
                    "different definition; declare it with a new version."
                )
            active = existing is not None and not existing.deleted
            if (
                not active
                and self._max_custom is not None
                and tx.action_types.count(ActionOwner.CUSTOM) >= self._max_custom
            ):
                raise LimitExceededException(
                    f"The account already has {self._max_custom} custom action types, the limit."
                )
            current = tx.tags.of(arn) if active else {}
            additions = merged_tags(arn, current, tags, self._max_tags)
            if not active:
                tx.tags.clear(arn)
            tx.action_types.put(type_id, dict(definition), now)
            tx.tags.put(arn, additions)
            return CreatedType(action_type, tx.tags.of(arn))

    def delete_custom(self, type_id: ActionTypeId) -> None:
        """Mark the type deleted; deleting what is not there is not an error."""
        with self._store.write() as tx:
            if tx.action_types.mark_deleted(type_id, self._clock.now()):
                tx.tags.clear(self._scope.action_type(type_id))

    def update_declared(self, declaration: Mapping[str, Any]) -> None:
        """Store a third-party type's declaration, registering it the first time."""
        action_type = from_declaration(declaration)
        type_id = action_type.id
        if type_id.owner == ActionOwner.AWS and builtin_action_type(type_id) is None:
            raise ActionTypeNotFoundException(f"Action type {type_id} does not exist.")
        if builtin_action_type(type_id) is not None:
            raise RequestFailedException(
                f"Action type {type_id} is built into Conveyor and cannot be changed."
            )
        _raise_problems(action_type)
        with self._store.write() as tx:
            tx.action_types.put(type_id, dict(declaration), self._clock.now())


def _raise_problems(action_type: ActionType) -> None:
    problems = check_definition(action_type)
    if problems:
        raise ValidationException(" ".join(problems))
