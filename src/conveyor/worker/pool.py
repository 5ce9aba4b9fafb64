"""A pool of in-process workers, speaking the job protocol like a remote worker would.

Each worker thread polls for a job of the types it has providers for, acknowledges it with
its nonce, runs the provider in a fresh workspace with the action's log open, and reports
success or failure. Idle workers sleep on the notifier, so a queued job is picked up within
milliseconds; a heartbeat thread renews the leases of running jobs, and a job whose lease
cannot be renewed (abandoned, timed out) is cancelled, which kills its processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from conveyor.actions.base import (
    ArtifactLocation,
    JobContext,
    JobResult,
    OutputArtifact,
    Provider,
)
from conveyor.artifacts import ArtifactStore
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.errors import ConveyorError
from conveyor.domain.pipeline import EnvironmentVariable
from conveyor.domain.status import JobStatus
from conveyor.domain.work import Work
from conveyor.engine.jobs import Taker
from conveyor.store import JobRecord
from conveyor.worker import leftovers

log = logging.getLogger("conveyor.worker")
IDLE_WAIT = 1.0
# The longest pause between tries while a worker keeps failing, in seconds.
MAX_PAUSE = 10.0
# The longest pause between tries to report a result: results go first once it is back.
RESULT_PAUSE = 2.0


class JobSource(Protocol):
    """What a pool calls to claim, renew and report: the engine's `JobService` in a server,
    the server's worker routes over HTTP in ``conveyor worker``."""

    @property
    def lease(self) -> float: ...

    def claim(
        self, types: Sequence[ActionTypeId], *, owner: str, labels: frozenset[str] = ...
    ) -> JobRecord | None: ...

    def get(self, job_id: str) -> JobRecord: ...

    def renew(self, job_id: str, owner: str) -> bool: ...

    def succeed(
        self,
        job_id: str,
        *,
        summary: str | None = ...,
        external_id: str | None = ...,
        output_variables: Mapping[str, str] | None = ...,
        revision: Mapping[str, Any] | None = ...,
        next_for: Taker | None = ...,
    ) -> JobRecord | None: ...

    def fail(
        self,
        job_id: str,
        *,
        failure_type: str,
        message: str,
        external_id: str | None = ...,
        next_for: Taker | None = ...,
    ) -> JobRecord | None: ...


class Wakeups(Protocol):
    """What wakes idle workers and cancels running jobs (`conveyor.engine.notify.Notifier`)."""

    @property
    def generation(self) -> int: ...

    def wait_for_jobs(self, seen: int, timeout: float) -> int: ...

    def jobs_queued(self, count: int | None = None) -> None: ...

    def on_cancel(self, listener: Callable[[str], None]) -> None: ...


def job_context(
    job: JobRecord,
    artifacts: ArtifactStore,
    workspace: Path,
    log_file: Any,
    cancelled: threading.Event,
    now: float,
    process_started: Callable[[int], None] | None = None,
) -> JobContext:
    work = Work.of(job.data)
    inputs = tuple(
        ArtifactLocation(a.name, a.bucket, a.key, a.revision) for a in work.input_artifacts
    )
    outputs = tuple(OutputArtifact(o.name, o.bucket, o.key, o.files) for o in work.output_artifacts)
    return JobContext(
        job_id=job.id,
        pipeline_name=work.pipeline_name,
        pipeline_execution_id=work.pipeline_execution_id,
        stage_name=work.stage,
        action_name=work.action,
        action_execution_id=work.action_execution_id,
        configuration=work.configuration,
        input_artifacts=inputs,
        output_artifacts=outputs,
        artifacts=artifacts,
        workspace=workspace,
        log=log_file,
        cancelled=cancelled,
        commands=work.commands,
        output_variables=work.output_variables,
        environment_variables=tuple(
            EnvironmentVariable(v.name, v.value, v.type) for v in work.environment_variables
        ),
        source_revision=work.source_revision,
        source_variables=work.source_variables,
        time_left=None if work.deadline is None else max(0.0, work.deadline - now),
        process_started=process_started,
        job_data=work.job_data(),
        region=work.region,
    )


def _hand_back(context: JobContext) -> None:
    """Give back what the action's workspace borrowed, once (the action is over)."""
    while context.when_done:
        hand_back = context.when_done.pop()
        try:
            hand_back()
        except Exception:
            log.exception("job %s: handing back its workspace failed", context.job_id)


