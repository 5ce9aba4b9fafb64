"""The ``Build/AWS/CodeBuild/1`` and ``Test/AWS/CodeBuild/1`` provider: a buildspec, run locally.

`CodeBuild.run` follows a CodeBuild build: DOWNLOAD_SOURCE (inputs unpacked, buildspec read
and checked, configuration problems answered as CONFIGURATION_ERROR before anything runs),
then INSTALL, PRE_BUILD, BUILD and POST_BUILD in one shell (see `phases`), retried as a whole
when a phase's ``on-failure: RETRY...`` says so, then UPLOAD_ARTIFACTS (output zips, cache),
then FINALIZING (test reports). The result names the failing phase, command and exit status,
with the last lines of the log; the build id is the external execution id.

The action's ``ProjectName`` names a CodeBuild project of the installation (CreateProject):
its buildspec, environment variables and timeout apply, the action's EnvironmentVariables on
top. A name no project has fails the action, unless the action sets BuildSpec or the primary
source has a ``buildspec.yml``: that builds with no project at all.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import replace
from typing import TextIO

from conveyor.actions.base import (
    FailureType,
    JobContext,
    JobResult,
    OutputArtifact,
    ProviderConfig,
)
from conveyor.actions.codebuild import cache, outputs, reports
from conveyor.actions.codebuild.buildspec import ArtifactSpec, BuildSpec, BuildspecError, parse
from conveyor.actions.codebuild.environment import (
    Misconfigured,
    build_environment,
    codebuild_variables,
    next_build_number,
)
from conveyor.actions.codebuild.logs import MaskedLog, container
from conveyor.actions.codebuild.record import Recording
from conveyor.actions.codebuild.runner import Attempt, run_attempt
from conveyor.actions.codebuild.sources import Layout, layout, read_buildspec, unpack_inputs
from conveyor.actions.process import run_process
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.unpacked import Unpacked
from conveyor.domain.builds import BuildStart
from conveyor.domain.projects import BuildProject

__all__ = ["CodeBuild"]

_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,254}\Z")


class CodeBuild:
    """Runs a buildspec over the action's input artifacts, as CodeBuild would for CodePipeline."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None = None) -> None:
        self.config = config
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        started = time.monotonic()
        deadline = None if context.time_left is None else started + context.time_left
        project = (context.configuration.get("ProjectName") or "").strip()
        if not _PROJECT.match(project):
            return JobResult.failed(
                f"ProjectName {project!r} is not a valid CodeBuild project name"
                if project
                else "ProjectName is required",
                FailureType.CONFIGURATION_ERROR,
            )
        build_id = f"{project}:{context.action_execution_id}"
        recording = None
        if self.config.builds is not None:
            recording = Recording(self.config.builds, build_id, context.log)
            context = replace(context, log=recording)
        container(context.log, f"Running build {build_id} of project {project}")
        result = self._run(context, project, build_id, started, deadline, recording)
        if recording is not None:
            exported = result.output_variables if result.succeeded else {}
            recording.end(result.succeeded, result.message, exported)
        return result

    def _run(
        self,
        context: JobContext,
        project: str,
        build_id: str,
        started: float,
        deadline: float | None,
        recording: Recording | None,
    ) -> JobResult:
        try:
            found = self.config.projects(project) if self.config.projects else None
            if found is not None:
                limit = started + found.timeout_minutes * 60
                deadline = limit if deadline is None else min(deadline, limit)
            build = _Build(self.config, context, project, build_id, started, deadline)
            build.unpacked = self.unpacked
            build.project_found = found
            build.recording = recording
            if recording is not None:
                recording.begin(build.start(0))
            return build.run()
        except Misconfigured as error:
            message = str(error)
            failure = FailureType.CONFIGURATION_ERROR
        except ArtifactError as error:
            message, failure = str(error), FailureType.JOB_FAILED
        container(context.log, f"Build failed: {message}")
        return JobResult(
            succeeded=False,
            message=message,
            failure_type=failure,
            external_execution_id=build_id,
        )


