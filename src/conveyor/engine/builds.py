"""CodeBuild builds: starting, stopping, retrying, reading, listing, deleting.

`BuildService` keeps the record of every build, whoever runs it: StartBuild records a build
and hands its `BuildPlan` to the `Launcher` (``conveyor.builds``, which runs it in this
process); a pipeline's CodeBuild action records its build as it runs, through the same
service acting as the provider's `BuildRecorder`. Either way, the build's phases, exported
variables and reports land here, and the CodeBuild API reads them back. The reports a build
ends with are kept by `reports.record_report`, in the same transaction; report groups and
reports are served by `reports.ReportService`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from conveyor.domain.arn import Scope
from conveyor.domain.builds import (
    FINAL,
    IN_PROGRESS,
    STOPPED,
    TIMED_OUT,
    BuildPlan,
    BuildStart,
    Page,
    ReportResult,
    Timeline,
    build_arn,
)
from conveyor.domain.errors import InvalidInputException, ResourceNotFoundException
from conveyor.domain.projects import overridden
from conveyor.engine.clock import Clock
from conveyor.engine.reports import record_report
from conveyor.store import BuildRecord, Store

PAGE = 100
# How long StartBuild's idempotencyToken holds, as CodeBuild documents.
IDEMPOTENCY_SECONDS = 300.0
_PIPELINE_INITIATOR = "codepipeline/"


class Launcher(Protocol):
    """What runs the builds StartBuild asks for."""

    def launch(self, plan: BuildPlan) -> None: ...

    def stop(self, build_id: str) -> bool:
        """Ask the build to stop; False when this process does not run it."""
        ...


class BuildService:
    def __init__(
        self, store: Store, scope: Scope, clock: Clock, log_base: str | None = None
    ) -> None:
        self._store = store
        self._scope = scope
        self._clock = clock
        self._log_base = log_base
        self._launcher: Launcher | None = None

    def attach(self, launcher: Launcher) -> None:
        self._launcher = launcher

    # -- wire --

    def _logs(self, build_id: str, project: str) -> dict[str, Any]:
        stream = build_id.rpartition(":")[2]
        logs: dict[str, Any] = {
            "groupName": f"/aws/codebuild/{project}",
            "streamName": stream,
            "cloudWatchLogs": {"status": "ENABLED"},
            "s3Logs": {"status": "DISABLED"},
        }
        if self._log_base:
            logs["deepLink"] = f"{self._log_base}/logs/{stream}"
        return logs

    def wire(self, record: BuildRecord, report_arns: Sequence[str] = ()) -> dict[str, Any]:
        """The wire ``Build``."""
        data = record.data
        timeline = Timeline.load(data.get("phases") or [])
        build: dict[str, Any] = {
            "id": record.id,
            "arn": build_arn(self._scope, record.id),
            "startTime": record.started,
            "currentPhase": timeline.current,
            "buildStatus": record.status,
            "projectName": record.project,
            "phases": [phase.wire() for phase in timeline.phases],
            "source": data.get("source") or {"type": "NO_SOURCE"},
            "secondarySources": [],
            "secondarySourceVersions": [],
            "artifacts": data.get("artifacts") or {"location": ""},
            "secondaryArtifacts": [],
            "cache": data.get("cache") or {"type": "NO_CACHE"},
            "environment": data.get("environment") or {},
            "logs": self._logs(record.id, record.project),
            "timeoutInMinutes": data.get("timeoutInMinutes", 60),
            "queuedTimeoutInMinutes": data.get("queuedTimeoutInMinutes", 480),
            "buildComplete": record.status in FINAL,
            "initiator": data.get("initiator", ""),
            "exportedEnvironmentVariables": [
                {"name": name, "value": value} for name, value in data.get("exported") or []
            ],
            "reportArns": list(report_arns),
        }
        if record.number:
            build["buildNumber"] = record.number
        if record.ended is not None:
            build["endTime"] = record.ended
        for key in ("sourceVersion", "resolvedSourceVersion", "serviceRole", "encryptionKey"):
            if data.get(key):
                build[key] = data[key]
        return build

    def _get(self, build_id: str) -> BuildRecord:
        with self._store.read() as tx:
            record = tx.builds.get(build_id)
        if record is None:
            raise ResourceNotFoundException(f"Build {build_id} does not exist")
        return record

    def _wire_one(self, build_id: str) -> dict[str, Any]:
        with self._store.read() as tx:
            record = tx.builds.get(build_id)
            arns = tx.builds.report_arns_of([build_id]).get(build_id, [])
        if record is None:
            raise ResourceNotFoundException(f"Build {build_id} does not exist")
        return self.wire(record, arns)

    # -- StartBuild, StopBuild, RetryBuild --

    def start(self, params: Mapping[str, Any], initiator: str) -> dict[str, Any]:
        name = params["projectName"]
        prefix = self._scope.codebuild_project("")
        name = name.removeprefix(prefix) if name.startswith(prefix) else name
        if self._launcher is None:
            raise InvalidInputException("This server runs no builds (it has no build runner)")
        with self._store.read() as tx:
            project = tx.projects.get(name)
        if project is None:
            raise ResourceNotFoundException(
                f"Project cannot be found: {self._scope.codebuild_project(name)}"
            )
        definition = overridden(project.definition, params)
        request = {k: v for k, v in params.items() if k != "idempotencyToken"}
        token = params.get("idempotencyToken")
        if token:
            again = self._repeated(name, str(token), request)
            if again is not None:
                return again
        plan = BuildPlan(
            f"{name}:{uuid.uuid4()}",
            name,
            definition,
            params.get("sourceVersion") or None,
            initiator,
        )
        now = self._clock.now()
        timeline = Timeline().enter("SUBMITTED", now).enter("QUEUED", now)
        data = {
            "initiator": initiator,
            "source": definition["source"],
            "environment": definition["environment"],
            "serviceRole": definition.get("serviceRole"),
            "artifacts": {"location": ""},
            "cache": definition.get("cache") or {"type": "NO_CACHE"},
            "timeoutInMinutes": definition.get("timeoutInMinutes", 60),
            "queuedTimeoutInMinutes": definition.get("queuedTimeoutInMinutes", 480),
            "sourceVersion": plan.source_version,
            "encryptionKey": definition.get("encryptionKey"),
            "phases": timeline.dump(),
            "request": request,
        }
        if token:
            data["idempotencyToken"] = token
        record = BuildRecord(plan.build_id, name, 0, IN_PROGRESS, now, None, data)
        with self._store.write() as tx:
            tx.builds.insert(record)
        self._launcher.launch(plan)
        return self.wire(record)

    def _repeated(
        self, project: str, token: str, request: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The build a StartBuild of the same ``idempotencyToken`` started in the last five
        minutes, when the request is the same; a different request with that token is
        refused, as CodeBuild refuses it."""
        since = self._clock.now() - IDEMPOTENCY_SECONDS
        with self._store.read() as tx:
            recent = [
                i for started, i in tx.builds.page(project, True, None, PAGE) if started >= since
            ]
            found = tx.builds.get_many(recent)
        for build_id in recent:
            record = found.get(build_id)
            if record is None or record.data.get("idempotencyToken") != token:
                continue
            if record.data.get("request") != dict(request):
                raise InvalidInputException(
                    f"idempotencyToken {token} was used for a different StartBuild request"
                )
            return self._wire_one(build_id)
        return None

    def stop(self, build_id: str) -> dict[str, Any]:
        record = self._get(build_id)
        if record.status in FINAL:
            return self._wire_one(build_id)
        initiator = str(record.data.get("initiator", ""))
        if initiator.startswith(_PIPELINE_INITIATOR):
            raise InvalidInputException(
                f"Build {build_id} runs for pipeline {initiator.removeprefix(_PIPELINE_INITIATOR)}"
                ": stop that pipeline execution to stop it"
            )
        with self._store.write() as tx:
            fresh = tx.builds.get(build_id)
            if fresh is not None and fresh.status not in FINAL:
                tx.builds.update(build_id, data={**fresh.data, "stopRequested": True})
        stopping = self._launcher is not None and self._launcher.stop(build_id)
        if not stopping and not record.data.get("node"):
            # No server took it: it ends here. A build another server runs is stopped by
            # that server, which watches for the request.
            self.finished(build_id, STOPPED, Timeline.load(record.data.get("phases") or []), {}, [])
        return self._wire_one(build_id)

    def stop_requested(self, build_id: str) -> bool:
        with self._store.read() as tx:
            record = tx.builds.get(build_id)
        return record is not None and bool(record.data.get("stopRequested"))

    def retry(self, build_id: str | None, initiator: str) -> dict[str, Any]:
        if not build_id:
            raise InvalidInputException("id is required")
        record = self._get(build_id)
        if record.status not in FINAL:
            raise InvalidInputException(f"Build {build_id} is still in progress")
        request = record.data.get("request")
        if request is None:
            raise InvalidInputException(
                f"Build {build_id} was run by a pipeline: retry the pipeline's action instead"
            )
        return self.start(request, initiator)

    # -- reads --

    def batch_get(self, ids: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
        unique = list(dict.fromkeys(i.rpartition(":build/")[2] for i in ids))
        with self._store.read() as tx:
            found = tx.builds.get_many(unique)
            arns = tx.builds.report_arns_of(list(found))
        builds = [self.wire(found[i], arns.get(i, [])) for i in unique if i in found]
        return builds, [i for i in unique if i not in found]

    def page(self, project: str | None, desc: bool, after: tuple[float, str] | None) -> Page:
        with self._store.read() as tx:
            if project is not None and tx.projects.get(project) is None:
                raise ResourceNotFoundException(
                    f"Project cannot be found: {self._scope.codebuild_project(project)}"
                )
            rows = tx.builds.page(project, desc, after, PAGE + 1)
        page = rows[:PAGE]
        return Page([i for _, i in page], page[-1] if len(rows) > PAGE else None)

    def delete(self, ids: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
        unique = list(dict.fromkeys(ids))
        with self._store.write() as tx:
            found = tx.builds.get_many(unique)
            deleted = [i for i in unique if i in found and found[i].status in FINAL]
            arns = tx.builds.report_arns_of(deleted)
            tx.builds.delete_reports([a for found_arns in arns.values() for a in found_arns])
            tx.builds.delete(deleted)
        refused = [
            {"id": i, "statusCode": "BUILD_IN_PROGRESS" if i in found else "BUILD_NOT_FOUND"}
            for i in unique
            if i not in deleted
        ]
        return deleted, refused

    def log_status(self, build_uuid: str) -> str | None:
        """For the log endpoint: "InProgress" while the build of that log runs, its status
        once it ended, None when there is no such build."""
        with self._store.read() as tx:
            record = tx.builds.with_uuid(build_uuid)
        if record is None:
            return None
        return "InProgress" if record.status == IN_PROGRESS else record.status

    # -- the provider's BuildRecorder --

    def started(self, build: BuildStart) -> Timeline:
        now = self._clock.now()
        with self._store.write() as tx:
            record = tx.builds.get(build.build_id)
            if record is None:
                timeline = Timeline().enter("SUBMITTED", now).enter("QUEUED", now)
                timeline = timeline.enter("PROVISIONING", now)
                data = {
                    "initiator": build.initiator,
                    "source": dict(build.source),
                    "environment": dict(build.environment),
                    "artifacts": {"location": ""},
                    "timeoutInMinutes": build.timeout_minutes,
                    "sourceVersion": build.source_version,
                    "resolvedSourceVersion": build.resolved_source_version,
                    "phases": timeline.dump(),
                }
                tx.builds.insert(
                    BuildRecord(
                        build.build_id, build.project, build.number, IN_PROGRESS, now, None, data
                    )
                )
                return timeline
            timeline = Timeline.load(record.data.get("phases") or []).enter("PROVISIONING", now)
            if record.status in FINAL:
                # Ended as it was taken (its queued timeout passed): its record stays so.
                return timeline
            data = {**record.data, "phases": timeline.dump()}
            if build.resolved_source_version:
                data["resolvedSourceVersion"] = build.resolved_source_version
            tx.builds.update(build.build_id, data=data, number=build.number)
            return timeline

    def progressed(self, build_id: str, timeline: Timeline) -> None:
        with self._store.write() as tx:
            record = tx.builds.get(build_id)
            if record is not None and record.status not in FINAL:
                tx.builds.update(build_id, data={**record.data, "phases": timeline.dump()})

    def finished(
        self,
        build_id: str,
        status: str,
        timeline: Timeline,
        exported: Mapping[str, str],
        reports: Sequence[ReportResult],
        artifacts: Mapping[str, Any] | None = None,
    ) -> None:
        now = self._clock.now()
        if timeline.current != "COMPLETED":
            timeline = timeline.finish(status, now)
        with self._store.write() as tx:
            record = tx.builds.get(build_id)
            if record is None or record.status in FINAL:
                return
            if status != "SUCCEEDED" and record.data.get("stopRequested"):
                status = STOPPED
            data = {
                **record.data,
                "phases": timeline.dump(),
                "exported": [[k, v] for k, v in exported.items()],
            }
            if artifacts is not None:
                data["artifacts"] = dict(artifacts)
            tx.builds.update(build_id, data=data, status=status, ended=now)
            for result in reports:
                record_report(tx, self._scope, record.project, build_id, result, now)

    def fault(
        self,
        build_id: str,
        message: str,
        status: str = "FAULT",
        enter: Sequence[str] = (),
    ) -> None:
        """End a build that could not run: the phases ``enter`` names are entered, and the
        open one ends saying why."""
        now = self._clock.now()
        with self._store.read() as tx:
            record = tx.builds.get(build_id)
        if record is None:
            return
        timeline = Timeline.load(record.data.get("phases") or [])
        for phase in enter:
            timeline = timeline.enter(phase, now)
        if enter and status == "FAILED":
            timeline = timeline.complete(enter[-1], status, now).context("CLIENT_ERROR", message)
        self.finished(build_id, status, timeline.finish(status, now, message), {}, [])

    def recover(self, node: str) -> int:
        """End the builds left running: those this node ran when it stopped, and pipeline
        builds whose action is no longer in progress; how many."""
        with self._store.read() as tx:
            left = []
            for record in tx.builds.in_progress():
                if record.data.get("node") == node:
                    left.append(record.id)
                elif str(record.data.get("initiator", "")).startswith(_PIPELINE_INITIATOR):
                    action = tx.actions.get(record.id.rpartition(":")[2])
                    if action is None or action.status != "InProgress":
                        left.append(record.id)
        for build_id in left:
            self.fault(build_id, "The server stopped while the build ran")
        return len(left)

    def stops_requested(self, build_ids: Sequence[str]) -> list[str]:
        """Those of ``build_ids`` that StopBuild asked to stop (on any server)."""
        with self._store.read() as tx:
            found = tx.builds.get_many(list(build_ids))
        return [i for i, record in found.items() if record.data.get("stopRequested")]

    def take(self, build_id: str) -> bool:
        """Whether the build a free thread takes is to run: not when it ended while it
        waited, nor when it waited longer than its queued timeout (it ends ``TIMED_OUT``)."""
        with self._store.read() as tx:
            record = tx.builds.get(build_id)
        if record is None or record.status in FINAL:
            return False
        return not self.expire_queued([build_id])

    def expire_queued(self, build_ids: Sequence[str]) -> list[str]:
        """End as ``TIMED_OUT`` those of ``build_ids`` still in ``QUEUED`` past their queued
        timeout (``queuedTimeoutInMinutes`` from StartBuild's start); those it ended."""
        now = self._clock.now()
        with self._store.read() as tx:
            found = tx.builds.get_many(list(build_ids))
        expired = []
        for build_id, record in found.items():
            minutes = int(record.data.get("queuedTimeoutInMinutes", 480))
            timeline = Timeline.load(record.data.get("phases") or [])
            if record.status in FINAL or timeline.current != "QUEUED":
                continue
            if now < record.started + minutes * 60:
                continue
            message = (
                f"Build timed out in queue: it waited longer than its queued timeout of "
                f"{minutes} minutes for a free build thread"
            )
            self.finished(build_id, TIMED_OUT, timeline.finish(TIMED_OUT, now, message), {}, [])
            expired.append(build_id)
        return expired

    def claim(self, build_id: str, node: str) -> None:
        """Mark the build as run by ``node`` (for `recover`)."""
        with self._store.write() as tx:
            record = tx.builds.get(build_id)
            if record is not None:
                tx.builds.update(build_id, data={**record.data, "node": node})
