"""The operation table: one handler function per operation, named in botocore's snake_case.

An operation of the model without a handler is routed all the same and answers
``UnsupportedOperationException`` naming it.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType

from conveyor.api.context import Handler
from conveyor.api.handlers import (
    actiontypes,
    codebuild,
    executions,
    jobs,
    notifications,
    pipelines,
    revisions,
    tags,
    trail,
    webhooks,
)
from conveyor.api.model import CLOUDTRAIL, CODEBUILD, NOTIFICATIONS, operation_names, snake_case

MODULES: tuple[ModuleType, ...] = (
    pipelines,
    tags,
    actiontypes,
    codebuild,
    executions,
    jobs,
    webhooks,
    revisions,
)


@cache
def handlers() -> dict[str, Handler]:
    """Operation name → handler, for every operation that has one."""
    by_snake = {snake_case(name): name for name in operation_names()}
    table: dict[str, Handler] = {}
    for module in MODULES:
        for attr, value in vars(module).items():
            if attr in by_snake and callable(value) and value.__module__ == module.__name__:
                table[by_snake[attr]] = value
    return table


@cache
def trail_handlers() -> dict[str, Handler]:
    """The CloudTrail operations served on the same endpoint: the audit trail's lookup."""
    return (
        {"LookupEvents": trail.lookup_events}
        if "LookupEvents" in operation_names(CLOUDTRAIL)
        else {}
    )


@cache
def codebuild_handlers() -> dict[str, Handler]:
    """The CodeBuild operations served on the same endpoint: build projects."""
    return {
        name: handler
        for name, handler in codebuild.HANDLERS.items()
        if name in operation_names(CODEBUILD)
    }


@cache
def notification_handlers() -> dict[str, Handler]:
    """The CodeStar Notifications operations served on the same endpoint: notification rules."""
    return {
        name: handler
        for name, handler in notifications.HANDLERS.items()
        if name in operation_names(NOTIFICATIONS)
    }