class WorkerPool:
    def __init__(
        self,
        jobs: JobSource,
        notifier: Wakeups,
        artifacts: ArtifactStore,
        providers: Mapping[ActionTypeId, Provider],
        home: Path,
        *,
        size: int,
        owner: str,
        labels: frozenset[str] = frozenset(),
    ) -> None:
        """``labels``: the worker labels this pool's workers have; they take the jobs that
        require none or some of them (`conveyor.domain.labels`)."""
        self._jobs = jobs
        self._labels = labels
        self._notifier = notifier
        self._artifacts = artifacts
        self._providers = dict(providers)
        self._types = list(self._providers)
        self._work = home / "work"
        self._logs = home / "logs"
        self._size = size
        self._owner = owner
        self._stop = threading.Event()
        # Draining: stopped claiming, but the jobs held run to their end and report.
        self._draining = False
        # The heartbeat outlives the workers' stop: a draining worker still renews its leases.
        self._beat_stop = threading.Event()
        # Job id → (its cancel flag, the worker identity that holds its lease).
        self._running: dict[str, tuple[threading.Event, str]] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._beat: threading.Thread | None = None
        # Workspaces are removed off the workers' path: the next job need not wait for it.
        self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-cleaner")
        notifier.on_cancel(self._cancel)

    def start(self) -> None:
        self._work.mkdir(parents=True, exist_ok=True)
        self._logs.mkdir(parents=True, exist_ok=True)
        for index in range(self._size):
            thread = threading.Thread(
                target=self._loop,
                args=(f"{self._owner}/worker-{index}",),
                name=f"conveyor-worker-{index}",
                daemon=True,
            )
            self._threads.append(thread)
        self._beat = threading.Thread(
            target=self._heartbeat, name="conveyor-heartbeat", daemon=True
        )
        for thread in self._threads:
            thread.start()
        self._beat.start()

    def counts(self) -> tuple[int, int]:
        """How many workers are running a job, and how many there are."""
        with self._lock:
            return len(self._running), self._size

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; cancel running jobs and wait for the workers to report."""
        self._stop.set()
        with self._lock:
            for cancelled, _ in self._running.values():
                cancelled.set()
        self._notifier.jobs_queued()
        self._join(time.monotonic() + timeout)

    def drain(self) -> None:
        """Take nothing new; let the jobs held run to their end and report, then stop."""
        self._draining = True
        self._stop.set()
        self._notifier.jobs_queued()
        self._join(None)

    def _join(self, deadline: float | None) -> None:
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._beat_stop.set()
        if self._beat is not None:
            self._beat.join(1.0)
        self._cleaner.shutdown(wait=True)

    @property
    def size(self) -> int:
        return self._size

    @property
    def running(self) -> int:
        """How many jobs the workers hold now."""
        with self._lock:
            return len(self._running)

    def _cancel(self, job_id: str) -> None:
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            running[0].set()

    def _loop(self, owner: str) -> None:
        """Claim and run jobs until stopped. Nothing ends this loop but the stop: a failure
        (the database away, typically) is logged and retried after a pause that grows while
        the failures go on, and a job whose result could not be reported is left to its
        lease, which the sweeper fails once it runs out."""
        seen = self._notifier.generation
        pause = IDLE_WAIT
        while not self._stop.is_set():
            try:
                claimed = self._jobs.claim(self._types, owner=owner, labels=self._labels)
                if claimed is None:
                    seen = self._notifier.wait_for_jobs(seen, IDLE_WAIT)
                # Reporting a result claims the next job in the same transaction when there
                # is one (never once stopped). A job claimed while draining is held: it runs.
                while claimed is not None and (self._draining or not self._stop.is_set()):
                    claimed = self._run(claimed, owner)
                pause = IDLE_WAIT
            except Exception:
                log.exception("worker %s failed; trying again in %.0f s", owner, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_PAUSE)

    def _run(self, job: JobRecord, owner: str) -> JobRecord | None:
        """Run one job and report it; the next job, when reporting claimed one."""
        cancelled = threading.Event()
        with self._lock:
            self._running[job.id] = (cancelled, owner)
        workspace = self._work / job.id
        context: JobContext | None = None
        try:
            if not getattr(self._providers.get(job.type_id), "makes_workspace", False):
                workspace.mkdir(parents=True, exist_ok=True)
            action_execution = job.data["pipelineContext"]["action"]["actionExecutionId"]
            with open(self._logs / f"{action_execution}.log", "a", encoding="utf-8") as log_file:
                context = job_context(
                    job,
                    self._artifacts,
                    workspace,
                    log_file,
                    cancelled,
                    time.time(),
                    lambda pid: leftovers.record(self._work, job.id, pid),
                )
                result = self._provide(job, context)
            # Before the result moves the execution on, so the next action finds it all back.
            _hand_back(context)
            return self._deliver(job, result, owner)
        except ConveyorError as exc:  # the job was abandoned or timed out meanwhile
            log.info("job %s: %s", job.id, exc.message)
        except Exception:
            log.exception("job %s failed in the worker", job.id)
            with contextlib.suppress(ConveyorError):
                self._jobs.fail(
                    job.id,
                    failure_type="SystemUnavailable",
                    message="The worker failed unexpectedly while running this action; "
                    "see the server log.",
                )
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            leftovers.forget(self._work, job.id)
            if context is not None:
                _hand_back(context)
            self._remove(workspace)
        return None

    def _remove(self, workspace: Path) -> None:
        """Remove a job's workspace: at once when handing back its copy took it all (gone or
        empty), else off the workers' path, so that the next job need not wait for it nor
        share the interpreter with its removal."""
        try:
            os.rmdir(workspace)
        except FileNotFoundError:
            pass
        except OSError:
            self._cleaner.submit(shutil.rmtree, workspace, ignore_errors=True)

    def _provide(self, job: JobRecord, context: JobContext) -> JobResult:
        provider = self._providers[job.type_id]
        try:
            return provider.run(context)
        except Exception as exc:
            log.exception("provider for %s failed", job.type_id)
            return JobResult.failed(f"The action's provider failed unexpectedly: {exc}")

    def _deliver(self, job: JobRecord, result: JobResult, owner: str) -> JobRecord | None:
        """Report the result, trying again with back-off while the database (or, for a
        remote worker, the server) is away: an action that ran is not lost to an outage.
        The heartbeat keeps renewing the lease meanwhile; a job ended meanwhile (its
        result refused, `ConveyorError`) or a hard stop ends the tries."""
        pause = 0.2
        while True:
            try:
                return self._report(job, result, owner)
            except ConveyorError as exc:
                if not getattr(exc, "transient", False):
                    raise
                error: Exception = exc
            except Exception as exc:
                error = exc
            if self._stop.is_set() and not self._draining:
                raise error
            log.warning(
                "job %s: cannot report its result (%s); trying again in %.1f s",
                job.id,
                str(error).strip().splitlines()[0] if str(error).strip() else repr(error),
                pause,
            )
            self._beat_stop.wait(pause)
            pause = min(pause * 2, RESULT_PAUSE)

    def _report(self, job: JobRecord, result: JobResult, owner: str) -> JobRecord | None:
        taker = None if self._stop.is_set() else Taker(self._types, owner, self._labels)
        if result.reported:
            if self._jobs.get(job.id).status != JobStatus.IN_PROGRESS:
                return None  # what the provider ran gave the job its result
            result = JobResult.failed(
                result.message
                or "The action ended without putting a result for its job "
                "(PutJobSuccessResult or PutJobFailureResult)."
            )
        if result.succeeded:
            revision = None
            if result.revision is not None:
                r = result.revision
                revision = {
                    k: v
                    for k, v in {
                        "revisionId": r.revision_id,
                        "revisionChangeIdentifier": r.change_identifier,
                        "created": r.created,
                        "revisionSummary": r.summary,
                        "revisionUrl": r.url,
                    }.items()
                    if v is not None
                }
            return self._jobs.succeed(
                job.id,
                summary=result.summary,
                external_id=result.external_execution_id,
                output_variables=result.output_variables,
                revision=revision,
                next_for=taker,
            )
        return self._jobs.fail(
            job.id,
            failure_type=result.failure_type.value,
            message=(result.message or "The action failed.")[:5000],
            external_id=result.external_execution_id,
            next_for=taker,
        )

    def _heartbeat(self) -> None:
        interval = self._jobs.lease / 3
        while not self._beat_stop.wait(interval):
            with self._lock:
                running = dict(self._running)
            for job_id, (cancelled, owner) in running.items():
                try:
                    if not self._jobs.renew(job_id, owner):
                        cancelled.set()
                except Exception:
                    log.exception("renewing the lease of job %s failed", job_id)
