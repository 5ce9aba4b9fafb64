"""A job's workspace goes as its job ends: at once when handing back its input's copy took it
all, in the background only when something else is left in it (a source's checkout), so the
worker wakes no other thread for an action that left nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import make_client
from tests.support.engine import commands, declaration, make_repo, stage, wait_for, wait_status


class Recording(ThreadPoolExecutor):
    """The pool's cleaner, noting what it is handed."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.handed: list[Any] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.handed.append(args[0] if args else fn)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Running]:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'db.sqlite'}", workers=1)
    with running(settings) as server:
        yield server


def test_only_a_workspace_with_something_left_in_it_is_removed_in_the_background(
    live: Running, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    pool = live.application.engine._pool
    assert pool is not None
    cleaner = pool._cleaner = Recording()
    client = make_client(live.endpoint)
    steps = stage(
        "Steps",
        commands("Read", "test -f README.md"),
        commands("Write", "echo built > out.txt", run_order=2),
    )
    client.create_pipeline(pipeline=declaration("app", repo, steps))
    summaries = client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    execution = summaries[0]["pipelineExecutionId"]
    assert wait_status(client, "app", execution, "Succeeded", "Failed") == "Succeeded"
    work = live.application.engine.settings.home / "work"
    # The Source's checkout went to the background; the steps' workspaces went with their
    # copies, even Write's, whose file was moved out of the copy as it was handed back.
    assert [Path(path).parent for path in cleaner.handed] == [work]
    wait_for(lambda: not [p for p in work.iterdir() if p.is_dir()], 10, "the workspaces to go")
