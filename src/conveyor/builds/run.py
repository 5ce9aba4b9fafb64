"""One build StartBuild asked for, run with the CodeBuild provider that pipelines use.

The build's log is the file ``logs/<uuid>.log`` of the home (served at ``/logs/<uuid>``, the
build's ``logs.deepLink``); its workspace is ``work/builds/<uuid>``, removed afterwards. The
source is fetched first (`sources.fetch_source`), then the provider runs the buildspec with the
project's definition as StartBuild overrode it: its buildspec, variables and timeout, and its
``artifacts`` (type ``S3``: a zip at ``location``/``path``/[build id]/``name`` of the
artifact store). The provider records the phases, the end and the reports.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from conveyor.actions.base import JobContext, OutputArtifact, ProviderConfig
from conveyor.actions.codebuild import CodeBuild
from conveyor.actions.codebuild.logs import container
from conveyor.artifacts import ArtifactStore
from conveyor.builds.sources import SourceError, fetch_source, source_context
from conveyor.domain.builds import FAILED, STOPPED, BuildPlan
from conveyor.domain.projects import BuildProject, build_project
from conveyor.engine.builds import BuildService

__all__ = ["run_build"]

log = logging.getLogger("conveyor.builds")


def _outputs(plan: BuildPlan) -> tuple[OutputArtifact, ...]:
    artifacts: Mapping[str, Any] = plan.definition.get("artifacts") or {}
    if artifacts.get("type") != "S3":
        return ()
    bucket = str(artifacts.get("location") or "")
    parts = [str(artifacts.get("path") or "").strip("/")]
    if artifacts.get("namespaceType") == "BUILD_ID":
        parts.append(plan.uuid)
    parts.append(str(artifacts.get("name") or plan.project))
    return (OutputArtifact("artifact", bucket, "/".join(p for p in parts if p)),)


def _config(config: ProviderConfig, plan: BuildPlan, service: BuildService) -> ProviderConfig:
    project = replace(build_project(plan.project, plan.definition), initiator=plan.initiator)

    def find(name: str) -> BuildProject | None:
        if name == plan.project:
            return project
        return config.projects(name) if config.projects else None

    return replace(config, projects=find, builds=service)


def run_build(
    plan: BuildPlan,
    config: ProviderConfig,
    artifacts: ArtifactStore,
    home: Path,
    service: BuildService,
    cancelled: threading.Event,
) -> None:
    """Run ``plan`` to its end; every outcome is recorded through ``service``."""
    workspace = home / "work" / "builds" / plan.uuid
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with open(logs / f"{plan.uuid}.log", "a", encoding="utf-8") as log_file:
            _run(plan, config, artifacts, workspace, service, cancelled, log_file)
    except Exception as error:
        log.exception("build %s failed to run", plan.build_id)
        service.fault(plan.build_id, f"The build could not run: {error}")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _run(
    plan: BuildPlan,
    config: ProviderConfig,
    artifacts: ArtifactStore,
    workspace: Path,
    service: BuildService,
    cancelled: threading.Event,
    log_file: Any,
) -> None:
    container(log_file, f"Build {plan.build_id} of project {plan.project} is queued")
    if cancelled.is_set():
        service.fault(plan.build_id, "The build was stopped before it started", STOPPED)
        return
    source_folder = workspace / "source"
    source_folder.mkdir(parents=True, exist_ok=True)
    context = JobContext(
        job_id=plan.uuid,
        pipeline_name="",
        pipeline_execution_id="",
        stage_name="",
        action_name=plan.project,
        action_execution_id=plan.uuid,
        configuration={"ProjectName": plan.project},
        input_artifacts=(),
        output_artifacts=_outputs(plan),
        artifacts=artifacts,
        workspace=workspace / "build",
        log=log_file,
        cancelled=cancelled,
        region=config.region,
    )
    fetching = replace(source_context(context, plan.uuid), workspace=source_folder)
    try:
        source, _ = fetch_source(
            plan.definition.get("source") or {}, plan.source_version, config, fetching
        )
    except SourceError as error:
        container(log_file, f"DOWNLOAD_SOURCE failed: {error}")
        service.fault(plan.build_id, str(error), FAILED, ("PROVISIONING", "DOWNLOAD_SOURCE"))
        return
    context.workspace.mkdir(parents=True, exist_ok=True)
    build = replace(context, input_artifacts=(source,) if source is not None else ())
    CodeBuild(_config(config, plan, service)).run(build)
    for callback in build.when_done:
        callback()
