"""The sweeper: the periodic pass that catches whatever no notification will.

It fails actions whose worker stopped renewing its lease and actions past their deadline
(approvals too), CodeBuild actions whose job waited for a worker longer than the project's
queued timeout, fails at start-up the jobs a previous run of this node held when it died,
and wakes the workers if queued jobs are waiting, in case a wake-up was lost. Each fix is
its own transaction with the pipeline locked, like any other change. Every few minutes it
also removes events and finished jobs older than the retention settings say to keep.

Of several servers on one PostgreSQL database, one sweeps at a time: the holder of the
sweeper's advisory lock (`conveyor.store.Leadership`), which goes with its connection when
the holder dies, and the others try to take it at every pass, so a dead sweeper's duties
move to another server within a pass or two. Every server still wakes its own workers when
jobs wait (a wake-up from another server may have been lost), and recovers its own node's
jobs at start-up.

A database outage stops no sweep for good: a pass that fails is logged and the next one
tries again. Leases cannot be renewed while the database is away, so after passes failed
the sweeper lets leases run for ``grace`` seconds more before it ends their jobs: workers
that held on to their results through the outage report them, and nothing that ran is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.execution import (
    ActionResult,
    ConditionKind,
    DeadlinePassed,
    LeaseExpired,
    RuleReported,
)
from conveyor.domain.plan import APPROVAL
from conveyor.domain.status import JobStatus
from conveyor.engine.actiontypes import resolver
from conveyor.engine.clock import Clock
from conveyor.engine.completion import job_ref, key_of, report, rule_key
from conveyor.engine.executions import ExecutionService
from conveyor.engine.notify import Notifier
from conveyor.engine.rulestart import rule_declaration, rule_timeout
from conveyor.engine.runner import Outcome, Runner
from conveyor.engine.starting import action_timeout
from conveyor.store import (
    ActionRecord,
    JobRecord,
    Leadership,
    PipelineRecord,
    RuleRecord,
    Store,
    Tx,
)
from conveyor.store.retention import prune_history

log = logging.getLogger("conveyor.sweeper")
INTERVAL = 1.0
CRASHED = "Conveyor stopped while this action was running, so its result is unknown; "
RETRY = "retry the stage to run it again."
PRUNE_INTERVAL = 300.0  # seconds between removals of what is past its retention
_DAY = 86400.0
_FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT)
_CODEBUILD = ActionTypeId("Build", "AWS", "CodeBuild", "1")
_SHORTEST_QUEUED_TIMEOUT = 5 * 60.0  # CodeBuild's least queuedTimeoutInMinutes


@dataclass(frozen=True, slots=True)
class Retention:
    """Seconds to keep events and finished jobs (their data with them); None: for ever."""

    events: float | None = None
    jobs: float | None = None

    @classmethod
    def of_days(cls, events: float | None, jobs: float | None) -> Retention:
        return cls(None if events is None else events * _DAY, None if jobs is None else jobs * _DAY)


class Sweeper:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        runner: Runner,
        executions: ExecutionService,
        notifier: Notifier,
        retention: Retention | None = None,
        leadership: Leadership | None = None,
        grace: float = 30.0,
    ) -> None:
        self._store = store
        # Held while this server sweeps; None: always (one process owns the database).
        self._leadership = leadership
        self._clock = clock
        self._runner = runner
        self._executions = executions
        self._notifier = notifier
        self._retention = retention or Retention()
        self._pruned = float("-inf")
        self._leading = False
        self._grace = grace
        # Whether a pass failed since the last good one; until when leases are spared.
        self._blind = False
        self._spare_until = float("-inf")

    def recover(self, node: str, incarnation: str) -> int:
        """Fail the jobs that earlier runs of this node held: nobody will finish them."""
        with self._store.read() as tx:
            orphans = [
                j
                for j in tx.jobs.held_by(f"{node}/")
                if not (j.owner or "").startswith(f"{node}/{incarnation}/")
            ]
        for job in orphans:
            self._fail_job(job, CRASHED + RETRY, crashed=True)
        return len(orphans)

    @property
    def leading(self) -> bool:
        """Whether this server sweeps (holds the sweeper's lock), as of its last pass."""
        return self._leading

    def sweep(self) -> None:
        """One pass: as the sweeping server, every fix due; else only the wake-up."""
        self._leading = self._leadership is None or self._leadership.hold()
        if not self._leading:
            with self._store.read() as tx:
                queued = tx.jobs.count_queued_any()
            if queued:
                self._notifier.jobs_queued()
            return
        now = self._clock.now()
        with self._store.read() as tx:
            expired = tx.jobs.expired(now)
            overdue = tx.actions.overdue(now)
            late_rules = tx.rule_runs.overdue(now)
            queued = tx.jobs.count_queued_any()
            waited = _waited_too_long(tx, now)
        # Looked at once the leases are read: a failure told meanwhile spares them too.
        if self._blind:
            self._blind, self._spare_until = False, now + self._grace
        if now < self._spare_until:
            expired = []
        for job in expired:
            heard = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.updated))
            self._fail_job(
                job,
                f"The worker running this action ({job.owner}) stopped renewing its lease "
                f"(it may have stopped or lost its connection); last heard from at {heard}.",
            )
        for action in overdue:
            self._time_out(action)
        for rule in late_rules:
            self._time_out_rule(rule)
        for job, minutes in waited:
            self._time_out_queued(job, minutes)
        if queued:
            self._notifier.jobs_queued()
        if now - self._pruned >= PRUNE_INTERVAL:
            self._pruned = now
            self.prune(now)

    def failed(self) -> None:
        """A pass failed (the database away, typically): leases could not be renewed
        meanwhile, so the next good pass spares them for ``grace`` seconds."""
        self._blind = True

    def prune(self, now: float) -> tuple[int, int]:
        """Remove events and finished jobs past their retention; how many of each."""
        kept = self._retention
        return prune_history(self._store, now, kept.events, kept.jobs, _FINISHED)

    def run(self, stop: threading.Event, interval: float = INTERVAL) -> None:
        try:
            while not stop.wait(interval):
                try:
                    self.sweep()
                except Exception:  # keep sweeping: one bad pass must not end the loop
                    self.failed()
                    log.exception("sweep failed")
                try:
                    self._store.checkpoint()  # so that no job result's commit has to
                except Exception:
                    log.exception("checkpointing the database failed")
        finally:
            if self._leadership is not None:
                self._leadership.release()

    def _fail_job(self, job: JobRecord, message: str, *, crashed: bool = False) -> None:
        """The job's worker is gone: the job times out (fails, when ``crashed``) and so
        does its attempt, through the decider."""

        def work(tx: Tx) -> tuple[None, Outcome]:
            pipeline = tx.pipelines.get_by_id(job.pipeline_id, lock=True)
            current = tx.jobs.get(job.id)
            if (
                pipeline is None
                or current is None
                or current.status
                not in (
                    JobStatus.DISPATCHED,
                    JobStatus.IN_PROGRESS,
                )
            ):
                return None, Outcome()
            action = tx.actions.get(job.action_execution_id)
            key = None if action is None else key_of(action)
            event = LeaseExpired(key, job_ref(current), message, crashed=crashed)
            if action is None:
                outcome = self._runner.advance(tx, pipeline, event)
                rule = tx.rule_runs.get_rule(job.action_execution_id)
                if rule is not None:
                    failure = RuleReported(rule_key(rule), ActionResult.failure(message))
                    outcome.merge(self._runner.advance(tx, pipeline, failure))
                return None, outcome
            outcome = report(tx, self._runner, pipeline, action, event)
            if crashed and action.status == "InProgress":
                _unless_retryable(tx, pipeline, action)
            return None, outcome

        self._executions.write(work)

    def _time_out_rule(self, rule: RuleRecord) -> None:
        """A rule ran past its time: its jobs time out and the rule fails, through the
        decider."""

        def work(tx: Tx) -> tuple[None, Outcome]:
            pipeline = tx.pipelines.get_by_id(rule.pipeline_id, lock=True)
            current = tx.rule_runs.get_rule(rule.id)
            if pipeline is None or current is None or current.status != "InProgress":
                return None, Outcome()
            plan = self._runner.plans.get(tx, pipeline.id, current.pipeline_version)
            declared = rule_declaration(
                plan,
                current.stage,
                ConditionKind(current.kind),
                current.condition_index,
                current.rule,
            )
            minutes = round(rule_timeout(declared) / 60)
            message = f"The rule timed out after {minutes} minutes."
            outcome = Outcome()
            for job in tx.jobs.active_for(current.id):
                timed_out = LeaseExpired(None, job_ref(job), message)
                outcome.merge(self._runner.advance(tx, pipeline, timed_out))
            failure = RuleReported(rule_key(current), ActionResult.failure(message, "TimedOut"))
            outcome.merge(self._runner.advance(tx, pipeline, failure, focus=current.execution_id))
            return None, outcome

        self._executions.write(work)

    def _time_out(self, action: ActionRecord) -> None:
        def work(tx: Tx) -> tuple[None, Outcome]:
            pipeline = tx.pipelines.get_by_id(action.pipeline_id, lock=True)
            current = tx.actions.get(action.id)
            if pipeline is None or current is None or current.status != "InProgress":
                return None, Outcome()
            plan = self._runner.plans.get(tx, pipeline.id, current.pipeline_version)
            stage = plan.stage(current.stage)
            assert stage is not None
            declared = stage.actions[current.action]
            action_type = resolver(tx)(declared.type_id)
            seconds = action_timeout(declared, action_type.job_timeout if action_type else None)
            minutes = round(seconds / 60)
            what = "The approval request" if declared.type_id == APPROVAL else "The action"
            message = f"{what} timed out after {minutes} minutes."
            jobs = tuple(job_ref(j) for j in tx.jobs.active_for(current.id))
            event = DeadlinePassed(key_of(current), jobs, message)
            outcome = report(tx, self._runner, pipeline, current, event)
            return None, outcome

        self._executions.write(work)

    def _time_out_queued(self, job: JobRecord, minutes: int) -> None:
        """A CodeBuild action's job waited for a worker past the project's queued timeout:
        the action fails as one past its deadline does, through the decider."""

        def work(tx: Tx) -> tuple[None, Outcome]:
            pipeline = tx.pipelines.get_by_id(job.pipeline_id, lock=True)
            current = tx.jobs.get(job.id)
            action = tx.actions.get(job.action_execution_id)
            if (
                pipeline is None
                or current is None
                or current.status != JobStatus.QUEUED
                or action is None
                or action.status != "InProgress"
            ):
                return None, Outcome()
            message = (
                f"The build timed out in the queue: no worker took it within the project's "
                f"queued timeout of {minutes} minutes."
            )
            event = DeadlinePassed(key_of(action), (job_ref(current),), message)
            return None, report(tx, self._runner, pipeline, action, event)

        self._executions.write(work)


