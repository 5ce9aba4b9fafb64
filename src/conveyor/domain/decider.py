"""The decider: given the live state of a pipeline and a command, what happens next.

`decide` is pure. It works on private mutable copies of the runs, applies the command (after
checking its preconditions: an illegal command raises the CodePipeline error that says why),
then settles the pipeline until nothing more can move:

- a run inside a stage starts the next runOrder group once the previous one has succeeded;
  the stage fails once an action failed and none is still running; a requested stop waits
  for the running actions (or abandons them) and ends the run ``Stopped``;
- a run whose stage succeeded waits in front of the next stage (an inbound execution), or
  succeeds after the last one;
- waiting runs enter a stage when its way in is open and, in SUPERSEDED and QUEUED modes,
  the stage is not locked by another run: QUEUED admits them first in, first out;
  SUPERSEDED keeps only the newest waiting run, the others end ``Superseded``; PARALLEL
  never locks;
- a run of an older pipeline version starts nothing new: it is ``Cancelled`` once its
  running actions are done.

Every event goes through here: commands (stop, retry, rollback, override; their
preconditions are checked by `conveyor.domain.preconditions`), a new execution,
a transition changed, and every way an attempt or a rule ends (its job reported, its lease
or deadline ran out, its approval answered, it could not start). A result for an attempt
that is no longer in progress changes nothing. Every status change is checked against its
table in `conveyor.domain.status` before it becomes an effect.

This module is the stage-and-run half. Evaluating a stage's conditions and running their
rules is the other half (`conveyor.domain.conditiondecider`): it answers whether a kind of
conditions is met, and `UNMET` here says what an unmet one does to the stage. Both work on
one `conveyor.domain.deciderstate.Work`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from conveyor.domain.conditiondecider import MET, OUTDATED, ConditionDecider
from conveyor.domain.deciderstate import LiveRun, LiveStage, Work, legal
from conveyor.domain.execution import (
    ActionAbandoned,
    ActionEnded,
    ActionKey,
    ActionResult,
    ActionRun,
    ActionStarted,
    ApprovalAnswered,
    ConditionKind,
    CouldNotStart,
    DeadlinePassed,
    Effect,
    Event,
    JobRef,
    JobReported,
    JobStatusChanged,
    LeaseExpired,
    OverrideCondition,
    Retry,
    RetryMode,
    Rollback,
    RollbackStarted,
    RuleReported,
    RunMoved,
    RunStatusChanged,
    Snapshot,
    StageEntered,
    StageStatusChanged,
    Start,
    Stop,
    StopRecorded,
    StopRequest,
    TransitionChanged,
)
from conveyor.domain.pipeline import ExecutionMode
from conveyor.domain.plan import StagePlan
from conveyor.domain.preconditions import retryable, rollbackable, stoppable
from conveyor.domain.status import (
    ACTION_MOVES,
    ACTIVE_STAGE,
    EXECUTION_MOVES,
    FAILED_ACTIONS,
    JOB_MOVES,
    STAGE_MOVES,
    ActionStatus,
    ConditionStatus,
    ExecutionStatus,
    JobStatus,
    StageStatus,
)

A, E, S, J = ActionStatus, ExecutionStatus, StageStatus, JobStatus
C, K = ConditionStatus, ConditionKind
# What a stage does when its beforeEntry or onSuccess conditions are not met, by the result
# of the first unmet one: the stage's new status, and whether it rolls back. A failed stage
# fails its execution; a skipped one lets it go on to the next stage. CreatePipeline allows
# no other pairs (a result outside them would be read as FAIL).
UNMET: Mapping[tuple[ConditionKind, str], tuple[StageStatus, bool]] = {
    (K.BEFORE_ENTRY, "FAIL"): (S.FAILED, False),
    (K.BEFORE_ENTRY, "SKIP"): (S.SKIPPED, False),
    (K.ON_SUCCESS, "FAIL"): (S.FAILED, False),
    (K.ON_SUCCESS, "ROLLBACK"): (S.FAILED, True),
}
UNMET_NAMES = {K.BEFORE_ENTRY: "entry", K.ON_SUCCESS: "onSuccess"}


class _Decider(Work):
    def __init__(self, snapshot: Snapshot, now: float) -> None:
        super().__init__(snapshot, now)
        self.conditions = ConditionDecider(self)

    # -- small writes that record an effect each --------------------------------------------

    def run_status(self, run: LiveRun, new: ExecutionStatus, summary: str | None = None) -> None:
        if run.status != new:
            legal(EXECUTION_MOVES, run.status, new)
            self.effects.append(RunStatusChanged(run.id, run.status, new, summary))
            run.status = new

    def stage_status(self, run: LiveRun, new: StageStatus) -> None:
        stage = run.stage
        assert stage is not None
        if stage.status != new:
            legal(STAGE_MOVES, stage.status, new)
            self.effects.append(StageStatusChanged(run.id, stage.name, stage.status, new))
            stage.status = new

    def move(self, run: LiveRun, stage_index: int, *, waiting: bool) -> None:
        run.stage_index, run.waiting, run.arrived = stage_index, waiting, self.now
        if waiting:
            run.stage = None
        self.effects.append(RunMoved(run.id, stage_index, waiting, self.now))

    def start(self, run: LiveRun, action: str) -> None:
        stage = run.stage
        assert stage is not None
        stage.actions[action] = ActionRun("", action, A.IN_PROGRESS, stage.attempt)
        self.effects.append(ActionStarted(run.id, stage.name, action, stage.attempt))

    # -- commands ---------------------------------------------------------------------------

    def stop(self, command: Stop) -> None:
        run = stoppable(self, command)
        reason = (
            command.reason
            if command.reason is not None
            else (run.stop.reason if run.stop else None)
        )
        run.stop = StopRequest(command.abandon, reason)
        self.effects.append(StopRecorded(run.id, command.abandon, reason))
        if run.waiting:
            self.run_status(run, E.STOPPED, "Stopped before entering a stage")

    def retry(self, command: Retry) -> None:
        self.restart(retryable(self, command), command.mode, automatic=False)

    def restart(self, run: LiveRun, mode: RetryMode, *, automatic: bool) -> None:
        """Put a failed or stopped stage back in progress: its failed actions again, or
        all of them."""
        stage = run.stage
        assert stage is not None
        failed = [a for a in stage.actions.values() if a.status in FAILED_ACTIONS]
        old = stage.status
        legal(STAGE_MOVES, old, S.IN_PROGRESS)
        stage.attempt += 1
        if mode == RetryMode.ALL_ACTIONS:
            stage.base_attempt = stage.attempt
            stage.actions = {}
        self.effects.append(
            StageEntered(
                run.id,
                stage.name,
                stage.attempt,
                stage.base_attempt,
                retry_of=old,
                automatic=automatic,
            )
        )
        stage.status = S.IN_PROGRESS
        stage.auto_retried = automatic
        run.stop = None
        self.run_status(run, E.IN_PROGRESS)
        if mode == RetryMode.FAILED_ACTIONS:
            for action in failed:
                self.start(run, action.action)

    def rollback(self, event: Rollback) -> None:
        # The rollback execution is in the snapshot already; settling enters it.
        rollbackable(self, event)

    # -- results ----------------------------------------------------------------------------

    def attempt(self, key: ActionKey) -> tuple[LiveRun, ActionRun] | None:
        """The attempt a result is about, if it is still in progress."""
        run = next((r for r in self.runs if r.id == key.run_id), None)
        if run is None or run.waiting or run.stage is None or run.stage.name != key.stage:
            return None
        found = run.stage.actions.get(key.action)
        if found is None or found.id != key.action_id or found.status != A.IN_PROGRESS:
            return None
        return run, found

    def job(self, job: JobRef, new: JobStatus) -> None:
        if job.status != new:
            legal(JOB_MOVES, job.status, new)
            self.effects.append(JobStatusChanged(job.id, job.status, new))

    def end(
        self,
        key: ActionKey | None,
        result: ActionResult,
        jobs: tuple[JobRef, ...] = (),
        job_status: JobStatus = J.FAILED,
    ) -> None:
        # A job whose lease or deadline ran out ends even when its attempt has already.
        for job in jobs:
            self.job(job, job_status)
        found = None if key is None else self.attempt(key)
        if found is None:
            return
        run, attempt = found
        assert run.stage is not None and key is not None
        new = A.SUCCEEDED if result.succeeded else A.FAILED
        legal(ACTION_MOVES, attempt.status, new)
        self.effects.append(ActionEnded(key, attempt.status, new, result))
        run.stage.actions[key.action] = replace(
            attempt, status=new, message=None if result.succeeded else result.error_message
        )

    def event(self, event: Event) -> None:
        if isinstance(event, Stop):
            self.stop(event)
        elif isinstance(event, Retry):
            self.retry(event)
        elif isinstance(event, Rollback):
            self.rollback(event)
        elif isinstance(event, JobReported):
            self.end(event.key, event.result, event.others)
        elif isinstance(event, ApprovalAnswered):
            self.end(event.key, event.result)
        elif isinstance(event, LeaseExpired):
            status = J.FAILED if event.crashed else J.TIMED_OUT
            self.end(event.key, ActionResult.failure(event.message), (event.job,), status)
        elif isinstance(event, DeadlinePassed):
            self.end(event.key, ActionResult.failure(event.message), event.jobs, J.TIMED_OUT)
        elif isinstance(event, CouldNotStart):
            for key, message in event.failures:
                self.end(key, ActionResult.failure(message))
            for rule_key, message in event.rules:
                self.conditions.rule_reported(rule_key, ActionResult.failure(message))
        elif isinstance(event, RuleReported):
            self.conditions.rule_reported(event.key, event.result)
        elif isinstance(event, OverrideCondition):
            self.conditions.override(event)
        else:
            # Start, TransitionChanged: the snapshot already holds the new execution or the
            # transition; what follows from them is settling.
            assert isinstance(event, (Start, TransitionChanged))

    # -- settling ---------------------------------------------------------------------------

    def settle(self) -> None:
        changed = True
        while changed:
            before = len(self.effects)
            for run in self.runs:
                if run.active and not run.waiting:
                    self.settle_running(run)
            for index in sorted({r.stage_index for r in self.runs if r.active and r.waiting}):
                self.admit(index)
            changed = len(self.effects) != before

    def settle_running(self, run: LiveRun) -> None:
        stage = run.stage
        assert stage is not None
        plan = self.plan(run)
        running = [a for a in stage.actions.values() if a.status == A.IN_PROGRESS]
        if run.stop is not None:
            self.conditions.drop(run, C.ABANDONED)
            self.settle_stop(run, running)
            return
        outdated = self.outdated(run)
        if self.conditions.evaluating(run):
            if not outdated:
                return
            # No action runs while conditions are evaluated: the run ends here.
            self.conditions.drop(run, C.CANCELLED)
            self.cancel(run)
            return
        if (
            plan.stage.before_entry
            and not stage.actions
            and not self.judged(run, plan, K.BEFORE_ENTRY)
        ):
            return
        failed = [a for a in stage.actions.values() if a.status in FAILED_ACTIONS]
        if failed:
            if not running:
                met = True
                if plan.stage.on_failure and not outdated:
                    verdict = self.conditions.verdict(run, plan, K.ON_FAILURE)
                    if verdict is None:
                        return
                    met = verdict == MET
                self.stage_status(run, S.FAILED)
                if met and self.retries_automatically(run, plan):
                    mode = RetryMode(plan.stage.on_failure_retry_mode or RetryMode.FAILED_ACTIONS)
                    self.restart(run, mode, automatic=True)
                    return
                first = failed[0]
                detail = f": {first.message}" if first.message else ""
                self.run_status(
                    run,
                    E.FAILED,
                    f"Action '{first.action}' in stage '{stage.name}' failed{detail}",
                )
                if met and plan.stage.failure_result == "ROLLBACK":
                    self.roll_back(run, plan)
            return
        for group in plan.groups:
            states = [stage.actions.get(name) for name in group]
            if all(s is not None and s.status == A.SUCCEEDED for s in states):
                continue
            if outdated:
                if not running:
                    self.cancel(run)
                return
            for name, state in zip(group, states, strict=True):
                if state is None:
                    self.start(run, name)
            return
        if plan.stage.on_success and not self.judged(run, plan, K.ON_SUCCESS):
            return
        self.stage_status(run, S.SUCCEEDED)
        self.leave(run)

    def cancel(self, run: LiveRun) -> None:
        """A run of an older pipeline version with nothing left running ends ``Cancelled``."""
        self.stage_status(run, S.CANCELLED)
        self.run_status(run, E.CANCELLED, "The pipeline was updated")

    def judged(self, run: LiveRun, plan: StagePlan, kind: ConditionKind) -> bool:
        """The stage's conditions of ``kind`` (beforeEntry, onSuccess) are met: it goes on,
        its actions start or it succeeds. When they are not, `UNMET` says what follows."""
        verdict = self.conditions.verdict(run, plan, kind)
        if verdict == OUTDATED:
            self.cancel(run)
            return False
        if verdict is None or verdict == MET:
            return verdict == MET
        status, rolls_back = UNMET.get((kind, verdict), UNMET[kind, "FAIL"])
        self.stage_status(run, status)
        if status == S.SKIPPED:
            self.leave(run)
            return False
        self.run_status(
            run, E.FAILED, f"The {UNMET_NAMES[kind]} condition of stage '{plan.name}' was not met"
        )
        if rolls_back:
            self.roll_back(run, plan)
        return False

    def leave(self, run: LiveRun) -> None:
        """The run is done with its stage: on to the next, or the end."""
        stages = self.snapshot.plans[run.version].stages
        if run.rollback or run.stage_index + 1 == len(stages):
            self.run_status(run, E.SUCCEEDED)
        else:
            self.move(run, run.stage_index + 1, waiting=True)

    def retries_automatically(self, run: LiveRun, plan: StagePlan) -> bool:
        """onFailure RETRY: one automatic retry per failure, of the current pipeline."""
        stage = run.stage
        assert stage is not None
        return (
            plan.stage.on_failure_result == "RETRY"
            and not stage.auto_retried
            and run.version == self.snapshot.version
        )

    def roll_back(self, run: LiveRun, plan: StagePlan) -> None:
        """onFailure ROLLBACK (or an unmet onSuccess condition with ROLLBACK): a rollback to
        the latest execution that succeeded in the stage, once there is one (a rollback
        execution's own failure rolls nothing back)."""
        if run.rollback:
            return
        if run.version != self.snapshot.version or self.snapshot.mode == ExecutionMode.PARALLEL:
            return
        target = self.snapshot.rollback_targets.get(plan.name)
        if target is not None and target != run.id:
            self.effects.append(RollbackStarted(run.id, plan.name, target))

    def settle_stop(self, run: LiveRun, running: list[ActionRun]) -> None:
        assert run.stop is not None and run.stage is not None
        if run.stop.abandon:
            for action in running:
                legal(ACTION_MOVES, action.status, A.ABANDONED)
                self.effects.append(ActionAbandoned(run.id, run.stage.name, action.action))
                run.stage.actions[action.action] = replace(action, status=A.ABANDONED)
            running = []
        if running:
            self.stage_status(run, S.STOPPING)
            self.run_status(run, E.STOPPING)
            return
        if run.stage.status == S.IN_PROGRESS:
            self.stage_status(run, S.STOPPING)
        self.stage_status(run, S.STOPPED)
        if run.status == E.IN_PROGRESS:
            self.run_status(run, E.STOPPING)
        self.run_status(run, E.STOPPED, run.stop.reason)

    def admit(self, index: int) -> None:
        mode = self.snapshot.mode
        waiting = [r for r in self.runs if r.active and r.waiting and r.stage_index == index]
        for run in waiting:
            if run.version != self.snapshot.version:
                self.run_status(run, E.CANCELLED, "The pipeline was updated")
        waiting = [r for r in waiting if r.active]
        if mode == ExecutionMode.SUPERSEDED and len(waiting) > 1:
            newest = max(waiting, key=lambda r: r.seq)
            for run in waiting:
                if run is not newest:
                    self.run_status(run, E.SUPERSEDED, f"Superseded by execution {newest.id}")
            waiting = [newest]
        plan = self.snapshot.plans[self.snapshot.version].stages[index]
        if plan.name in self.snapshot.closed:
            return
        waiting.sort(key=lambda r: (r.arrived, r.seq))
        for run in waiting:
            if mode != ExecutionMode.PARALLEL and self.locked(index):
                return
            self.enter(run, plan)

    def locked(self, index: int) -> bool:
        return any(
            r.active
            and not r.waiting
            and r.stage_index == index
            and r.stage is not None
            and r.stage.status in ACTIVE_STAGE
            for r in self.runs
        )

    def enter(self, run: LiveRun, plan: StagePlan) -> None:
        run.waiting = False
        run.stage = LiveStage(plan.name, S.IN_PROGRESS, 1, 1)
        self.effects.append(RunMoved(run.id, plan.index, False, run.arrived))
        self.effects.append(StageEntered(run.id, plan.name, 1, 1))
        self.settle_running(run)


def decide(snapshot: Snapshot, event: Event | None, now: float) -> list[Effect]:
    """The effects of ``event`` (or of nothing, to let the pipeline move on) on ``snapshot``."""
    decider = _Decider(snapshot, now)
    if event is not None:
        decider.event(event)
    decider.settle()
    return decider.effects