class _Build:
    def __init__(
        self,
        config: ProviderConfig,
        context: JobContext,
        project: str,
        build_id: str,
        started: float,
        deadline: float | None,
    ) -> None:
        self.config = config
        self.context = context
        self.project = project
        self.build_id = build_id
        self.started = started
        self.deadline = deadline
        self.log: TextIO = context.log
        self.where: Layout = layout(context)
        self.unpacked: Unpacked | None = None
        # The project of that name, when the installation has one.
        self.project_found: BuildProject | None = None
        # Where the build is recorded for the CodeBuild API, when it is.
        self.recording: Recording | None = None

    def start(self, number: int) -> BuildStart:
        """What the CodeBuild API first shows of this build."""
        context, found = self.context, self.project_found
        primary = next((a for a in context.input_artifacts if a.name == self.where.primary), None)
        variables = [
            {"name": name, "value": value, "type": kind}
            for name, value, kind in (found.variables if found else ())
        ]
        return BuildStart(
            build_id=self.build_id,
            project=self.project,
            number=number,
            initiator=f"codepipeline/{context.pipeline_name}",
            source_version=(
                f"arn:aws:s3:::{primary.bucket}/{primary.key}" if primary is not None else None
            ),
            resolved_source_version=primary.revision if primary is not None else None,
            source={"type": "CODEPIPELINE", "buildspec": found.buildspec if found else ""},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "conveyor/local",
                "computeType": "BUILD_GENERAL1_SMALL",
                "environmentVariables": variables,
            },
            timeout_minutes=found.timeout_minutes if found else 60,
        )

    def note(self, message: str) -> None:
        container(self.log, message)

    def download(self) -> None:
        self.note("Entering phase DOWNLOAD_SOURCE")
        try:
            unpack_inputs(self.context, self.where, self.config.max_artifact_bytes, self.unpacked)
        except ArtifactError as error:
            raise ArtifactError(f"DOWNLOAD_SOURCE failed: {error}") from error

    def load(self) -> BuildSpec:
        found = self.project_found
        if found is None and self.config.projects is not None:
            self.require_zero_setup()
        text, label = read_buildspec(self.context, self.where, found.buildspec if found else "")
        try:
            spec = parse(text, label)
        except BuildspecError as error:
            raise Misconfigured(f"Invalid buildspec ({label}): {error}") from None
        self.note(f"Using buildspec from {label}")
        for message in spec.messages():
            self.note(message)
        if "codebuild-hash-files" in text:
            helper = self.where.scratch / "bin" / "codebuild-hash-files"
            helper.parent.mkdir(parents=True, exist_ok=True)
            helper.write_text(cache.HASH_FILES, encoding="utf-8")
            helper.chmod(0o755)
        return spec

    def require_zero_setup(self) -> None:
        """Without a project of its name, a build needs a buildspec of its own to run."""
        configured = any(
            (self.context.configuration.get(key) or "").strip()
            for key in ("BuildSpec", "BuildspecOverride")
        )
        if not configured and not (self.where.source / "buildspec.yml").is_file():
            raise Misconfigured(
                f"CodeBuild project {self.project} does not exist (create it with "
                "CreateProject), and the primary source has no buildspec.yml to build "
                "without one"
            )
        self.note(f"No project {self.project}: building with the source's own buildspec")

    def run(self) -> JobResult:
        self.download()
        spec = self.load()
        plan = outputs.plan_outputs(spec, self.context.output_artifacts)
        number = next_build_number(self.config, self.project)
        if self.recording is not None:
            self.recording.begin(self.start(number))
        base = codebuild_variables(
            self.context,
            self.config,
            self.project,
            number,
            self.where.sources,
            self.where.primary,
        )
        base["CODEBUILD_SRC_DIR"] = str(self.where.source)
        found = self.project_found
        environment = build_environment(
            self.context, self.config, spec.env, base, found.variables if found else ()
        )
        env = environment.variables
        if found is not None and found.initiator:
            env["CODEBUILD_INITIATOR"] = found.initiator
        helpers = self.where.scratch / "bin"
        if helpers.is_dir():
            env["PATH"] = f"{helpers}{os.pathsep}{env['PATH']}"
        if environment.secrets:
            self.log = MaskedLog(self.context.log, environment.secrets)
        key = self.cache_key(spec, env)
        attempt_number = 0
        while True:
            if attempt_number:
                self.note(f"Retrying the build: attempt {attempt_number + 1}")
                self.download()
            if spec.cache is not None and self.config.cache is not None:
                cache.restore(
                    self.config.cache, self.project, spec.cache, key, self.where.source, self.note
                )
            try:
                attempt = run_attempt(
                    spec,
                    attempt=attempt_number,
                    cwd=self.where.source,
                    scratch=self.where.scratch,
                    env=env,
                    log=self.log,
                    cancelled=self.context.cancelled,
                    deadline=self.deadline,
                    started=self.context.process_started,
                    exported=spec.env.exported_variables,
                )
            except OSError as error:
                return JobResult.failed(
                    f"Cannot start the build shell: {error}", FailureType.SYSTEM_UNAVAILABLE
                )
            if attempt.process.stopped is not None or not attempt.outcome.retry:
                break
            attempt_number += 1
        return self.finish(spec, plan, key, attempt)

    def cache_key(self, spec: BuildSpec, env: dict[str, str]) -> str | None:
        if spec.cache is None or not spec.cache.key or self.config.cache is None:
            return None
        text = spec.cache.key
        script = f"cat <<__CONVEYOR_CACHE_KEY__\n{text}\n__CONVEYOR_CACHE_KEY__\n"
        try:
            process = run_process(
                ["/bin/sh", "-c", script],
                cwd=self.where.source,
                env=env,
                log=self.log,
                cancelled=self.context.cancelled,
                deadline=self.deadline,
                capture_stdout=True,
                started=self.context.process_started,
            )
        except OSError as error:
            self.note(f"Cache: cannot evaluate key {text}: {error}")
            return None
        key = process.stdout.decode("utf-8", "replace").strip()
        self.note(f"Cache key: {key}")
        return key

    def finish(
        self,
        spec: BuildSpec,
        plan: list[tuple[OutputArtifact, ArtifactSpec]],
        key: str | None,
        attempt: Attempt,
    ) -> JobResult:
        outcome, process = attempt.outcome, attempt.process
        spec, plan = attempt.expanded(spec, plan)
        if self.recording is not None:
            self.recording.stopped = process.stopped
        if process.stopped is not None:
            return self.failed(self.stopped_message(attempt))
        upload_error = None
        if outcome.upload:
            self.note("Entering phase UPLOAD_ARTIFACTS")
            try:
                counts = outputs.upload(
                    plan, self.where.source, self.where.scratch, self.context.artifacts
                )
                for name, count in counts.items():
                    self.note(f"Uploaded output artifact {name}: {count} entries")
                if plan and self.recording is not None:
                    first = plan[0][0]
                    location = f"arn:aws:s3:::{first.bucket}/{first.key}"
                    self.recording.artifacts = {"location": location}
                self.note("Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED")
            except ArtifactError as error:
                upload_error = str(error)
                self.note(f"Phase complete: UPLOAD_ARTIFACTS State: FAILED ({upload_error})")
            if spec.cache is not None and self.config.cache is not None:
                cache.save(
                    self.config.cache, self.project, spec.cache, key, self.where.source, self.note
                )
        self.note("Entering phase FINALIZING")
        results = [
            result
            for report in spec.reports
            if (result := reports.collect(report, self.where.source, self.note)) is not None
        ]
        counts_text = reports.summary(results)
        if self.recording is not None:
            self.recording.reports = [result.report() for result in results]
        failure = attempt.failure()
        if failure is None and upload_error is not None:
            failure = (f"Build failed in phase UPLOAD_ARTIFACTS: {upload_error}", "")
        if failure is None:
            self.note("Build succeeded")
            variables = {
                name: outcome.variables[name]
                for name in spec.env.exported_variables
                if name in outcome.variables
            }
            return JobResult(
                succeeded=True,
                summary=counts_text or "Build succeeded",
                output_variables=variables,
                external_execution_id=self.build_id,
            )
        head, detail = failure
        self.note(head)
        summary = f"{head}; {counts_text}" if counts_text else head
        return self.failed(head + detail + self.tail(process.tail), summary)

    def stopped_message(self, attempt: Attempt) -> str:
        head = attempt.stopped_headline(time.monotonic() - self.started)
        self.note(head)
        return head + self.tail(attempt.process.tail)

    def tail(self, lines: tuple[str, ...]) -> str:
        text = "\n".join(lines)
        if isinstance(self.log, MaskedLog):
            text = self.log.mask(text)
        return f"\nLast lines of output:\n{text}" if text else ""

    def failed(self, message: str, summary: str | None = None) -> JobResult:
        return JobResult(
            succeeded=False,
            summary=summary,
            message=message,
            failure_type=FailureType.JOB_FAILED,
            external_execution_id=self.build_id,
        )
