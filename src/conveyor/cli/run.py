"""``conveyor run FILE``: one execution of a pipeline on this machine, with no server.

An engine runs in the process, its state in a temporary home (or ``--home``). The pipeline is
created (or updated, when the home has it already) without starting, then one execution starts
with the ``--var`` values and ``--revision`` commits, and the command watches it through the
engine's views until it ends (`conveyor.cli.watch`): exit status 0 when it succeeded, 1 when
it did not, 130 when it was stopped with Ctrl-C (the first stops it and lets running actions
finish, a second abandons them), 143 when SIGTERM abandoned it. Manual approvals are asked at
the terminal, approved by ``--approve``, and rejected when there is no terminal to ask at.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.watch import CALLER, INTERRUPTED, Signals, Wakeup, Watch, signals_handled
from conveyor.config import Settings, SettingsError, load_settings
from conveyor.domain.errors import ConveyorError, PipelineNameInUseException

if TYPE_CHECKING:  # the engine (and SQLAlchemy) is imported only once a run starts
    from conveyor.engine.services import Services

# Seconds the display waits, unless woken, before it loads: the first actions start meanwhile.
FIRST_ACTIONS = 0.2
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


class _CollectorPaused:
    """Python's cycle collector paused, from the start of a run until its display is up.

    Start-up imports and builds hundreds of thousands of objects that stay alive, and the
    collector would walk all of them again and again while they pile up (a tenth of the time
    to the first action on this machine); it frees nothing there. It resumes once the run is
    under way, and on any error before."""

    def __init__(self) -> None:
        self._paused = gc.isenabled()
        gc.disable()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            gc.enable()


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


def _start(
    services: Services,
    declaration: dict[str, Any],
    variables: list[tuple[str, str]],
    revisions: list[tuple[str, str]],
) -> str:
    """Install the pipeline and start its execution; the execution's id."""
    try:
        _install(services, declaration)
        return services.executions.start(
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


def _engine(stack: ExitStack, settings: Settings) -> Services:
    """The engine of ``settings``, started; ``stack`` stops it, then closes its store."""
    from conveyor.home import HomeInUse
    from conveyor.store import StoreUnavailable
    from conveyor.worker.embedded import assemble  # the engine without the HTTP stack

    try:
        application = assemble(settings)
    except (StoreUnavailable, HomeInUse) as exc:
        raise click.ClickException(str(exc)) from exc
    stack.callback(application.close)
    application.engine.start()
    stack.callback(application.engine.stop)
    return application.services


# What `rehearse` reads, installs and starts: a source and an action, as most runs begin.
_REHEARSAL = {
    "pipeline": {
        "name": "rehearsal",
        "pipelineType": "V2",
        "stages": [
            {
                "name": "Source",
                "actions": [
                    {
                        "name": "Source",
                        "actionTypeId": {
                            "category": "Source",
                            "owner": "AWS",
                            "provider": "Git",
                            "version": "1",
                        },
                        "configuration": {"RepositoryUrl": "repo", "BranchName": "main"},
                        "outputArtifacts": [{"name": "Src"}],
                    }
                ],
            },
            {
                "name": "Build",
                "actions": [
                    {
                        "name": "Build",
                        "actionTypeId": {
                            "category": "Compute",
                            "owner": "AWS",
                            "provider": "Commands",
                            "version": "1",
                        },
                        "inputArtifacts": [{"name": "Src"}],
                        "commands": ["true"],
                    }
                ],
            },
        ],
    }
}


def rehearse() -> None:
    """Do once what a run does before its engine starts (read and check a pipeline file,
    open a fresh home, install the pipeline, start its execution) in a throwaway folder, and
    forget it. A warm process (`conveyor.cli.warmhost`) does this before it forks, so that
    what the first of each costs a process (imports made on first use, the API model's data,
    the schema and statements compiled once a process) is paid there, once."""
    from conveyor.cli.localsource import prepare
    from conveyor.worker.embedded import assemble

    with tempfile.TemporaryDirectory(prefix="conveyor-rehearsal-") as name:
        folder = Path(name)
        file = folder / "pipeline.yaml"
        file.write_text(json.dumps(_REHEARSAL))  # JSON is YAML: read as a YAML file is
        declaration = prepare(file, [], [], folder / "sources")
        application = assemble(_settings(folder / "home", temporary=True))
        try:
            _start(application.services, declaration, [], [])
        finally:
            application.close()


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
    with ExitStack() as stack:
        collector = _CollectorPaused()
        stack.callback(collector.resume)
        from conveyor.cli.documents import DocumentError  # here: reading files imports yaml
        from conveyor.cli.localsource import LocalSourceError, prepare

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
        settings = _settings(home, temporary=temporary)
        # From here a stop signal stops the execution, and the engine kills what runs.
        signals, wakeup = Signals(), Wakeup()
        stack.callback(wakeup.close)  # last: the engine's threads may still wake it
        stack.enter_context(signals_handled(signals, wakeup))
        services = _engine(stack, settings)
        execution_id = _start(services, declaration, variables, revisions)
        # From here every change wakes the watch; it reads the state first anyway.
        services.notifier.on_change(wakeup)
        # The display (rich takes a while to import) waits until the workers have started the
        # first actions, or anything changed, or a signal came: importing it meanwhile would
        # hold the interpreter lock that the workers need to start them.
        wakeup.wait(FIRST_ACTIONS, None)
        from conveyor.cli.live import artifact_notes, choose_display

        names = [f"{s['name']}/{a['name']}" for s in declaration["stages"] for a in s["actions"]]
        display = choose_display(f"{declaration['name']} {execution_id}", names)
        collector.resume()
        watch = Watch(
            services,
            declaration["name"],
            execution_id,
            display,
            approve_all=approve,
            interactive=sys.stdin.isatty(),
            signals=signals,
            wakeup=wakeup,
        )
        try:
            snapshot_rows, execution = watch.until_done(settings.home / "logs")
        except BaseException:
            display.stop()
            raise
        display.close(
            snapshot_rows, execution, artifact_notes(settings.home, kept=keep or not temporary)
        )
        if keep and temporary:
            display.message(f"Kept the home: {home}")
        stopped = signals.exit_status()
        if stopped is not None:
            return stopped
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
