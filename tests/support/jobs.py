"""Job contexts for unit tests of providers, as a worker would build them."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from conveyor.actions.base import JobContext, OutputArtifact
from conveyor.artifacts.local import LocalBuckets


def source_context(
    tmp_path: Path, configuration: dict[str, str], run: int = 1, **extra: object
) -> JobContext:
    """A source action's job for run ``run``: its own workspace, the buckets of ``tmp_path``
    shared, one output artifact ``SourceOutput``."""
    workspace = tmp_path / f"workspace-{run}"
    workspace.mkdir()
    return JobContext(
        job_id="job-1",
        pipeline_name="pipe",
        pipeline_execution_id="exec-1",
        stage_name="Source",
        action_name="Checkout",
        action_execution_id="act-1",
        configuration=configuration,
        input_artifacts=(),
        output_artifacts=(OutputArtifact("SourceOutput", "artifacts", "pipe/SourceOut.zip"),),
        artifacts=LocalBuckets(tmp_path / "buckets"),
        workspace=workspace,
        log=io.StringIO(),
        cancelled=threading.Event(),
        **extra,  # type: ignore[arg-type]
    )
