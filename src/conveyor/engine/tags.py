"""Tags on pipelines, custom action types and webhooks, addressed by ARN."""

from __future__ import annotations

from conveyor.domain.actiontype import ActionOwner
from conveyor.domain.arn import ResourceArn, ResourceKind, Scope, parse_resource_arn
from conveyor.domain.errors import ResourceNotFoundException
from conveyor.domain.tags import check_keys, merged_tags
from conveyor.engine.clock import Clock
from conveyor.store import Store, Tx


class TagService:
    def __init__(self, store: Store, scope: Scope, clock: Clock, *, max_tags: int) -> None:
        self._store = store
        self._scope = scope
        self._clock = clock
        self._max_tags = max_tags

    def of(self, arn: str) -> dict[str, str]:
        with self._store.read() as tx:
            self._require(tx, arn)
            return tx.tags.of(arn)

    def tag(self, arn: str, tags: list[tuple[str, str]]) -> None:
        with self._store.write() as tx:
            self._require(tx, arn)
            tx.tags.put(arn, merged_tags(arn, tx.tags.of(arn), tags, self._max_tags))

    def untag(self, arn: str, keys: list[str]) -> None:
        check_keys(keys)
        with self._store.write() as tx:
            self._require(tx, arn)
            tx.tags.remove(arn, keys)

    def _require(self, tx: Tx, arn: str) -> ResourceArn:
        """The parsed ARN of a resource that exists, or the error that says why not."""
        resource = parse_resource_arn(arn)
        missing = ResourceNotFoundException(f"The resource with the ARN '{arn}' does not exist.")
        if resource.scope != self._scope:
            raise missing
        if resource.kind == ResourceKind.PIPELINE:
            found = tx.pipelines.get(resource.name) is not None
        elif resource.kind == ResourceKind.ACTION_TYPE and resource.action_type is not None:
            record = tx.action_types.get(resource.action_type)
            found = (
                record is not None and not record.deleted and record.id.owner == ActionOwner.CUSTOM
            )
        elif resource.kind == ResourceKind.WEBHOOK:
            found = tx.webhooks.get(resource.name) is not None
        else:
            found = False
        if not found:
            raise missing
        return resource
