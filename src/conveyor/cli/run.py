"""``conveyor run FILE``: one execution of a pipeline on this machine, with no server.

An engine runs in the process, its state in a temporary home (or ``--home``). The pipeline is
created (or updated, when the home has it already) without starting, then one execution starts
with the ``--var`` values and ``--revision`` commits, and the command watches it through the
engine's views until it ends: exit status 0 when it succeeded, 1 when it did not, 130 when it
was stopped with Ctrl-C (the first stops it and lets running actions finish, a second abandons
them). Manual approvals are asked at the terminal, approved by ``--approve``, and rejected when
there is no terminal to ask at.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click

from conveyor.cli.documents import DocumentError
from conveyor.cli.live import Display, Row, artifact_notes, ask_approval, choose_display, rows
from conveyor.cli.localsource import LocalSourceError, prepare
from conveyor.config import Settings, SettingsError, load_settings
from conveyor.domain.errors import ConveyorError, PipelineNameInUseException
from conveyor.domain.status import ACTIVE_EXECUTION
from conveyor.engine.services import Services
from conveyor.home import HomeInUse
from conveyor.store import ExecutionRecord, StoreUnavailable

POLL = 0.05
INTERRUPTED = 130
CALLER = "conveyor run"
NO_TERMINAL = "No terminal to ask at: run again with --approve, or answer at a terminal"
# Settings that would make a throwaway run share state with an installation.
_SHARED = ("CONVEYOR_HOME", "CONVEYOR_DATABASE_URL", "CONVEYOR_S3_ENDPOINT")


def _pairs(values: Sequence[str], option: str, what: str) -> list[tuple[str, str]]:
    result = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected {what}, got {value!r}", param_hint=option)
        result.append((name, rest))
    return result


@dataclass
class _Interrupts:
    """Counts SIGINTs; interrupts a question being asked, and gives up at the third."""

    count: int = 0
    handled: int = 0
    asking: bool = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.asking or self.count >= 3:
            raise KeyboardInterrupt  # the third: leave now; stopping the engine kills the rest


@dataclass
class _Watch:
    """One execution being watched: answers its approvals and passes on Ctrl-C."""

    services: Services
    pipeline: str
    execution_id: str
    display: Display
    approve_all: bool
    interactive: bool
    interrupts: _Interrupts = field(default_factory=_Interrupts)
    answered: set[str] = field(default_factory=set)

    def until_done(self, logs: Path) -> tuple[list[Row], ExecutionRecord]:
        while True:
            self._interrupted()
            _, execution = self.services.views.execution(self.pipeline, self.execution_id)
            snapshot = rows(self.services.views.state(self.pipeline), self.execution_id, logs)
            if execution.status not in ACTIVE_EXECUTION:
                return snapshot, execution
            self.display.feed(snapshot, execution)
            for row in snapshot:
                waiting = row.is_approval and row.status == "InProgress"
                if waiting and row.token and row.token not in self.answered:
                    self.answered.add(row.token)
                    self._approval(row)
            time.sleep(POLL)

    def _interrupted(self) -> None:
        """Stop on the first Ctrl-C, abandon on the next (two in a row count as both)."""
        while self.interrupts.handled < self.interrupts.count:
            self.interrupts.handled += 1
            first = self.interrupts.handled == 1
            try:
                self.services.executions.stop(
                    self.pipeline,
                    self.execution_id,
                    abandon=not first,
                    reason="Stopped with Ctrl-C" if first else "Abandoned with Ctrl-C",
                )
            except ConveyorError:
                continue  # it ended meanwhile, or is already abandoning
            if first:
                self.display.message(
                    "Stopping: running actions finish first; press Ctrl-C again to abandon them.",
                    "yellow",
                )
                self._reject_waiting()
            else:
                self.display.message("Abandoning the running actions.", "yellow")

    def _reject_waiting(self) -> None:
        """A stop waits for running actions: approvals waiting for an answer are rejected."""
        state = self.services.views.state(self.pipeline)
        for row in rows(state, self.execution_id, Path()):
            if row.is_approval and row.status == "InProgress" and row.token:
                self.answered.add(row.token)
                self._answer(row, False, "Stopped with Ctrl-C")

    def _approval(self, row: Row) -> None:
        if self.interrupts.handled:
            self._answer(row, False, "Stopped with Ctrl-C")
        elif self.approve_all:
            self._answer(row, True, "Approved with --approve")
            self.display.message(f"{row.name}: approved (--approve)")
        elif not self.interactive:
            self.display.message(f"{row.name} waits for an approval. {NO_TERMINAL}.", "red")
            self._answer(row, False, NO_TERMINAL)
        else:
            self._ask(row)

    def _ask(self, row: Row) -> None:
        with self.display.paused() as console:
            self.interrupts.asking = True
            try:
                approved, comment = ask_approval(console, row)
            except KeyboardInterrupt:
                console.print()
                return  # the stop that follows rejects it
            finally:
                self.interrupts.asking = False
        self._answer(row, approved, comment or ("Approved" if approved else "Rejected"))

    def _answer(self, row: Row, approved: bool, summary: str) -> None:
        try:
            self.services.executions.approve(
                self.pipeline,
                row.stage,
                row.action,
                row.token or "",
                approved=approved,
                summary=summary,
                caller=CALLER,
            )
        except ConveyorError as exc:  # answered or timed out meanwhile
            self.display.message(f"{row.name}: {exc.message}", "yellow")


def _settings(home: Path, temporary: bool) -> Settings:
    environ = {k: v for k, v in os.environ.items() if not (temporary and k in _SHARED)}
    try:
        return load_settings({"home": str(home)}, environ)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _install(services: Services, declaration: dict[str, Any]) -> None:
    """Create the pipeline, or update it when this home has it already."""
    try:
        services.pipelines.create(declaration, [], start=False)
    except PipelineNameInUseException:
        services.pipelines.update(declaration)


def execute(
    file: Path,
    *,
    variables: list[tuple[str, str]],
    sources: list[tuple[str, str]],
    revisions: list[tuple[str, str]],
    approve: bool,
    home: Path | None,
    keep: bool,
) -> int:
    """Run the pipeline in ``file`` once; the exit status for the command."""
    from conveyor.server import build

    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-run-")))
        try:
            declaration = prepare(file, sources, revisions, scratch / "sources")
        except DocumentError as exc:
            raise click.ClickException(str(exc)) from exc
        except LocalSourceError as exc:
            raise click.BadParameter(str(exc), param_hint=exc.option) from exc
        temporary = home is None
        if home is None:
            home = Path(tempfile.mkdtemp(prefix="conveyor-home-"))
            if not keep:
                stack.callback(shutil.rmtree, home, ignore_errors=True)
        try:
            application = build(_settings(home, temporary=temporary))
        except (StoreUnavailable, HomeInUse) as exc:
            raise click.ClickException(str(exc)) from exc
        stack.callback(application.close)
        application.engine.start()
        stack.callback(application.engine.stop)
        services = application.services
        try:
            _install(services, declaration)
            execution_id = services.executions.start(
                declaration["name"],
                trigger_type="StartPipelineExecution",
                trigger_detail=CALLER,
                variables=[{"name": n, "value": v} for n, v in variables],
                source_revisions=[
                    {"actionName": a, "revisionType": "COMMIT_ID", "revisionValue": c}
                    for a, c in revisions
                ],
            )
        except ConveyorError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from exc
        names = [f"{s['name']}/{a['name']}" for s in declaration["stages"] for a in s["actions"]]
        display = choose_display(f"{declaration['name']} {execution_id}", names)
        watch = _Watch(
            services,
            declaration["name"],
            execution_id,
            display,
            approve_all=approve,
            interactive=sys.stdin.isatty(),
        )
        previous = signal.signal(signal.SIGINT, watch.interrupts)
        stack.callback(signal.signal, signal.SIGINT, previous)
        try:
            snapshot_rows, execution = watch.until_done(home / "logs")
        except BaseException:
            display.stop()
            raise
        display.close(snapshot_rows, execution, artifact_notes(home, kept=keep or not temporary))
        if keep and temporary:
            display.message(f"Kept the home: {home}")
        if watch.interrupts.count:
            return INTERRUPTED
        return 0 if execution.status == "Succeeded" else 1


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a pipeline variable (repeatable).",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="ACTION=PATH",
    help="Use a local folder as it is now, uncommitted changes included, as the "
    "output of the source action ACTION (repeatable).",
)
@click.option(
    "--revision",
    "revisions",
    multiple=True,
    metavar="ACTION=COMMIT",
    help="Run the source action ACTION at an older commit (repeatable).",
)
@click.option("--approve", is_flag=True, help="Approve every manual approval.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep state in this folder [default: a temporary folder, removed after].",
)
@click.option("--keep", is_flag=True, help="Keep the temporary home and print where it is.")
def run(
    file: Path,
    variables: tuple[str, ...],
    sources: tuple[str, ...],
    revisions: tuple[str, ...],
    approve: bool,
    home: Path | None,
    keep: bool,
) -> None:
    """Run one execution of the pipeline in FILE here, with no server; exit 0 if it succeeded."""
    try:
        status = execute(
            file,
            variables=_pairs(variables, "--var", "NAME=VALUE"),
            sources=_pairs(sources, "--source", "ACTION=PATH"),
            revisions=_pairs(revisions, "--revision", "ACTION=COMMIT"),
            approve=approve,
            home=home,
            keep=keep,
        )
    except KeyboardInterrupt:
        status = INTERRUPTED
    click.get_current_context().exit(status)


def register(group: click.Group) -> None:
    """Add ``run`` to the ``conveyor`` command group."""
    group.add_command(run)
