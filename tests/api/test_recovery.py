"""What a server that starts again says about the actions its earlier run left running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.errors import NotLatestPipelineExecutionException
from conveyor.domain.execution import RetryMode
from conveyor.engine.services import Services
from conveyor.engine.sweeper import RETRY
from conveyor.server import build
from tests.support.engine import commands, declaration, make_repo, stage

GIT = ActionTypeId("Source", "AWS", "Git", "1")
CRASHED = "Conveyor stopped while this action was running"


@pytest.fixture
def services(settings: Settings, tmp_path: Path) -> Iterator[Services]:
    """A server's services with no workers running: the test plays the dead server's worker."""
    repo = tmp_path / "repo"
    make_repo(repo)
    application = build(settings)
    try:
        pipeline = declaration(
            "app", repo, stage("Build", commands("Make", "true")), executionMode="SUPERSEDED"
        )
        application.services.pipelines.create(pipeline, [])
        yield application.services
    finally:
        application.close()


def crash_in_source(services: Services, newer: bool) -> tuple[str, str]:
    """The first execution's Source job held by a dead run of node n1, then that node's next
    run recovering; ``newer``: a second execution waits for the stage meanwhile. The first
    execution's id and its Source action's error message."""
    [first] = services.views.executions("app", None, 10, None)[0]
    execution = first.id
    job = services.jobs.claim([GIT], owner="n1/dead/worker-0")
    assert job is not None
    if newer:
        services.executions.start("app", trigger_type="StartPipelineExecution", trigger_detail=None)
    assert services.sweeper.recover("n1", "alive") == 1
    with services.store.read() as tx:
        action = tx.actions.get(job.action_execution_id)
    assert action is not None and action.status == "Failed"
    return execution, action.error_message or ""


def test_a_crashed_action_says_to_retry_the_stage(services: Services) -> None:
    execution, message = crash_in_source(services, newer=False)
    assert message.startswith(CRASHED) and message.endswith(RETRY)
    services.executions.retry("app", "Source", execution, RetryMode.FAILED_ACTIONS)


def test_a_crashed_action_behind_a_newer_execution_says_to_start_one(services: Services) -> None:
    execution, message = crash_in_source(services, newer=True)
    assert message.startswith(CRASHED)
    assert "retry the stage" not in message
    assert "start a new execution" in message
    [summary] = [
        e.summary for e in services.views.executions("app", None, 10, None)[0] if e.id == execution
    ]
    assert summary is not None and "start a new execution" in summary
    with pytest.raises(NotLatestPipelineExecutionException):
        services.executions.retry("app", "Source", execution, RetryMode.FAILED_ACTIONS)
