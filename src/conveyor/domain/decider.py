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

Every event goes through here: commands (stop, retry), a new execution, a transition
changed, and every way an attempt ends (its job reported, its lease or deadline ran out, its
approval answered, it could not start). A result for an attempt that is no longer in
progress changes nothing. Every status change is checked against its table in
`conveyor.domain.status` before it becomes an effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from conveyor.domain.errors import (
    ConditionNotOverridableException,
    ConflictException,
    DuplicatedStopRequestException,
    NotLatestPipelineExecutionException,
    PipelineExecutionNotStoppableException,
    StageNotFoundException,
    StageNotRetryableException,
    UnableToRollbackStageException,
)
from conveyor.domain.execution import (
    ActionAbandoned,
    ActionEnded,
    ActionKey,
    ActionResult,
    ActionRun,
    ActionStarted,
    ApprovalAnswered,
    ConditionEnded,
    ConditionKind,
    ConditionRun,
    ConditionStarted,
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
    RuleAbandoned,
    RuleEnded,
    RuleKey,
    RuleReported,
    RuleRun,
    RuleStarted,
    Run,
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
from conveyor.domain.pipeline import Condition, ExecutionMode
from conveyor.domain.plan import StagePlan
from conveyor.domain.status import (
    ACTION_MOVES,
    ACTIVE_EXECUTION,
    ACTIVE_STAGE,
    CONDITION_MET,
    CONDITION_MOVES,
    EXECUTION_MOVES,
    JOB_MOVES,
    RULE_MOVES,
    STAGE_MOVES,
    ActionStatus,
    ConditionStatus,
    ExecutionStatus,
    JobStatus,
    RuleStatus,
    StageStatus,
    Status,
    can_move,
)

A, E, S, J = ActionStatus, ExecutionStatus, StageStatus, JobStatus
C, R, K = ConditionStatus, RuleStatus, ConditionKind
FAILED_ACTIONS = frozenset({A.FAILED, A.ABANDONED})
# What evaluating a kind of conditions came to: all met, or the result of the first unmet one.
MET = "MET"
# Conditions whose evaluation ended without a verdict: a retry evaluates them again.
UNDECIDED = frozenset({C.ABANDONED, C.CANCELLED})


def declared_conditions(plan: StagePlan, kind: ConditionKind) -> tuple[Condition, ...]:
    stage = plan.stage
    if kind == K.BEFORE_ENTRY:
        return stage.before_entry
    return stage.on_success if kind == K.ON_SUCCESS else stage.on_failure


def rule_names(condition: Condition) -> list[str]:
    return [str(rule.get("name", "")) for rule in condition.rules]


@dataclass(slots=True)
class _Stage:
    name: str
    status: StageStatus
    attempt: int
    base_attempt: int
    actions: dict[str, ActionRun] = field(default_factory=dict)
    auto_retried: bool = False
    conditions: list[ConditionRun] = field(default_factory=list)


@dataclass(slots=True)
class _Run:
    id: str
    seq: int
    version: int
    status: ExecutionStatus
    stage_index: int
    waiting: bool
    arrived: float
    stop: StopRequest | None
    stage: _Stage | None
    rollback: bool = False

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_EXECUTION


def _legal(table: Mapping[Status, frozenset[Status]], old: Status, new: Status) -> None:
    """A move outside the status tables is a bug in the decider, never a user error."""
    if not can_move(table, old, new):
        raise AssertionError(f"illegal status move {old} -> {new}")


def _live(run: Run) -> _Run:
    stage = None
    if run.stage is not None:
        s = run.stage
        stage = _Stage(
            s.stage,
            s.status,
            s.attempt,
            s.base_attempt,
            dict(s.actions),
            s.auto_retried,
            list(s.conditions),
        )
    return _Run(
        run.id,
        run.seq,
        run.version,
        run.status,
        run.stage_index,
        run.waiting,
        run.arrived,
        run.stop,
        stage,
        run.rollback,
    )


class _Decider:
    def __init__(self, snapshot: Snapshot, now: float) -> None:
        self.snapshot = snapshot
        self.now = now
        self.runs = sorted((_live(r) for r in snapshot.runs), key=lambda r: r.seq)
        self.effects: list[Effect] = []

    # -- small writes that record an effect each --------------------------------------------

    def run_status(self, run: _Run, new: ExecutionStatus, summary: str | None = None) -> None:
        if run.status != new:
            _legal(EXECUTION_MOVES, run.status, new)
            self.effects.append(RunStatusChanged(run.id, run.status, new, summary))
            run.status = new

    def stage_status(self, run: _Run, new: StageStatus) -> None:
        stage = run.stage
        assert stage is not None
        if stage.status != new:
            _legal(STAGE_MOVES, stage.status, new)
            self.effects.append(StageStatusChanged(run.id, stage.name, stage.status, new))
            stage.status = new

    def move(self, run: _Run, stage_index: int, *, waiting: bool) -> None:
        run.stage_index, run.waiting, run.arrived = stage_index, waiting, self.now
        if waiting:
            run.stage = None
        self.effects.append(RunMoved(run.id, stage_index, waiting, self.now))

    def start(self, run: _Run, action: str) -> None:
        stage = run.stage
        assert stage is not None
        stage.actions[action] = ActionRun("", action, A.IN_PROGRESS, stage.attempt)
        self.effects.append(ActionStarted(run.id, stage.name, action, stage.attempt))

    def plan(self, run: _Run) -> StagePlan:
        return self.snapshot.plans[run.version].stages[run.stage_index]

    def find(self, run_id: str) -> _Run:
        for run in self.runs:
            if run.id == run_id:
                return run
        raise KeyError(run_id)  # pragma: no cover - the engine always loads the target

    # -- commands ---------------------------------------------------------------------------

    def stop(self, command: Stop) -> None:
        run = self.find(command.run_id)
        if not run.active:
            raise PipelineExecutionNotStoppableException(
                f"Execution {run.id} is {run.status}; only an execution in progress can be stopped."
            )
        already_abandoning = run.stop is not None and run.stop.abandon
        if run.status == E.STOPPING and (not command.abandon or already_abandoning):
            raise DuplicatedStopRequestException(
                f"Execution {run.id} is already stopping; only a stop that abandons its "
                "running actions can follow."
            )
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
        run = self.find(command.run_id)
        plan = self.snapshot.plans[run.version]
        index = plan.index(command.stage)
        if index is None:
            raise StageNotFoundException(f"Stage '{command.stage}' does not exist.")
        if run.version != self.snapshot.version:
            raise StageNotRetryableException(
                f"The pipeline was updated after execution {run.id} ran; its stage "
                f"'{command.stage}' can no longer be retried."
            )
        stage = run.stage
        if run.stage_index != index or run.waiting or stage is None:
            raise StageNotRetryableException(
                f"Execution {run.id} did not stop or fail in stage '{command.stage}'."
            )
        if stage.status not in (S.FAILED, S.STOPPED) or run.status not in (E.FAILED, E.STOPPED):
            raise StageNotRetryableException(
                f"Stage '{command.stage}' of execution {run.id} is {stage.status}; only a failed "
                "or stopped stage can be retried."
            )
        if self.snapshot.latest_in_stage.get(command.stage, run.id) != run.id:
            raise NotLatestPipelineExecutionException(
                f"Execution {run.id} is not the latest execution in stage '{command.stage}'."
            )
        if (
            any(
                r.active and not r.waiting and r.stage_index == index
                for r in self.runs
                if r is not run
            )
            and self.snapshot.mode != ExecutionMode.PARALLEL
        ):
            raise ConflictException(f"Stage '{command.stage}' is busy with another execution.")
        failed = [a for a in stage.actions.values() if a.status in FAILED_ACTIONS]
        if command.mode == RetryMode.FAILED_ACTIONS and not failed:
            raise StageNotRetryableException(
                f"Stage '{command.stage}' of execution {run.id} has no failed actions."
            )
        self.restart(run, command.mode, automatic=False)

    def restart(self, run: _Run, mode: RetryMode, *, automatic: bool) -> None:
        """Put a failed or stopped stage back in progress: its failed actions again, or
        all of them."""
        stage = run.stage
        assert stage is not None
        failed = [a for a in stage.actions.values() if a.status in FAILED_ACTIONS]
        old = stage.status
        _legal(STAGE_MOVES, old, S.IN_PROGRESS)
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
        run = self.find(event.run_id)
        plan = self.snapshot.plans[run.version]
        index = plan.index(event.stage)
        if index is None:
            raise StageNotFoundException(f"Stage '{event.stage}' does not exist.")
        if self.snapshot.mode == ExecutionMode.PARALLEL:
            raise UnableToRollbackStageException(
                "A pipeline in PARALLEL execution mode cannot roll back a stage."
            )
        if index == 0:
            raise UnableToRollbackStageException(
                f"Stage '{event.stage}' is the source stage, which cannot be rolled back."
            )
        if not run.rollback or run.stage_index != index or not run.waiting:
            raise AssertionError("a rollback execution waits in front of its stage")

    # -- results ----------------------------------------------------------------------------

    def attempt(self, key: ActionKey) -> tuple[_Run, ActionRun] | None:
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
            _legal(JOB_MOVES, job.status, new)
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
        _legal(ACTION_MOVES, attempt.status, new)
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
                self.rule_reported(rule_key, ActionResult.failure(message))
        elif isinstance(event, RuleReported):
            self.rule_reported(event.key, event.result)
        elif isinstance(event, OverrideCondition):
            self.override(event)
        else:
            # Start, TransitionChanged: the snapshot already holds the new execution or the
            # transition; what follows from them is settling.
            assert isinstance(event, (Start, TransitionChanged))

    # -- conditions -------------------------------------------------------------------------

    def put_condition(self, stage: _Stage, condition: ConditionRun) -> None:
        stage.conditions = [
            c
            for c in stage.conditions
            if not (c.kind == condition.kind and c.index == condition.index)
        ]
        stage.conditions.append(condition)

    def verdict(self, run: _Run, plan: StagePlan, kind: ConditionKind) -> str | None:
        """MET, the result of the first condition of ``kind`` that was not met, or None while
        they are being evaluated (this begins the next one, when none runs)."""
        stage = run.stage
        assert stage is not None
        latest = {c.index: c for c in stage.conditions if c.kind == kind}
        for index, condition in enumerate(declared_conditions(plan, kind)):
            found = latest.get(index)
            stale = found is not None and (
                (kind != K.BEFORE_ENTRY and found.attempt != stage.attempt)
                or (found.status in UNDECIDED and found.attempt != stage.attempt)
            )
            if found is None or stale:
                self.begin_condition(run, plan, kind, index)
                return None
            assert found is not None
            if found.status == C.IN_PROGRESS:
                return None
            if found.status not in CONDITION_MET:
                return condition.result or "FAIL"
        return MET

    def begin_condition(self, run: _Run, plan: StagePlan, kind: ConditionKind, index: int) -> None:
        stage = run.stage
        assert stage is not None
        if run.version != self.snapshot.version:
            self.cancel(run)
            return
        self.effects.append(ConditionStarted(run.id, stage.name, kind, index, stage.attempt))
        condition = ConditionRun(kind, index, C.IN_PROGRESS, stage.attempt)
        names = rule_names(declared_conditions(plan, kind)[index])
        if not names:
            self.put_condition(stage, condition)
            self.end_condition(run, condition, C.SUCCEEDED)
            return
        self.start_rule(run, condition, names[0])

    def start_rule(self, run: _Run, condition: ConditionRun, rule: str) -> None:
        stage = run.stage
        assert stage is not None
        self.effects.append(
            RuleStarted(run.id, stage.name, condition.kind, condition.index, rule, stage.attempt)
        )
        self.put_condition(stage, replace(condition, rule=RuleRun("", rule, R.IN_PROGRESS)))

    def end_condition(
        self,
        run: _Run,
        condition: ConditionRun,
        new: ConditionStatus,
        summary: str | None = None,
    ) -> None:
        stage = run.stage
        assert stage is not None
        _legal(CONDITION_MOVES, condition.status, new)
        self.effects.append(
            ConditionEnded(
                run.id,
                stage.name,
                condition.kind,
                condition.index,
                condition.attempt,
                condition.status,
                new,
                summary,
            )
        )
        self.put_condition(stage, replace(condition, status=new))

    def rule_reported(self, key: RuleKey, result: ActionResult) -> None:
        run = next((r for r in self.runs if r.id == key.run_id), None)
        if run is None or run.waiting or run.stage is None or run.stage.name != key.stage:
            return
        stage = run.stage
        condition = next(
            (
                c
                for c in stage.conditions
                if c.kind == key.kind and c.index == key.index and c.status == C.IN_PROGRESS
            ),
            None,
        )
        rule = None if condition is None else condition.rule
        if (
            condition is None
            or rule is None
            or rule.rule != key.rule
            or rule.id != key.rule_execution_id
            or rule.status != R.IN_PROGRESS
        ):
            return
        new = R.SUCCEEDED if result.succeeded else R.FAILED
        _legal(RULE_MOVES, rule.status, new)
        self.effects.append(RuleEnded(key, rule.status, new, result))
        condition = replace(condition, rule=replace(rule, status=new))
        self.put_condition(stage, condition)
        if not result.succeeded:
            detail = f": {result.error_message}" if result.error_message else ""
            self.end_condition(run, condition, C.FAILED, f"Rule '{key.rule}' failed{detail}")
            return
        names = rule_names(declared_conditions(self.plan(run), key.kind)[key.index])
        position = names.index(key.rule) if key.rule in names else len(names)
        if position + 1 < len(names):
            self.start_rule(run, condition, names[position + 1])
        else:
            self.end_condition(run, condition, C.SUCCEEDED)

    def override(self, command: OverrideCondition) -> None:
        run = next((r for r in self.runs if r.id == command.run_id), None)
        plan = self.snapshot.plans[self.snapshot.version]
        index = plan.index(command.stage)
        if index is None:
            raise StageNotFoundException(f"Stage '{command.stage}' does not exist.")
        if self.snapshot.latest_in_stage.get(command.stage, command.run_id) != command.run_id:
            raise NotLatestPipelineExecutionException(
                f"Execution {command.run_id} is not the latest execution in stage "
                f"'{command.stage}'."
            )
        stage = None if run is None or run.waiting else run.stage
        current = (
            None
            if stage is None or stage.name != command.stage
            else next(
                (
                    c
                    for c in stage.conditions
                    if c.kind == command.kind and c.status == C.IN_PROGRESS
                ),
                None,
            )
        )
        if run is None or stage is None or current is None:
            raise ConditionNotOverridableException(
                f"Stage '{command.stage}' of execution {command.run_id} is not evaluating "
                f"its {command.kind} conditions."
            )
        rule = current.rule
        if rule is not None and rule.status == R.IN_PROGRESS:
            key = RuleKey(run.id, stage.name, current.kind, current.index, rule.rule, rule.id)
            self.effects.append(RuleAbandoned(key))
            current = replace(current, rule=replace(rule, status=R.ABANDONED))
        self.end_condition(run, current, C.OVERRIDDEN, "Overridden")
        declared = declared_conditions(self.plan(run), command.kind)
        for later in range(current.index + 1, len(declared)):
            self.effects.append(
                ConditionStarted(run.id, stage.name, command.kind, later, stage.attempt)
            )
            started = ConditionRun(command.kind, later, C.IN_PROGRESS, stage.attempt)
            self.end_condition(run, started, C.OVERRIDDEN, "Overridden")

    def drop_conditions(self, run: _Run, new: ConditionStatus) -> None:
        """End the conditions being evaluated (the execution stopped, the pipeline was
        updated): their running rules are abandoned."""
        stage = run.stage
        assert stage is not None
        for current in [c for c in stage.conditions if c.status == C.IN_PROGRESS]:
            condition, rule = current, current.rule
            if rule is not None and rule.status == R.IN_PROGRESS:
                _legal(RULE_MOVES, rule.status, R.ABANDONED)
                key = RuleKey(
                    run.id, stage.name, condition.kind, condition.index, rule.rule, rule.id
                )
                self.effects.append(RuleAbandoned(key))
                condition = replace(condition, rule=replace(rule, status=R.ABANDONED))
            self.end_condition(run, condition, new)

    def evaluating(self, run: _Run) -> bool:
        stage = run.stage
        assert stage is not None
        return any(c.status == C.IN_PROGRESS for c in stage.conditions)

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

    def settle_running(self, run: _Run) -> None:
        stage = run.stage
        assert stage is not None
        plan = self.plan(run)
        running = [a for a in stage.actions.values() if a.status == A.IN_PROGRESS]
        if run.stop is not None:
            self.drop_conditions(run, C.ABANDONED)
            self.settle_stop(run, running)
            return
        outdated = run.version != self.snapshot.version
        if self.evaluating(run):
            if not outdated:
                return
            # No action runs while conditions are evaluated: the run ends here.
            self.drop_conditions(run, C.CANCELLED)
            self.cancel(run)
            return
        if plan.stage.before_entry and not stage.actions and not self.entered(run, plan):
            return
        failed = [a for a in stage.actions.values() if a.status in FAILED_ACTIONS]
        if failed:
            if not running:
                met = True
                if plan.stage.on_failure and not outdated:
                    verdict = self.verdict(run, plan, K.ON_FAILURE)
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
                if met and plan.stage.on_failure_result == "ROLLBACK":
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
        if plan.stage.on_success and not self.succeeded(run, plan):
            return
        self.stage_status(run, S.SUCCEEDED)
        self.leave(run)

    def cancel(self, run: _Run) -> None:
        """A run of an older pipeline version with nothing left running ends ``Cancelled``."""
        self.stage_status(run, S.CANCELLED)
        self.run_status(run, E.CANCELLED, "The pipeline was updated")

    def entered(self, run: _Run, plan: StagePlan) -> bool:
        """The beforeEntry conditions are met: the stage's actions may start. When they are
        not, the stage is skipped (SKIP) or fails with the execution (FAIL)."""
        verdict = self.verdict(run, plan, K.BEFORE_ENTRY)
        if verdict is None or verdict == MET:
            return verdict == MET
        if verdict == "SKIP":
            self.stage_status(run, S.SKIPPED)
            self.leave(run)
            return False
        self.stage_status(run, S.FAILED)
        self.run_status(run, E.FAILED, f"The entry condition of stage '{plan.name}' was not met")
        return False

    def succeeded(self, run: _Run, plan: StagePlan) -> bool:
        """The onSuccess conditions are met: the stage succeeds. When they are not, it fails
        with the execution, and rolls back for ROLLBACK."""
        verdict = self.verdict(run, plan, K.ON_SUCCESS)
        if verdict is None or verdict == MET:
            return verdict == MET
        self.stage_status(run, S.FAILED)
        self.run_status(
            run, E.FAILED, f"The onSuccess condition of stage '{plan.name}' was not met"
        )
        if verdict == "ROLLBACK":
            self.roll_back(run, plan)
        return False

    def leave(self, run: _Run) -> None:
        """The run is done with its stage: on to the next, or the end."""
        stages = self.snapshot.plans[run.version].stages
        if run.rollback or run.stage_index + 1 == len(stages):
            self.run_status(run, E.SUCCEEDED)
        else:
            self.move(run, run.stage_index + 1, waiting=True)

    def retries_automatically(self, run: _Run, plan: StagePlan) -> bool:
        """onFailure RETRY: one automatic retry per failure, of the current pipeline."""
        stage = run.stage
        assert stage is not None
        return (
            plan.stage.on_failure_result == "RETRY"
            and not stage.auto_retried
            and run.version == self.snapshot.version
        )

    def roll_back(self, run: _Run, plan: StagePlan) -> None:
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

    def settle_stop(self, run: _Run, running: list[ActionRun]) -> None:
        assert run.stop is not None and run.stage is not None
        if run.stop.abandon:
            for action in running:
                _legal(ACTION_MOVES, action.status, A.ABANDONED)
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

    def enter(self, run: _Run, plan: StagePlan) -> None:
        run.waiting = False
        run.stage = _Stage(plan.name, S.IN_PROGRESS, 1, 1)
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
