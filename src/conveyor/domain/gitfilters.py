"""V2 trigger filters (``gitConfiguration``): their values, their rules and their globs.

A trigger's ``push`` and ``pullRequest`` lists hold filters; a change counts when any filter
of its kind matches it. Within a filter every criterion given must match. A criterion has
``includes`` and ``excludes`` glob lists; a name matches when it matches no exclude and, if
there are includes, at least one include: excludes win. A file-path criterion matches a change
when at least one changed file matches it that way.

Globs follow CodePipeline's syntax: ``*`` within one path segment, ``**`` across segments,
``?`` one character, ``[...]`` and ``[!...]`` sets, ``{a,b}`` alternatives, ``\\`` escapes.

Valid combinations, as CodePipeline accepts them: a push filter has tags alone, branches
alone, or branches with file paths; a pull-request filter has branches, optionally with file
paths, and events (all three when left out). A criterion needs includes or excludes. Any
other combination is refused with CodePipeline's `InvalidStructureException` message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

INVALID_COMBINATION = (
    "The trigger configuration for the source action is not valid. Make sure to choose valid "
    "filter combinations."
)


class PullRequestEvent(StrEnum):
    OPEN = "OPEN"
    UPDATED = "UPDATED"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Criteria:
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.includes and not self.excludes

    def matches(self, name: str) -> bool:
        """Whether ``name`` is let through: no exclude matches and an include does (if any)."""
        from wcmatch import glob  # here: only trigger filters match, and it takes a while

        flags = glob.GLOBSTAR | glob.BRACE | glob.DOTGLOB
        if self.excludes and glob.globmatch(name, self.excludes, flags=flags):
            return False
        return not self.includes or glob.globmatch(name, self.includes, flags=flags)

    def any_file(self, files: Iterable[str]) -> bool:
        return any(self.matches(name) for name in files)


@dataclass(frozen=True, slots=True)
class PushFilter:
    tags: Criteria | None = None
    branches: Criteria | None = None
    file_paths: Criteria | None = None

    @property
    def valid(self) -> bool:
        parts = [c for c in (self.tags, self.branches, self.file_paths) if c is not None]
        if any(c.empty for c in parts):
            return False
        if self.tags is not None:
            return self.branches is None and self.file_paths is None
        return self.branches is not None


@dataclass(frozen=True, slots=True)
class PullRequestFilter:
    events: tuple[PullRequestEvent, ...] = tuple(PullRequestEvent)
    branches: Criteria | None = None
    file_paths: Criteria | None = None

    @property
    def valid(self) -> bool:
        parts = [c for c in (self.branches, self.file_paths) if c is not None]
        return self.branches is not None and not any(c.empty for c in parts)


@dataclass(frozen=True, slots=True)
class GitConfiguration:
    source_action_name: str
    push: tuple[PushFilter, ...] = ()
    pull_request: tuple[PullRequestFilter, ...] = ()

    @property
    def filtered(self) -> bool:
        """Whether filters are given; without any the trigger follows the action's branch."""
        return bool(self.push or self.pull_request)

    @property
    def valid(self) -> bool:
        return all(f.valid for f in self.push) and all(f.valid for f in self.pull_request)


def _criteria(raw: Any) -> Criteria | None:
    if not isinstance(raw, Mapping):
        return None
    return Criteria(tuple(raw.get("includes") or ()), tuple(raw.get("excludes") or ()))


def _items(raw: Any) -> list[Mapping[str, Any]]:
    return [item for item in raw if isinstance(item, Mapping)] if isinstance(raw, list) else []


def parse_git_configuration(raw: Mapping[str, Any]) -> GitConfiguration:
    """Typed values for a ``GitConfiguration`` already checked against the model's shapes."""
    return GitConfiguration(
        source_action_name=raw["sourceActionName"],
        push=tuple(
            PushFilter(
                _criteria(f.get("tags")),
                _criteria(f.get("branches")),
                _criteria(f.get("filePaths")),
            )
            for f in _items(raw.get("push"))
        ),
        pull_request=tuple(
            PullRequestFilter(
                tuple(PullRequestEvent(e) for e in f.get("events") or ())
                or tuple(PullRequestEvent),
                _criteria(f.get("branches")),
                _criteria(f.get("filePaths")),
            )
            for f in _items(raw.get("pullRequest"))
        ),
    )


def files_match(criteria: Criteria | None, files: tuple[str, ...] | None) -> bool:
    """A file-path criterion against a change's files; unknown files (None) count as a match,
    so a change whose files cannot be listed is never missed."""
    if criteria is None or files is None:
        return True
    return criteria.any_file(files)


def push_matches(
    f: PushFilter, *, branch: str | None, tag: str | None, files: tuple[str, ...] | None
) -> bool:
    """Whether a push of ``branch`` (or of ``tag``) that changed ``files`` passes ``f``."""
    if f.tags is not None:
        return tag is not None and f.tags.matches(tag)
    if branch is None or f.branches is None or not f.branches.matches(branch):
        return False
    return files_match(f.file_paths, files)


def pull_request_matches(
    f: PullRequestFilter,
    *,
    event: PullRequestEvent,
    destination: str,
    files: tuple[str, ...] | None,
) -> bool:
    if event not in f.events:
        return False
    if f.branches is None or not f.branches.matches(destination):
        return False
    return files_match(f.file_paths, files)
