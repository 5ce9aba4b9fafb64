"""``conveyor build [PATH]``: one CodeBuild build of a folder, here and now, with no server.

The folder is zipped as the build's primary source and built by the same CodeBuild provider
pipelines use: its ``buildspec.yml`` (or ``--buildspec``, a file or inline YAML), CodeBuild's
phases and variables, ``--env`` values on top. The log streams to the terminal; on a terminal
the phases are drawn live beneath it. ``--output DIR`` unpacks the buildspec's artifacts there.
Build numbers and the buildspec's ``cache`` are kept under ``$XDG_CACHE_HOME/conveyor/build``.
Exit status 0 when the build succeeded, 1 when it did not, 130 when Ctrl-C stopped it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from conveyor.config import Settings, SettingsError, load_settings
from conveyor.domain.builds import BuildStart, ReportResult, Timeline

if TYPE_CHECKING:  # the provider is imported only once a build starts
    from conveyor.actions.base import JobContext, JobResult, ProviderConfig

_BUCKET = "conveyor-build"
_STYLES = {"SUCCEEDED": "green", "FAILED": "red", "STOPPED": "yellow", "TIMED_OUT": "red"}


def _project_name(folder: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "-", folder.resolve().name).strip("-_")
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{1,254}", name) else "local-build"


def _cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conveyor" / "build"


def _variables(values: Sequence[str]) -> list[dict[str, str]]:
    found = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint="--env")
        found.append({"name": name, "value": rest, "type": "PLAINTEXT"})
    return found


def _buildspec(given: str | None, folder: Path) -> str | None:
    """A buildspec file outside the folder is passed inline; a path inside it, as a path."""
    if not given:
        return None
    path = Path(given)
    if path.is_file():
        inside = path.resolve().is_relative_to(folder.resolve())
        if inside:
            return str(path.resolve().relative_to(folder.resolve()))
        return path.read_text(encoding="utf-8")
    return given


class Phases:
    """The build's recorder for the terminal: keeps the timeline and redraws it."""

    def __init__(self, live: Live | None) -> None:
        self.live = live
        self.timeline = Timeline()
        self.status: str | None = None
        self.reports: Sequence[ReportResult] = ()
        self.exported: Mapping[str, str] = {}

    def started(self, build: BuildStart) -> Timeline:
        now = time.time()
        if not self.timeline.phases:
            self.timeline = Timeline().enter("SUBMITTED", now).enter("PROVISIONING", now)
        return self.timeline

    def progressed(self, build_id: str, timeline: Timeline) -> None:
        self.timeline = timeline
        self.draw()

    def finished(
        self,
        build_id: str,
        status: str,
        timeline: Timeline,
        exported: Mapping[str, str],
        reports: Sequence[ReportResult],
        artifacts: Mapping[str, Any] | None = None,
    ) -> None:
        self.timeline, self.status = timeline, status
        self.exported, self.reports = exported, reports
        self.draw()

    def table(self) -> Table:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        now = time.time()
        for phase in self.timeline.phases:
            if phase.name == "COMPLETED":
                continue
            status = phase.status or "IN_PROGRESS"
            seconds = (phase.end or now) - phase.start
            table.add_row(
                Text(phase.name),
                Text(status, style=_STYLES.get(status, "cyan")),
                Text(f"{seconds:.1f} s", style="dim"),
            )
        return table

    def draw(self) -> None:
        if self.live is not None:
            self.live.update(Group(Text("Phases", style="bold"), self.table()))


