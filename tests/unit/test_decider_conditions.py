"""The decider and stage conditions: rules run one at a time, in order, and what an unmet
condition's result does to the stage and the execution."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conveyor.domain.decider import decide
from conveyor.domain.errors import (
    ConditionNotOverridableException,
    NotLatestPipelineExecutionException,
)
from conveyor.domain.execution import (
    ActionResult,
    ActionRun,
    ActionStarted,
    ConditionEnded,
    ConditionKind,
    ConditionRun,
    ConditionStarted,
    CouldNotStart,
    OverrideCondition,
    Retry,
    RetryMode,
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
    Stop,
    StopRequest,
)
from conveyor.domain.pipeline import ExecutionMode, parse_pipeline
from conveyor.domain.plan import Plan, make_plan
from conveyor.domain.status import ActionStatus as A
from conveyor.domain.status import ConditionStatus as C
from conveyor.domain.status import ExecutionStatus as E
from conveyor.domain.status import RuleStatus as R
from conveyor.domain.status import StageStatus as S
from tests.support.declarations import build_action, pipeline, source_action

K = ConditionKind
RULE_TYPE = {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"}


def rule(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "ruleTypeId": RULE_TYPE,
        "configuration": {"Variable": "#{S.v}", "Value": "x", "Operator": "EQ"},
    }


def condition(result: str, *rules: str) -> dict[str, Any]:
    return {"conditions": [{"result": result, "rules": [rule(r) for r in rules]}]}


def plan(**build: Any) -> Plan:
    stages = [
        {"name": "Source", "actions": [source_action()]},
        {"name": "Build", "actions": [build_action("B")], **build},
        {"name": "Deploy", "actions": [build_action("D")]},
    ]
    return make_plan(parse_pipeline(pipeline(stages=stages, pipelineType="V2")), 1)


def snapshot(built: Plan, *runs: Run, targets: dict[str, str] | None = None) -> Snapshot:
    return Snapshot(1, ExecutionMode.QUEUED, {1: built}, frozenset(), runs, {}, targets or {})


def in_build(
    *conditions: ConditionRun,
    stop: StopRequest | None = None,
    **actions: A,
) -> Run:
    runs = {n: ActionRun(f"a-{n}", n, st, 1) for n, st in actions.items()}
    stage = StageRun("Build", S.IN_PROGRESS, 1, 1, runs, conditions=conditions)
    return Run("r1", 1, 1, E.IN_PROGRESS, 1, False, 0.0, stop, stage)


def evaluating(kind: ConditionKind, name: str, rule_id: str = "x1") -> ConditionRun:
    return ConditionRun(kind, 0, C.IN_PROGRESS, 1, RuleRun(rule_id, name, R.IN_PROGRESS))


def key(kind: ConditionKind, name: str, rule_id: str = "x1") -> RuleKey:
    return RuleKey("r1", "Build", kind, 0, name, rule_id)


PASS = ActionResult(succeeded=True, summary="ok")
FAIL = ActionResult.failure("no match")


def of(kind: type, effects: list[Any]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def test_entering_a_stage_with_an_entry_condition_starts_its_first_rule_not_its_actions() -> None:
    built = plan(beforeEntry=condition("FAIL", "first", "second"))
    waiting = Run("r1", 1, 1, E.IN_PROGRESS, 1, True, 0.0)
    effects = decide(snapshot(built, waiting), None, 1.0)
    assert StageEntered("r1", "Build", 1, 1) in effects
    assert of(ConditionStarted, effects) == [ConditionStarted("r1", "Build", K.BEFORE_ENTRY, 0, 1)]
    assert of(RuleStarted, effects) == [RuleStarted("r1", "Build", K.BEFORE_ENTRY, 0, "first", 1)]
    assert of(ActionStarted, effects) == []


def test_a_passing_rule_starts_the_next_and_the_last_lets_the_actions_start() -> None:
    built = plan(beforeEntry=condition("FAIL", "first", "second"))
    effects = decide(
        snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "first"))),
        RuleReported(key(K.BEFORE_ENTRY, "first"), PASS),
        1.0,
    )
    assert of(RuleEnded, effects) == [
        RuleEnded(key(K.BEFORE_ENTRY, "first"), R.IN_PROGRESS, R.SUCCEEDED, PASS)
    ]
    assert of(RuleStarted, effects) == [RuleStarted("r1", "Build", K.BEFORE_ENTRY, 0, "second", 1)]
    assert of(ActionStarted, effects) == []
    effects = decide(
        snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "second", "x2"))),
        RuleReported(key(K.BEFORE_ENTRY, "second", "x2"), PASS),
        1.0,
    )
    ended = of(ConditionEnded, effects)
    assert [(e.kind, e.old, e.new) for e in ended] == [(K.BEFORE_ENTRY, C.IN_PROGRESS, C.SUCCEEDED)]
    assert [e.action for e in of(ActionStarted, effects)] == ["B"]


def test_a_result_for_another_rule_execution_changes_nothing() -> None:
    built = plan(beforeEntry=condition("FAIL", "first"))
    run = in_build(evaluating(K.BEFORE_ENTRY, "first"))
    stale = RuleReported(key(K.BEFORE_ENTRY, "first", "old"), PASS)
    assert decide(snapshot(built, run), stale, 1.0) == []


def test_an_unmet_entry_condition_with_fail_fails_the_stage_and_the_execution() -> None:
    built = plan(beforeEntry=condition("FAIL", "first", "second"))
    effects = decide(
        snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "first"))),
        RuleReported(key(K.BEFORE_ENTRY, "first"), FAIL),
        1.0,
    )
    assert of(RuleStarted, effects) == []  # the second rule never runs
    assert [e.new for e in of(ConditionEnded, effects)] == [C.FAILED]
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.FAILED) in effects
    assert [(e.new, e.summary) for e in of(RunStatusChanged, effects)] == [
        (E.FAILED, "The entry condition of stage 'Build' was not met")
    ]
    assert of(ActionStarted, effects) == []


def test_an_unmet_entry_condition_with_skip_skips_the_stage_and_the_execution_goes_on() -> None:
    built = plan(beforeEntry=condition("SKIP", "first"))
    effects = decide(
        snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "first"))),
        RuleReported(key(K.BEFORE_ENTRY, "first"), FAIL),
        5.0,
    )
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.SKIPPED) in effects
    assert RunMoved("r1", 2, True, 5.0) in effects
    assert StageEntered("r1", "Deploy", 1, 1) in effects
    assert [e.action for e in of(ActionStarted, effects)] == ["D"]
    assert of(RunStatusChanged, effects) == []


def test_on_success_conditions_run_once_the_actions_succeeded() -> None:
    built = plan(onSuccess=condition("FAIL", "check"))
    effects = decide(snapshot(built, in_build(B=A.SUCCEEDED)), None, 1.0)
    assert of(RuleStarted, effects) == [RuleStarted("r1", "Build", K.ON_SUCCESS, 0, "check", 1)]
    assert of(StageStatusChanged, effects) == []
    running = in_build(evaluating(K.ON_SUCCESS, "check"), B=A.SUCCEEDED)
    effects = decide(snapshot(built, running), RuleReported(key(K.ON_SUCCESS, "check"), PASS), 2.0)
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.SUCCEEDED) in effects
    assert RunMoved("r1", 2, True, 2.0) in effects


def test_an_unmet_on_success_condition_with_rollback_fails_and_rolls_back() -> None:
    built = plan(onSuccess=condition("ROLLBACK", "check"))
    running = in_build(evaluating(K.ON_SUCCESS, "check"), B=A.SUCCEEDED)
    effects = decide(
        snapshot(built, running, targets={"Build": "r0"}),
        RuleReported(key(K.ON_SUCCESS, "check"), FAIL),
        2.0,
    )
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.FAILED) in effects
    assert [e.new for e in of(RunStatusChanged, effects)] == [E.FAILED]
    assert of(RollbackStarted, effects) == [RollbackStarted("r1", "Build", "r0")]


@pytest.mark.parametrize("declared", [{"result": "ROLLBACK"}, {}], ids=["onFailure", "condition"])
def test_on_failure_conditions_decide_whether_the_failure_rolls_back(
    declared: dict[str, str],
) -> None:
    """Rolled back by onFailure's result, or by its condition's when it names none."""
    on_failure = {**condition("ROLLBACK", "check"), **declared}
    built = plan(onFailure=on_failure)
    effects = decide(snapshot(built, in_build(B=A.FAILED), targets={"Build": "r0"}), None, 1.0)
    assert of(RuleStarted, effects) == [RuleStarted("r1", "Build", K.ON_FAILURE, 0, "check", 1)]
    assert of(RunStatusChanged, effects) == []
    running = in_build(evaluating(K.ON_FAILURE, "check"), B=A.FAILED)
    met = decide(
        snapshot(built, running, targets={"Build": "r0"}),
        RuleReported(key(K.ON_FAILURE, "check"), PASS),
        2.0,
    )
    assert of(RollbackStarted, met) == [RollbackStarted("r1", "Build", "r0")]
    unmet = decide(
        snapshot(built, running, targets={"Build": "r0"}),
        RuleReported(key(K.ON_FAILURE, "check"), FAIL),
        2.0,
    )
    assert [e.new for e in of(RunStatusChanged, unmet)] == [E.FAILED]
    assert of(RollbackStarted, unmet) == []


def test_a_stop_abandons_the_running_rule_and_its_condition() -> None:
    built = plan(beforeEntry=condition("FAIL", "first"))
    effects = decide(
        snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "first"))),
        Stop("r1", abandon=False),
        1.0,
    )
    assert of(RuleAbandoned, effects) == [RuleAbandoned(key(K.BEFORE_ENTRY, "first"))]
    assert [e.new for e in of(ConditionEnded, effects)] == [C.ABANDONED]
    assert [e.new for e in of(RunStatusChanged, effects)] == [E.STOPPING, E.STOPPED]


def test_a_rule_still_running_keeps_the_stage_waiting() -> None:
    built = plan(beforeEntry=condition("FAIL", "first"))
    assert decide(snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "first"))), None, 1.0) == []


def test_an_override_abandons_the_rule_and_lets_the_stage_in() -> None:
    built = plan(beforeEntry=condition("FAIL", "first", "second"))
    effects = decide(
        snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "first"))),
        OverrideCondition("r1", "Build", K.BEFORE_ENTRY),
        1.0,
    )
    assert of(RuleAbandoned, effects) == [RuleAbandoned(key(K.BEFORE_ENTRY, "first"))]
    assert [(e.new, e.summary) for e in of(ConditionEnded, effects)] == [
        (C.OVERRIDDEN, "Overridden")
    ]
    assert of(RuleStarted, effects) == []
    assert [e.action for e in of(ActionStarted, effects)] == ["B"]


def test_only_conditions_being_evaluated_can_be_overridden() -> None:
    built = plan(beforeEntry=condition("FAIL", "first"), onSuccess=condition("FAIL", "after"))
    running = in_build(evaluating(K.BEFORE_ENTRY, "first"))
    with pytest.raises(ConditionNotOverridableException):
        decide(snapshot(built, running), OverrideCondition("r1", "Build", K.ON_SUCCESS), 1.0)
    newer = snapshot(built, running)
    newer = replace(newer, latest_in_stage={"Build": "r2"})
    with pytest.raises(NotLatestPipelineExecutionException):
        decide(newer, OverrideCondition("r1", "Build", K.BEFORE_ENTRY), 1.0)
    skipping = plan(beforeEntry=condition("SKIP", "first"))
    with pytest.raises(ConditionNotOverridableException, match="SKIP"):
        decide(snapshot(skipping, running), OverrideCondition("r1", "Build", K.BEFORE_ENTRY), 1.0)


def test_a_rule_that_could_not_start_fails_and_its_condition_with_it() -> None:
    built = plan(beforeEntry=condition("FAIL", "first", "second"))
    effects = decide(
        snapshot(built, in_build(evaluating(K.BEFORE_ENTRY, "first"))),
        CouldNotStart((), ((key(K.BEFORE_ENTRY, "first"), "no variable SRC.Nope"),)),
        1.0,
    )
    (ended,) = of(RuleEnded, effects)
    assert (ended.old, ended.new, ended.result.error_message) == (
        R.IN_PROGRESS,
        R.FAILED,
        "no variable SRC.Nope",
    )
    assert of(RuleStarted, effects) == []
    assert [(e.new, e.summary) for e in of(ConditionEnded, effects)] == [
        (C.FAILED, "Rule 'first' failed: no variable SRC.Nope")
    ]
    assert [e.new for e in of(RunStatusChanged, effects)] == [E.FAILED]
    assert of(ActionStarted, effects) == []


def test_an_override_of_on_success_conditions_lets_the_stage_succeed() -> None:
    built = plan(onSuccess=condition("FAIL", "check"))
    running = in_build(evaluating(K.ON_SUCCESS, "check"), B=A.SUCCEEDED)
    effects = decide(snapshot(built, running), OverrideCondition("r1", "Build", K.ON_SUCCESS), 3.0)
    assert of(RuleAbandoned, effects) == [RuleAbandoned(key(K.ON_SUCCESS, "check"))]
    assert [(e.kind, e.new) for e in of(ConditionEnded, effects)] == [(K.ON_SUCCESS, C.OVERRIDDEN)]
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.SUCCEEDED) in effects
    assert RunMoved("r1", 2, True, 3.0) in effects
    assert [e.action for e in of(ActionStarted, effects)] == ["D"]


@pytest.mark.parametrize(
    ("kind", "actions"), [(K.BEFORE_ENTRY, {}), (K.ON_SUCCESS, {"B": A.SUCCEEDED})]
)
def test_an_update_cancels_the_conditions_being_evaluated_and_the_stage(
    kind: ConditionKind, actions: dict[str, A]
) -> None:
    built = plan(beforeEntry=condition("FAIL", "first"), onSuccess=condition("ROLLBACK", "first"))
    done = ConditionRun(K.BEFORE_ENTRY, 0, C.SUCCEEDED, 1, RuleRun("x0", "first", R.SUCCEEDED))
    before = () if kind == K.BEFORE_ENTRY else (done,)
    running = in_build(*before, evaluating(kind, "first"), **actions)
    updated = Snapshot(2, ExecutionMode.QUEUED, {1: built, 2: built}, frozenset(), (running,))
    effects = decide(updated, None, 1.0)
    assert of(RuleAbandoned, effects) == [RuleAbandoned(key(kind, "first"))]
    assert of(RollbackStarted, effects) == []
    assert [e.new for e in of(ConditionEnded, effects)] == [C.CANCELLED]
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.CANCELLED) in effects
    assert [(e.new, e.summary) for e in of(RunStatusChanged, effects)] == [
        (E.CANCELLED, "The pipeline was updated")
    ]
    assert of(RuleStarted, effects) == []


def test_a_retry_evaluates_on_success_again_but_not_a_met_entry_condition() -> None:
    built = plan(beforeEntry=condition("FAIL", "gate"), onSuccess=condition("FAIL", "check"))
    conditions = (
        ConditionRun(K.BEFORE_ENTRY, 0, C.SUCCEEDED, 1, RuleRun("x0", "gate", R.SUCCEEDED)),
        ConditionRun(K.ON_SUCCESS, 0, C.FAILED, 1, RuleRun("x1", "check", R.FAILED)),
    )
    done = {"B": ActionRun("a-B", "B", A.SUCCEEDED, 1)}
    failed = Run(
        "r1",
        1,
        1,
        E.FAILED,
        1,
        False,
        0.0,
        None,
        StageRun("Build", S.FAILED, 1, 1, done, conditions=conditions),
    )
    effects = decide(snapshot(built, failed), Retry("r1", "Build", RetryMode.ALL_ACTIONS), 1.0)
    assert StageEntered("r1", "Build", 2, 2, retry_of=S.FAILED) in effects
    assert [e.action for e in of(ActionStarted, effects)] == ["B"]
    assert of(RuleStarted, effects) == []
    again = {"B": ActionRun("a-B2", "B", A.SUCCEEDED, 2)}
    retried = replace(
        failed,
        status=E.IN_PROGRESS,
        stage=StageRun("Build", S.IN_PROGRESS, 2, 2, again, conditions=conditions),
    )
    effects = decide(snapshot(built, retried), None, 2.0)
    assert of(RuleStarted, effects) == [RuleStarted("r1", "Build", K.ON_SUCCESS, 0, "check", 2)]
    assert of(StageStatusChanged, effects) == []