def _waited_too_long(tx: Tx, now: float) -> list[tuple[JobRecord, int]]:
    """CodeBuild jobs still queued past their project's ``queuedTimeoutInMinutes``, with it."""
    late = []
    for job in tx.jobs.queued_before([_CODEBUILD], now - _SHORTEST_QUEUED_TIMEOUT):
        configuration = (job.data.get("actionConfiguration") or {}).get("configuration") or {}
        project = tx.projects.get(str(configuration.get("ProjectName") or "").strip())
        if project is None:
            continue
        minutes = int(project.definition.get("queuedTimeoutInMinutes", 480))
        if now >= job.created + minutes * 60:
            late.append((job, minutes))
    return late


def _unless_retryable(tx: Tx, pipeline: PipelineRecord, action: ActionRecord) -> None:
    """Tell what to do instead of retrying when the failed stage can no longer be retried:
    the pipeline changed, or a newer execution entered the stage (as one waiting behind
    does the moment this one fails)."""
    latest = tx.executions.latest_in_stage(pipeline.id, action.stage)
    if pipeline.version != action.pipeline_version:
        why = "the pipeline was updated since this execution started, so "
    elif latest is not None and latest.execution_id != action.execution_id:
        why = f"a newer execution ({latest.execution_id}) has entered this stage since, so "
    else:
        return
    instead = f"{why}this stage cannot be retried: start a new execution to run the action again."
    tx.actions.update(action.id, None, error_message=CRASHED + instead)
    execution = tx.executions.get(action.execution_id)
    if execution is not None and execution.summary and RETRY in execution.summary:
        summary = execution.summary.replace(RETRY, instead)
        tx.executions.update(execution.id, None, summary=summary)
