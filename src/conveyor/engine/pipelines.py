"""Pipelines: create, read any version, update, delete and list, with their rules applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.domain.arn import Scope
from conveyor.domain.declaration import (
    Declaration,
    leftover_masks,
    masked,
    normalized,
    restore_secrets,
    sealed,
)
from conveyor.domain.errors import (
    InvalidActionDeclarationException,
    LimitExceededException,
    PipelineNameInUseException,
    PipelineNotFoundException,
    PipelineVersionNotFoundException,
)
from conveyor.domain.pipeline import ExecutionMode, parse_pipeline
from conveyor.domain.structure import check, effective_type
from conveyor.domain.tags import merged_tags
from conveyor.engine import lookup
from conveyor.engine.actiontypes import resolver, secret_names
from conveyor.engine.clock import Clock
from conveyor.engine.executions import ExecutionService
from conveyor.engine.runner import Outcome
from conveyor.store import DuplicateKey, PipelineRecord, Store, Tx


@dataclass(frozen=True, slots=True)
class PipelineView:
    """A pipeline version as read back: masked declaration plus metadata."""

    declaration: Declaration
    arn: str
    created: float
    updated: float


@dataclass(frozen=True, slots=True)
class CreatedPipeline:
    declaration: Declaration
    tags: dict[str, str]


class PipelineService:
    def __init__(
        self,
        store: Store,
        scope: Scope,
        clock: Clock,
        *,
        max_pipelines: int | None,
        max_tags: int,
        executions: ExecutionService,
    ) -> None:
        self._executions = executions
        self._store = store
        self._scope = scope
        self._clock = clock
        self._max_pipelines = max_pipelines
        self._max_tags = max_tags

    def create(
        self,
        declaration: Mapping[str, Any],
        tags: list[tuple[str, str]],
        *,
        caller: str | None = None,
        start: bool = True,
    ) -> CreatedPipeline:
        """Store a new pipeline and, as CodePipeline does, start its first execution."""
        created = self._create(declaration, tags)
        if start:
            self._executions.start(
                declaration["name"], trigger_type="CreatePipeline", trigger_detail=caller
            )
        return created

    def _create(
        self, declaration: Mapping[str, Any], tags: list[tuple[str, str]]
    ) -> CreatedPipeline:
        name = declaration["name"]
        arn = self._scope.pipeline(name)
        with self._store.write() as tx:
            if tx.pipelines.get(name) is not None:
                raise PipelineNameInUseException(
                    f"A pipeline with the name '{name}' already exists in account "
                    f"'{self._scope.account}'."
                )
            stored = self._accept(tx, declaration, version=1, previous=None)
            if self._max_pipelines is not None and tx.pipelines.count() >= self._max_pipelines:
                raise LimitExceededException(
                    f"The account already has {self._max_pipelines} pipelines, the limit."
                )
            additions = merged_tags(arn, {}, tags, self._max_tags)
            try:
                tx.pipelines.insert(
                    name,
                    self._at_rest(tx, stored),
                    stored["pipelineType"],
                    stored["executionMode"],
                    self._clock.now(),
                )
            except DuplicateKey as exc:  # pragma: no cover - a race with another writer
                raise PipelineNameInUseException(f"Pipeline '{name}' already exists.") from exc
            tx.tags.clear(arn)
            tx.tags.put(arn, additions)
            return CreatedPipeline(masked(stored, secret_names(tx)), tx.tags.of(arn))

    def get(self, name: str, version: int | None = None) -> PipelineView:
        with self._store.read() as tx:
            record = self._existing(tx, name)
            wanted = record.version if version is None else version
            declaration = tx.pipelines.declaration(record.id, wanted)
            if declaration is None:
                raise PipelineVersionNotFoundException(
                    f"Pipeline '{name}' has no version {wanted}; its latest version is "
                    f"{record.version}."
                )
            return PipelineView(
                masked(declaration, secret_names(tx)),
                self._scope.pipeline(name),
                record.created,
                record.updated,
            )

    def update(self, declaration: Mapping[str, Any]) -> Declaration:
        """A new version of the pipeline named in the declaration; the name itself never changes.

        Executions of earlier versions finish the actions they are running, start nothing new
        and end ``Cancelled``; new executions run the new version.
        """
        updated = self._update(declaration)
        self._executions.advance(declaration["name"])
        return updated

    def _update(self, declaration: Mapping[str, Any]) -> Declaration:
        name = declaration["name"]
        with self._store.write() as tx:
            record = self._existing(tx, name, lock=True)
            previous = tx.pipelines.declaration(record.id, record.version) or {}
            stored = self._accept(tx, declaration, version=record.version + 1, previous=previous)
            updated = tx.pipelines.add_version(
                record,
                self._at_rest(tx, stored),
                stored["pipelineType"],
                stored["executionMode"],
                self._clock.now(),
            )
            if updated is None:  # pragma: no cover - the row lock makes this unreachable
                raise PipelineNotFoundException(f"Pipeline '{name}' changed during the update.")
            return masked(stored, secret_names(tx))

    def _at_rest(self, tx: Tx, declaration: Declaration) -> Declaration:
        """The declaration as stored: its secret values sealed, when there is a key."""
        box = self._store.box
        return declaration if box is None else sealed(declaration, secret_names(tx), box.seal)

    def delete(self, name: str) -> None:
        """Remove the pipeline, its versions, executions and tags; no error when there is none.

        Jobs still running for it are cancelled.
        """
        with self._store.write() as tx:
            record = tx.pipelines.get(name, lock=True)
            running = tx.jobs.active_of_pipeline(record.id) if record else []
            if tx.pipelines.delete(name):
                tx.tags.clear(self._scope.pipeline(name))
        self._executions.after_commit(Outcome(cancelled_jobs=running))

    def page(self, after: str | None, limit: int) -> tuple[list[PipelineRecord], str | None]:
        """Up to ``limit`` pipelines by name after ``after``, and where the next page starts."""
        with self._store.read() as tx:
            rows = tx.pipelines.page(after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].name if more else None)

    def _existing(self, tx: Tx, name: str, *, lock: bool = False) -> PipelineRecord:
        return lookup.pipeline(tx, self._scope, name, lock=lock)

    def _accept(
        self,
        tx: Tx,
        declaration: Mapping[str, Any],
        *,
        version: int,
        previous: Mapping[str, Any] | None,
    ) -> Declaration:
        """The declaration to store, or the first structural problem raised."""
        secrets = secret_names(tx)
        if previous is not None:
            declaration = restore_secrets(declaration, previous, secrets)
        for stage, action, prop in leftover_masks(declaration, secrets):
            raise InvalidActionDeclarationException(
                f'Action configuration for the new action "{action}" in stage "{stage}" '
                f'contains an invalid configuration for the secret property "{prop}". '
                '"****" may be used in secret properties only when updating an existing action.'
            )
        pipeline = parse_pipeline(declaration)
        problems = check(pipeline, resolver(tx), self._scope.region)
        if problems:
            first = problems[0]
            same = [p.message for p in problems if p.error is first.error]
            raise first.error(" ".join(same))
        return normalized(
            declaration,
            version=version,
            pipeline_type=effective_type(pipeline),
            execution_mode=pipeline.execution_mode or ExecutionMode.SUPERSEDED,
        )
