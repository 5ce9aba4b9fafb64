"""A build recorded as it runs: the CodeBuild provider hands its phases and its end to the
installation's recorder (here the one ``conveyor build`` draws)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from conveyor.actions.base import JobContext, ProviderConfig
from conveyor.actions.codebuild import CodeBuild
from conveyor.artifacts.local import LocalBuckets
from conveyor.cli.build import Phases


def run(tmp_path: Path, spec: str, *, time_left: float | None = None) -> Phases:
    phases = Phases(None)
    (tmp_path / "work").mkdir()
    context = JobContext(
        job_id="j",
        pipeline_name="p",
        pipeline_execution_id="e",
        stage_name="s",
        action_name="a",
        action_execution_id="0b3c3f0e-1111-4222-8333-944444444444",
        configuration={"ProjectName": "app", "BuildspecOverride": spec},
        input_artifacts=(),
        output_artifacts=(),
        artifacts=LocalBuckets(tmp_path / "buckets"),
        workspace=tmp_path / "work",
        log=io.StringIO(),
        cancelled=threading.Event(),
        time_left=time_left,
    )
    CodeBuild(ProviderConfig(home=tmp_path / "home", builds=phases)).run(context)
    return phases


def test_a_build_that_runs_out_of_time_is_timed_out(tmp_path: Path) -> None:
    """A build that exceeds its timeout: buildStatus TIMED_OUT, and the phase it was in
    TIMED_OUT with a BUILD_TIMED_OUT context."""
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 60\n"
    phases = run(tmp_path, spec, time_left=1.0)
    assert phases.status == "TIMED_OUT"
    build = next(p for p in phases.timeline.phases if p.name == "BUILD")
    assert build.status == "TIMED_OUT"
    assert build.contexts[0][0] == "BUILD_TIMED_OUT"
    assert phases.timeline.current == "COMPLETED"


def test_exported_variables_and_phases_of_a_build_that_succeeded(tmp_path: Path) -> None:
    spec = (
        "version: 0.2\nenv:\n  exported-variables: [OUT]\n"
        "phases:\n  install:\n    commands:\n      - 'true'\n"
        "  build:\n    commands:\n      - export OUT=yes\n"
    )
    phases = run(tmp_path, spec)
    assert phases.status == "SUCCEEDED"
    assert dict(phases.exported) == {"OUT": "yes"}
    names = [p.name for p in phases.timeline.phases]
    assert names == [
        "SUBMITTED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "BUILD",
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
        "COMPLETED",
    ]
    assert all(p.status == "SUCCEEDED" for p in phases.timeline.phases[:-1])


def test_the_live_view_draws_each_phase_with_its_status(tmp_path: Path) -> None:
    """On a terminal ``conveyor build`` draws the phases live beneath the log."""
    from rich.console import Console
    from rich.live import Live

    console = Console(record=True, width=80, force_terminal=True)
    live = Live(console=console, auto_refresh=False)
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - 'false'\n"
    phases = Phases(live)
    phases.timeline = run(tmp_path, spec).timeline
    console.print(phases.table())
    text = console.export_text()
    assert "BUILD" in text and "FAILED" in text
    assert "DOWNLOAD_SOURCE" in text and "SUCCEEDED" in text
