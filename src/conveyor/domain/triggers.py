"""Which source actions a change starts: default change detection and V2 triggers, pure.

`watches` reads a pipeline's declaration into one `Watch` per source action that detects
changes at all. Default detection follows each provider's switch: ``PollForSourceChanges``
(CodeCommit, S3: the string ``"false"`` turns it off, absent means on) or ``DetectChanges``
(CodeStarSourceConnection and Conveyor's Git: ``"false"`` turns it off). A V2 trigger on a
connection source replaces its default detection: without filters it follows the action's
``BranchName`` as default detection does; with filters only the changes its filters let
through count, on any branch or tag. ``DetectChanges: false`` turns both off.

`decide` says whether one change (a push of a ref, or a pull-request event) starts an
execution for a watch, and with what: the revision to pin, a ``triggerDetail`` naming the
change, output variables for the source action, and an idempotency token derived from the
change, so that the same change never starts two executions however often it is seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from conveyor.domain.gitfilters import (
    GitConfiguration,
    PullRequestEvent,
    pull_request_matches,
    push_matches,
)
from conveyor.domain.pipeline import Pipeline

HEADS = "refs/heads/"
TAGS = "refs/tags/"
MAX_DETAIL = 1024
CONNECTION = "CodeStarSourceConnection"
# Source providers and the configuration switch of their default change detection.
SWITCHES = {
    "CodeCommit": "PollForSourceChanges",
    "S3": "PollForSourceChanges",
    CONNECTION: "DetectChanges",
    "Git": "DetectChanges",
}
GIT_PROVIDERS = frozenset({"CodeCommit", CONNECTION, "Git"})


@dataclass(frozen=True, slots=True)
class Watch:
    """One source action whose changes start executions."""

    action: str
    provider: str
    configuration: Mapping[str, str]
    trigger: GitConfiguration | None = None

    @property
    def branch(self) -> str:
        return self.configuration.get("BranchName", "").strip() or (
            "main" if self.provider == "Git" else ""
        )

    @property
    def every_ref(self) -> bool:
        """Whether changes to any branch or tag may count, not only the action's branch."""
        return self.trigger is not None and self.trigger.filtered

    @property
    def is_git(self) -> bool:
        return self.provider in GIT_PROVIDERS


@dataclass(frozen=True, slots=True)
class Push:
    """A ref that now points at ``commit``; ``files``: the paths it changed, None if unknown."""

    ref: str
    commit: str
    files: tuple[str, ...] | None = None

    @property
    def branch(self) -> str | None:
        return self.ref[len(HEADS) :] if self.ref.startswith(HEADS) else None

    @property
    def tag(self) -> str | None:
        return self.ref[len(TAGS) :] if self.ref.startswith(TAGS) else None


@dataclass(frozen=True, slots=True)
class PullRequest:
    event: PullRequestEvent
    number: str
    title: str
    source_branch: str
    destination_branch: str
    commit: str
    files: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """A new ETag or version of an S3 source's object."""

    bucket: str
    key: str
    revision: str


Change = Push | PullRequest | ObjectChange


@dataclass(frozen=True, slots=True)
class Fire:
    """One execution to start for a watch."""

    action: str
    revision: str
    detail: str
    token: str
    variables: Mapping[str, str] = field(default_factory=dict)
    revision_type: str = "COMMIT_ID"


def _on(configuration: Mapping[str, str], switch: str) -> bool:
    return configuration.get(switch, "").strip().lower() != "false"


def watches(pipeline: Pipeline) -> tuple[Watch, ...]:
    """The source actions of ``pipeline`` whose changes start executions."""
    if not pipeline.stages:
        return ()
    triggers = {t.source_action_name: t.git for t in pipeline.triggers if t.git is not None}
    found = []
    for action in pipeline.stages[0].actions:
        provider = action.type_id.provider
        switch = SWITCHES.get(provider)
        if not action.is_source or action.type_id.owner != "AWS" or switch is None:
            continue
        if not _on(action.config, switch):
            continue
        trigger = triggers.get(action.name) if provider == CONNECTION else None
        found.append(Watch(action.name, provider, dict(action.config), trigger))
    return tuple(found)


def trigger_type(watch: Watch, *, polled: bool) -> str:
    """``triggerType`` as CodePipeline sets it: connections (and V2 triggers) start by
    ``WebhookV2``; other sources by ``PollForSourceChanges`` when polled, ``CloudWatchEvent``
    when an event told of the change."""
    if watch.provider == CONNECTION:
        return "WebhookV2"
    return "PollForSourceChanges" if polled else "CloudWatchEvent"


def token(*parts: str) -> str:
    """A ``clientRequestToken`` naming one change for good."""
    return "detected-" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _detail(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def decide(watch: Watch, change: Change) -> Fire | None:
    """The execution ``change`` starts for ``watch``, or None when it starts none."""
    if isinstance(change, ObjectChange):
        if watch.is_git:
            return None
        return Fire(
            watch.action,
            change.revision,
            _detail(f"{watch.action}: s3://{change.bucket}/{change.key} {change.revision}"),
            token(watch.action, "s3", change.bucket, change.key, change.revision),
            revision_type="S3_OBJECT_VERSION_ID",
        )
    if not watch.is_git:
        return None
    if isinstance(change, Push):
        return _push(watch, change)
    return _pull_request(watch, change)


def _push(watch: Watch, push: Push) -> Fire | None:
    trigger = watch.trigger
    if trigger is None or not trigger.filtered:
        if push.branch != watch.branch:
            return None
    elif not any(
        push_matches(f, branch=push.branch, tag=push.tag, files=push.files) for f in trigger.push
    ):
        return None
    return Fire(
        watch.action,
        push.commit,
        _detail(f"{watch.action}: commit {push.commit} on {push.ref}"),
        token(watch.action, push.ref, push.commit),
        {"BranchName": push.branch} if push.branch is not None else {},
    )


def _pull_request(watch: Watch, pr: PullRequest) -> Fire | None:
    trigger = watch.trigger
    if trigger is None or not any(
        pull_request_matches(f, event=pr.event, destination=pr.destination_branch, files=pr.files)
        for f in trigger.pull_request
    ):
        return None
    title = " ".join(pr.title.split())
    detail = (
        f"{watch.action}: pull request {pr.number} {pr.event} "
        f"({pr.source_branch} -> {pr.destination_branch}) at {pr.commit}: {title}"
    )
    return Fire(
        watch.action,
        pr.commit,
        _detail(detail),
        token(watch.action, f"pull/{pr.number}", str(pr.event), pr.commit),
        {
            "BranchName": pr.source_branch,
            "PullRequestId": pr.number,
            "PullRequestTitle": title[:1000],
            "PullRequestEvent": str(pr.event),
            "SourceBranch": pr.source_branch,
            "DestinationBranch": pr.destination_branch,
        },
    )