class _ConsoleLog:
    """The build log, written to the terminal (above the live phases, when drawn)."""

    def __init__(self, console: Console, live: Live | None, plain: TextIO) -> None:
        self.console, self.live, self.plain = console, live, plain
        self.partial = ""

    def write(self, text: str) -> int:
        if self.live is None:
            self.plain.write(text)
            return len(text)
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.console.print(Text(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        if self.live is None:
            self.plain.flush()


def _summary(console: Console, phases: Phases, elapsed: float) -> None:
    status = phases.status or "FAILED"
    console.print(Text(f"Build {status} in {elapsed:.1f} s", style=_STYLES.get(status, "")))
    if phases.live is None:
        console.print(phases.table())
    for report in phases.reports:
        counts = report.status_counts
        console.print(
            f"Report {report.group}: {len(report.cases)} tests, "
            f"{counts['SUCCEEDED']} succeeded, {counts['FAILED'] + counts['ERROR']} failed, "
            f"{counts['SKIPPED']} skipped"
        )
    for name, value in phases.exported.items():
        console.print(f"Exported {name}={value}")


@click.command("build")
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--buildspec", help="A buildspec file, or inline YAML [default: buildspec.yml].")
@click.option("--env", "-e", "env", multiple=True, help="NAME=VALUE, over the buildspec's env.")
@click.option("--project", help="The project name the build uses [default: the folder's].")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Unpack the buildspec's artifacts into this folder.",
)
def build(
    path: Path,
    buildspec: str | None,
    env: tuple[str, ...],
    project: str | None,
    output: Path | None,
) -> None:
    """Run one CodeBuild build of PATH here, as CodeBuild would run its buildspec."""
    from conveyor.actions.base import ArtifactLocation, JobContext, OutputArtifact
    from conveyor.artifacts.archive import pack, unpack
    from conveyor.artifacts.local import LocalBuckets

    try:
        settings = load_settings({}, os.environ)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configuration = _configuration(project or _project_name(path), buildspec, path, env)
    console = Console(stderr=False, highlight=False)
    live = Live(console=console, auto_refresh=True) if console.is_terminal else None
    phases = Phases(live)
    scratch = Path(tempfile.mkdtemp(prefix="conveyor-build-"))
    build_uuid = str(uuid.uuid4())
    try:
        buckets = LocalBuckets(scratch / "buckets")
        archive = scratch / "source.zip"
        pack(path, archive)
        buckets.put(_BUCKET, "source.zip", archive)
        archive.unlink()
        (scratch / "workspace").mkdir()
        context = JobContext(
            job_id=build_uuid,
            pipeline_name="local",
            pipeline_execution_id="",
            stage_name="",
            action_name="build",
            action_execution_id=build_uuid,
            configuration=configuration,
            input_artifacts=(ArtifactLocation("source", _BUCKET, "source.zip"),),
            output_artifacts=(OutputArtifact("output", _BUCKET, "output.zip"),) if output else (),
            artifacts=buckets,
            workspace=scratch / "workspace",
            log=_ConsoleLog(console, live, sys.stdout),  # type: ignore[arg-type]
            cancelled=threading.Event(),
            region=settings.region,
        )
        started = time.monotonic()
        result, interrupted = _watch(context, _config(settings, phases), live)
        _summary(console, phases, time.monotonic() - started)
        succeeded = bool(result is not None and result.succeeded)
        if not succeeded and result is not None and result.message and phases.status is None:
            console.print(result.message)
        if succeeded and output is not None:
            output.mkdir(parents=True, exist_ok=True)
            buckets.get(_BUCKET, "output.zip", scratch / "output.zip")
            count = unpack(scratch / "output.zip", output)
            console.print(f"Artifacts: {count} entries in {output}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(130 if interrupted else 0 if succeeded else 1)


def _configuration(
    name: str, buildspec: str | None, folder: Path, env: Sequence[str]
) -> dict[str, str]:
    """The CodeBuild action configuration the options make."""
    configuration = {"ProjectName": name}
    spec = _buildspec(buildspec, folder)
    if spec:
        configuration["BuildspecOverride"] = spec
    variables = _variables(env)
    if variables:
        configuration["EnvironmentVariables"] = json.dumps(variables)
    return configuration


def _config(settings: Settings, phases: Phases) -> ProviderConfig:
    from conveyor.actions.base import ProviderConfig

    home = _cache_home()
    home.mkdir(parents=True, exist_ok=True)
    return ProviderConfig(
        home=home,
        region=settings.region,
        account=settings.account,
        repositories=settings.repositories,
        secrets=settings.secrets_file or (settings.home / "secrets.yaml"),
        cache=home / "cache",
        builds=phases,
    )


def _watch(
    context: JobContext, config: ProviderConfig, live: Live | None
) -> tuple[JobResult | None, bool]:
    """Run the build in a thread until it ends; Ctrl-C stops it. (result, interrupted)."""
    from conveyor.actions.codebuild import CodeBuild

    result: list[JobResult] = []
    runner = threading.Thread(
        target=lambda: result.append(CodeBuild(config).run(context)), daemon=True
    )
    interrupted = False
    if live is not None:
        live.start()
    try:
        runner.start()
        while runner.is_alive():
            try:
                runner.join(0.2)
            except KeyboardInterrupt:
                interrupted = True
                context.cancelled.set()
    finally:
        if live is not None:
            live.stop()
    for callback in context.when_done:
        callback()
    return (result[0] if result else None), interrupted


def register(group: click.Group) -> None:
    """Add ``build`` to ``group``."""
    group.add_command(build)
