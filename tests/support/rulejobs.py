"""A real `JobContext` for a rule's provider, as the worker hands one over."""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conveyor.actions.base import ArtifactLocation, JobContext
from conveyor.artifacts.local import LocalBuckets


def rule_context(
    tmp_path: Path,
    configuration: Mapping[str, str],
    *,
    commands: tuple[str, ...] = (),
    inputs: tuple[ArtifactLocation, ...] = (),
    time_left: float | None = None,
    cancelled: threading.Event | None = None,
    **extra: Any,
) -> JobContext:
    workspace = tmp_path / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    return JobContext(
        job_id="job-1",
        pipeline_name="pipe",
        pipeline_execution_id="exec-1",
        stage_name="Deploy",
        action_name="Rule1",
        action_execution_id="rule-1",
        configuration=dict(configuration),
        input_artifacts=inputs,
        output_artifacts=(),
        artifacts=LocalBuckets(tmp_path / "buckets"),
        workspace=workspace,
        log=io.StringIO(),
        cancelled=cancelled or threading.Event(),
        commands=commands,
        time_left=time_left,
        region="us-east-1",
        **extra,
    )


def log_of(context: JobContext) -> str:
    assert isinstance(context.log, io.StringIO)
    return context.log.getvalue()
