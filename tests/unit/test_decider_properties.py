"""The decider under random event sequences: only moves in the status tables ever happen,
every effect starts from the state the model holds, and every execution ends.

The model is a small in-memory pipeline that applies the decider's effects the way the
engine's writers do; random events (results of running attempts, stale results, stops,
retries, new executions, transitions, pipeline updates) are fed in, then every attempt still
running is answered with a success until nothing moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.domain.decider import decide
from conveyor.domain.errors import ConveyorError
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
    StageRun,
    StageStatusChanged,
    Start,
    Stop,
    StopRecorded,
    StopRequest,
    TransitionChanged,
)
from conveyor.domain.pipeline import ExecutionMode, parse_pipeline
from conveyor.domain.plan import Plan, make_plan
from conveyor.domain.status import (
    ACTION_MOVES,
    ACTIVE_EXECUTION,
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
    can_move,
)
from tests.support.declarations import build_action, pipeline, source_action

A, J, C, R = ActionStatus, JobStatus, ConditionStatus, RuleStatus
RULE = {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"}


def _condition(result: str, *names: str) -> dict[str, Any]:
    rules = [{"name": n, "ruleTypeId": RULE, "configuration": {}} for n in names]
    return {"conditions": [{"result": result, "rules": rules}]}


def _plan(version: int) -> Plan:
    build_a = {**build_action("A"), "runOrder": 1}
    build_b = {**build_action("B"), "runOrder": 1}
    test = {**build_action("T"), "runOrder": 2}
    declaration = pipeline(
        stages=[
            {"name": "Source", "actions": [source_action()]},
            {
                "name": "Build",
                "actions": [build_a, build_b, test],
                # Retries once on failure in the even versions.
                **({"onFailure": {"result": "RETRY"}} if version % 2 == 0 else {}),
                # Two rules guard its entry: skipped when unmet in the odd versions.
                "beforeEntry": _condition("SKIP" if version % 2 else "FAIL", "g1", "g2"),
            },
            {
                "name": "Deploy",
                "actions": [build_action("D")],
                # Rolls back on failure in the odd versions.
                **({"onFailure": {"result": "ROLLBACK"}} if version % 2 else {}),
                # A rule checks its success: rolls back when unmet in the odd versions.
                "onSuccess": _condition("ROLLBACK" if version % 2 else "FAIL", "ok"),
            },
        ]
    )
    return make_plan(parse_pipeline(declaration), version)


PLANS = {v: _plan(v) for v in (1, 2, 3, 4)}


@dataclass
class Model:
    mode: ExecutionMode
    version: int = 1
    runs: dict[str, Run] = field(default_factory=dict)
    jobs: dict[str, tuple[str, JobStatus]] = field(default_factory=dict)  # id: (attempt, status)
    closed: set[str] = field(default_factory=set)
    latest: dict[str, str] = field(default_factory=dict)
    # The latest standard execution of each version to succeed in each stage.
    succeeded: dict[tuple[int, str], str] = field(default_factory=dict)
    count: int = 0
    now: float = 0.0
    moves: list[tuple[str, Any, Any]] = field(default_factory=list)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            self.version,
            self.mode,
            PLANS,
            frozenset(self.closed),
            tuple(self.runs.values()),
            dict(self.latest),
            {s: r for (v, s), r in self.succeeded.items() if v == self.version},
        )

    def next_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def stage_of(self, run_id: str) -> StageRun:
        stage = self.runs[run_id].stage
        assert stage is not None
        return stage

    def set_stage(self, run_id: str, stage: StageRun) -> None:
        self.runs[run_id] = replace(self.runs[run_id], stage=stage)

    def apply(self, effect: Effect) -> None:  # noqa: PLR0915 - a branch per effect
        if isinstance(effect, RunMoved):
            run = self.runs[effect.run_id]
            stage = None if effect.waiting else run.stage
            self.runs[effect.run_id] = replace(
                run,
                stage_index=effect.stage_index,
                waiting=effect.waiting,
                arrived=effect.arrived,
                stage=stage,
            )
        elif isinstance(effect, RunStatusChanged):
            run = self.runs[effect.run_id]
            assert run.status == effect.old, effect
            assert can_move(EXECUTION_MOVES, effect.old, effect.new), effect
            self.moves.append(("execution", effect.old, effect.new))
            self.runs[effect.run_id] = replace(run, status=effect.new)
        elif isinstance(effect, StopRecorded):
            run = self.runs[effect.run_id]
            self.runs[run.id] = replace(run, stop=StopRequest(effect.abandon, effect.reason))
        elif isinstance(effect, StageEntered):
            run = self.runs[effect.run_id]
            if effect.retry_of is None:
                self.latest[effect.stage] = run.id
                stage = StageRun(effect.stage, StageStatus.IN_PROGRESS, 1, 1, {})
            else:
                old = self.stage_of(run.id)
                assert old.status == effect.retry_of, effect
                assert can_move(STAGE_MOVES, old.status, StageStatus.IN_PROGRESS)
                actions = {k: v for k, v in old.actions.items() if v.attempt >= effect.base_attempt}
                stage = StageRun(
                    old.stage,
                    StageStatus.IN_PROGRESS,
                    effect.attempt,
                    effect.base_attempt,
                    actions,
                    auto_retried=effect.automatic,
                    conditions=old.conditions,
                )
            self.set_stage(run.id, stage)
            self.runs[run.id] = replace(self.runs[run.id], stop=None)
        elif isinstance(effect, StageStatusChanged):
            stage = self.stage_of(effect.run_id)
            assert stage.stage == effect.stage and stage.status == effect.old, effect
            assert can_move(STAGE_MOVES, effect.old, effect.new), effect
            self.moves.append(("stage", effect.old, effect.new))
            self.set_stage(effect.run_id, replace(stage, status=effect.new))
            run = self.runs[effect.run_id]
            if effect.new == StageStatus.SUCCEEDED and not run.rollback:
                self.succeeded[(run.version, effect.stage)] = run.id
        elif isinstance(effect, RollbackStarted):
            assert effect.target_id != effect.failed_run_id
            index = PLANS[self.version].index(effect.stage)
            assert index is not None and index > 0
            run_id = self.next_id("rb")
            self.runs[run_id] = Run(
                run_id,
                self.count,
                self.version,
                ExecutionStatus.IN_PROGRESS,
                index,
                True,
                self.now,
                rollback=True,
            )
        elif isinstance(effect, ActionStarted):
            stage = self.stage_of(effect.run_id)
            attempt_id = self.next_id("x")
            actions = dict(stage.actions)
            actions[effect.action] = ActionRun(
                attempt_id, effect.action, A.IN_PROGRESS, effect.attempt
            )
            self.set_stage(effect.run_id, replace(stage, actions=actions))
            self.jobs[self.next_id("j")] = (attempt_id, J.QUEUED)
        elif isinstance(effect, ActionEnded):
            stage = self.stage_of(effect.key.run_id)
            current = stage.actions[effect.key.action]
            assert current.id == effect.key.action_id and current.status == effect.old, effect
            assert can_move(ACTION_MOVES, effect.old, effect.new), effect
            self.moves.append(("action", effect.old, effect.new))
            actions = dict(stage.actions)
            actions[effect.key.action] = replace(current, status=effect.new)
            self.set_stage(effect.key.run_id, replace(stage, actions=actions))
        elif isinstance(effect, ActionAbandoned):
            stage = self.stage_of(effect.run_id)
            current = stage.actions[effect.action]
            assert can_move(ACTION_MOVES, current.status, A.ABANDONED), effect
            self.moves.append(("action", current.status, A.ABANDONED))
            actions = dict(stage.actions)
            actions[effect.action] = replace(current, status=A.ABANDONED)
            self.set_stage(effect.run_id, replace(stage, actions=actions))
            for job_id, (attempt, status) in list(self.jobs.items()):
                if attempt == current.id and status in (J.QUEUED, J.DISPATCHED, J.IN_PROGRESS):
                    self.jobs[job_id] = (attempt, J.FAILED)
        elif isinstance(effect, JobStatusChanged):
            attempt, status = self.jobs[effect.job_id]
            assert status == effect.old, effect
            assert can_move(JOB_MOVES, effect.old, effect.new), effect
            self.moves.append(("job", effect.old, effect.new))
            self.jobs[effect.job_id] = (attempt, effect.new)
        elif isinstance(effect, (ConditionStarted, ConditionEnded, RuleStarted, RuleEnded)):
            self.apply_condition(effect)
        elif isinstance(effect, RuleAbandoned):
            key = effect.key
            condition = self.condition(key.run_id, key.kind, key.index)
            assert condition.rule is not None and condition.rule.id == key.rule_execution_id
            assert can_move(RULE_MOVES, condition.rule.status, R.ABANDONED), effect
            self.moves.append(("rule", condition.rule.status, R.ABANDONED))
            rule = replace(condition.rule, status=R.ABANDONED)
            self.put(key.run_id, replace(condition, rule=rule))
        else:  # pragma: no cover - a new effect type must be modelled here
            raise AssertionError(f"unmodelled effect {effect}")

    def condition(self, run_id: str, kind: ConditionKind, index: int) -> ConditionRun:
        stage = self.stage_of(run_id)
        return next(c for c in stage.conditions if c.kind == kind and c.index == index)

    def put(self, run_id: str, condition: ConditionRun) -> None:
        stage = self.stage_of(run_id)
        kept = tuple(
            c
            for c in stage.conditions
            if not (c.kind == condition.kind and c.index == condition.index)
        )
        self.set_stage(run_id, replace(stage, conditions=(*kept, condition)))

    def apply_condition(
        self, effect: ConditionStarted | ConditionEnded | RuleStarted | RuleEnded
    ) -> None:
        if isinstance(effect, ConditionStarted):
            stage = self.stage_of(effect.run_id)
            assert stage.stage == effect.stage and stage.attempt == effect.attempt, effect
            self.put(
                effect.run_id,
                ConditionRun(effect.kind, effect.index, C.IN_PROGRESS, effect.attempt),
            )
        elif isinstance(effect, ConditionEnded):
            condition = self.condition(effect.run_id, effect.kind, effect.index)
            assert condition.status == effect.old, effect
            assert can_move(CONDITION_MOVES, effect.old, effect.new), effect
            self.moves.append(("condition", effect.old, effect.new))
            self.put(effect.run_id, replace(condition, status=effect.new))
        elif isinstance(effect, RuleStarted):
            condition = self.condition(effect.run_id, effect.kind, effect.index)
            assert condition.status == C.IN_PROGRESS, effect
            rule = RuleRun(self.next_id("rule"), effect.rule, R.IN_PROGRESS)
            self.put(effect.run_id, replace(condition, rule=rule))
        else:
            key = effect.key
            condition = self.condition(key.run_id, key.kind, key.index)
            assert condition.rule is not None and condition.rule.id == key.rule_execution_id
            assert condition.rule.status == effect.old, effect
            assert can_move(RULE_MOVES, effect.old, effect.new), effect
            self.moves.append(("rule", effect.old, effect.new))
            self.put(
                key.run_id, replace(condition, rule=replace(condition.rule, status=effect.new))
            )

    def running_rules(self) -> list[RuleKey]:
        found = []
        for run in self.runs.values():
            if run.stage is None or run.waiting:
                continue
            for c in run.stage.conditions:
                if (
                    c.status == C.IN_PROGRESS
                    and c.rule is not None
                    and c.rule.status == R.IN_PROGRESS
                ):
                    found.append(
                        RuleKey(run.id, run.stage.stage, c.kind, c.index, c.rule.rule, c.rule.id)
                    )
        return found

    def run(self, event: Event | None) -> bool:
        """Decide and apply ``event``; False when it was refused (nothing changed)."""
        self.now += 1.0
        try:
            effects = decide(self.snapshot(), event, self.now)
        except ConveyorError:
            return False
        for effect in effects:
            self.apply(effect)
        return True

    # -- what can happen next ----------------------------------------------------------------

    def running(self) -> list[tuple[ActionKey, list[JobRef]]]:
        found = []
        for run in self.runs.values():
            if run.stage is None or run.waiting:
                continue
            for action in run.stage.actions.values():
                if action.status == A.IN_PROGRESS:
                    key = ActionKey(run.id, run.stage.stage, action.action, action.id)
                    jobs = [
                        JobRef(j, s)
                        for j, (attempt, s) in self.jobs.items()
                        if attempt == action.id and s in (J.QUEUED, J.DISPATCHED, J.IN_PROGRESS)
                    ]
                    found.append((key, jobs))
        return found

    def claim(self, job: JobRef) -> JobRef:
        """A worker takes a queued job (the job protocol, outside the decider)."""
        if job.status == J.QUEUED:
            attempt, _ = self.jobs[job.id]
            self.jobs[job.id] = (attempt, J.IN_PROGRESS)
            return JobRef(job.id, J.IN_PROGRESS)
        return job


def event_for(model: Model, choice: int, pick: int, flag: bool) -> Event | None:
    running = model.running()
    runs = list(model.runs.values())
    if choice <= 4 and running:
        key, jobs = running[pick % len(running)]
        if choice == 0:
            passed = flag or pick % 3 != 0  # mostly successes, so that executions get far
            if jobs:  # the job protocol settles the reported job before the event
                attempt, _ = model.jobs[jobs[0].id]
                model.jobs[jobs[0].id] = (attempt, J.SUCCEEDED if passed else J.FAILED)
            result = ActionResult(True) if passed else ActionResult.failure("boom")
            return JobReported(key, result, tuple(jobs[1:]))
        if choice == 1 and jobs:
            return LeaseExpired(key, model.claim(jobs[0]), "lease", crashed=flag)
        if choice == 2:
            return DeadlinePassed(key, tuple(jobs), "late")
        if choice == 3:
            return ApprovalAnswered(key, ActionResult(flag))
        return CouldNotStart(((key, "cannot"),))
    if choice == 5 and runs:
        return Stop(runs[pick % len(runs)].id, flag, "stop")
    if choice == 6 and runs:
        run = runs[pick % len(runs)]
        stage = PLANS[run.version].stages[min(run.stage_index, 2)].name
        mode = RetryMode.FAILED_ACTIONS if flag else RetryMode.ALL_ACTIONS
        return Retry(run.id, stage, mode)
    if choice == 7:
        run_id = model.next_id("r")
        model.runs[run_id] = Run(
            run_id, model.count, model.version, ExecutionStatus.IN_PROGRESS, 0, True, model.now
        )
        return Start(run_id)
    if choice == 8:
        stage = ("Source", "Build", "Deploy")[pick % 3]
        if stage in model.closed:
            model.closed.discard(stage)
        else:
            model.closed.add(stage)
        return TransitionChanged(stage, "Inbound", stage not in model.closed)
    if choice == 9 and model.version < 4 and flag:
        model.version += 1
        return None
    if choice == 12:
        return _rollback(model, pick)
    rules = model.running_rules()
    if choice == 13 and rules:
        return RuleReported(rules[pick % len(rules)], ActionResult(flag or pick % 3 != 0))
    if choice == 14 and runs:
        run = runs[pick % len(runs)]
        kind = ConditionKind.BEFORE_ENTRY if flag else ConditionKind.ON_SUCCESS
        return OverrideCondition(run.id, ("Source", "Build", "Deploy")[pick % 3], kind)
    if choice in (10, 11):
        # A stale result: for an attempt that already ended (or never was).
        ended = [
            ActionKey(r.id, r.stage.stage, a.action, a.id)
            for r in runs
            if r.stage is not None
            for a in r.stage.actions.values()
            if a.status != A.IN_PROGRESS
        ] or [ActionKey("r0", "Build", "A", "never")]
        key = ended[pick % len(ended)]
        if choice == 10:
            return JobReported(key, ActionResult(flag))
        return DeadlinePassed(key, (), "late")
    if choice == 15:
        # A stale rule result: for a rule execution that never was.
        return RuleReported(
            RuleKey("r1", "Build", ConditionKind.BEFORE_ENTRY, 0, "g1", "never"), ActionResult(flag)
        )
    return None


def _rollback(model: Model, pick: int) -> Event:
    """RollbackStage: the service records the rollback execution, then tells the decider."""
    stage = ("Source", "Build", "Deploy")[pick % 3]
    index = PLANS[model.version].index(stage)
    assert index is not None
    run_id = model.next_id("rb")
    model.runs[run_id] = Run(
        run_id,
        model.count,
        model.version,
        ExecutionStatus.IN_PROGRESS,
        index,
        True,
        model.now,
        rollback=True,
    )
    return Rollback(run_id, stage, "r1")


steps = st.lists(
    st.tuples(st.integers(0, 15), st.integers(0, 50), st.booleans()), min_size=1, max_size=60
)


def drain(model: Model) -> None:
    """Open every way in, then answer every running attempt with a success until nothing
    moves."""
    for stage in list(model.closed):
        model.closed.discard(stage)
        model.run(TransitionChanged(stage, "Inbound", True))
    for _ in range(500):
        rules = model.running_rules()
        if rules:
            model.run(RuleReported(rules[0], ActionResult(True)))
            continue
        running = model.running()
        if not running:
            model.run(None)
            running = model.running()
            if not running:
                return
        key, jobs = running[0]
        model.run(JobReported(key, ActionResult(True), tuple(model.claim(j) for j in jobs)))
    raise AssertionError("the pipeline never settled")  # pragma: no cover


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(list(ExecutionMode)),
    sequence=steps,
    succeeded_first=st.booleans(),
)
def test_random_events_make_only_table_moves_and_every_execution_ends(
    mode: ExecutionMode, sequence: list[tuple[int, int, bool]], succeeded_first: bool
) -> None:
    """``succeeded_first``: the first execution runs to success before the random events, so
    stages that roll back on failure have somewhere to go back to."""
    model = Model(mode)
    first = model.next_id("r")
    model.runs[first] = Run(first, model.count, 1, ExecutionStatus.IN_PROGRESS, 0, True, 0.0)
    model.run(Start(first))
    if succeeded_first:
        drain(model)
        started = model.next_id("r")
        model.runs[started] = Run(
            started, model.count, 1, ExecutionStatus.IN_PROGRESS, 0, True, model.now
        )
        model.run(Start(started))
        # The second runs up to Deploy and fails there: in the versions that roll back,
        # a rollback to the first starts.
        while True:
            if rules := model.running_rules():
                model.run(RuleReported(rules[0], ActionResult(True)))
                continue
            running = model.running()
            if not running or running[0][0].stage == "Deploy":
                break
            model.run(JobReported(running[0][0], ActionResult(True)))
        if running:
            model.run(JobReported(running[0][0], ActionResult.failure("bad")))
            rolled_back = any(r.rollback for r in model.runs.values())
            assert rolled_back == (mode != ExecutionMode.PARALLEL)
    for choice, pick, flag in sequence:
        before = dict(model.runs)
        if not model.run(event_for(model, choice, pick, flag)):
            model.runs = before  # a refused command's transaction rolls back
    drain(model)

    ended = {r.id: r.status for r in model.runs.values()}
    assert all(status not in ACTIVE_EXECUTION for status in ended.values()), ended
    assert not model.running()
    assert not model.running_rules()
    for run in model.runs.values():
        if run.stage is not None:
            assert all(c.status != C.IN_PROGRESS for c in run.stage.conditions), run
    tables: dict[str, Any] = {
        "execution": EXECUTION_MOVES,
        "stage": STAGE_MOVES,
        "action": ACTION_MOVES,
        "job": JOB_MOVES,
        "condition": CONDITION_MOVES,
        "rule": RULE_MOVES,
    }
    for kind, old, new in model.moves:
        assert can_move(tables[kind], old, new)
    if succeeded_first:  # the first execution went through every stage's conditions
        assert {"condition", "rule"} <= {kind for kind, _, _ in model.moves}
