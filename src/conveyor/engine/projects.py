"""CodeBuild projects: creating, redefining, deleting, reading and listing them.

A project's name is unique; BatchGetProjects takes names or ARNs and answers those it does
not find apart, in ``projectsNotFound``. ListProjects pages names in the order asked for.
`project_finder` is how builds find the project an action names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.domain.arn import Scope
from conveyor.domain.errors import ResourceAlreadyExistsException, ResourceNotFoundException
from conveyor.domain.projects import (
    BuildProject,
    build_project,
    check_project,
    definition_of,
    updated,
)
from conveyor.engine.clock import Clock
from conveyor.store import DuplicateKey, ProjectRecord, Store

PAGE = 100


@dataclass(frozen=True, slots=True)
class ProjectView:
    record: ProjectRecord
    arn: str

    def wire(self) -> dict[str, Any]:
        """The wire ``Project``."""
        record = self.record
        return {
            "name": record.name,
            "arn": self.arn,
            **record.definition,
            "created": record.created,
            "lastModified": record.updated,
        }


class ProjectService:
    def __init__(self, store: Store, scope: Scope, clock: Clock) -> None:
        self._store = store
        self._scope = scope
        self._clock = clock

    def _view(self, record: ProjectRecord) -> ProjectView:
        return ProjectView(record, self._scope.codebuild_project(record.name))

    def create(self, params: Mapping[str, Any]) -> ProjectView:
        name = params["name"]
        definition = definition_of(params)
        check_project(definition)
        now = self._clock.now()
        record = ProjectRecord(name, definition, now, now)
        exists = ResourceAlreadyExistsException(f"Project already exists: {name}")
        try:
            with self._store.write() as tx:
                if tx.projects.get(name) is not None:
                    raise exists
                tx.projects.insert(record)
        except DuplicateKey:
            raise exists from None
        return self._view(record)

    def update(self, params: Mapping[str, Any]) -> ProjectView:
        name = self._name_of(params["name"])
        with self._store.write() as tx:
            record = tx.projects.get(name)
            if record is None:
                raise ResourceNotFoundException(f"Project not found: {name}")
            definition = updated(record.definition, params)
            check_project(definition)
            now = self._clock.now()
            tx.projects.redefine(name, definition, now)
        return self._view(ProjectRecord(name, definition, record.created, now))

    def delete(self, name: str) -> None:
        """Deleting a project that does not exist succeeds, as in CodeBuild."""
        with self._store.write() as tx:
            tx.projects.delete(self._name_of(name))

    def _name_of(self, reference: str) -> str:
        """A project's name, given it or its ARN."""
        prefix = self._scope.codebuild_project("")
        return reference.removeprefix(prefix) if reference.startswith(prefix) else reference

    def batch_get(self, references: Sequence[str]) -> tuple[list[ProjectView], list[str]]:
        """The projects found, in the order asked, and the references not found."""
        unique = list(dict.fromkeys(references))
        names = {reference: self._name_of(reference) for reference in unique}
        with self._store.read() as tx:
            found = tx.projects.get_many(sorted(set(names.values())))
        views = [self._view(found[names[r]]) for r in unique if names[r] in found]
        return views, [r for r in unique if names[r] not in found]

    def page(
        self, sort_by: str, descending: bool, after: tuple[Any, str] | None
    ) -> tuple[list[str], tuple[Any, str] | None]:
        """A page of names, and where the next begins (None: this is the last)."""
        with self._store.read() as tx:
            rows = tx.projects.page(sort_by, descending, after, PAGE + 1)
        page = rows[:PAGE]
        return [name for _, name in page], page[-1] if len(rows) > PAGE else None


def project_finder(store: Store) -> Callable[[str], BuildProject | None]:
    """What builds of this installation know of a project, by name: None when there is none."""

    def find(name: str) -> BuildProject | None:
        with store.read() as tx:
            record = tx.projects.get(name)
        return None if record is None else build_project(record.name, record.definition)

    return find
