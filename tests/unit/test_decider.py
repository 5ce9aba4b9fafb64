"""The decider, case by case: a snapshot and a command in, the effects out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conveyor.domain.decider import decide
from conveyor.domain.errors import (
    DuplicatedStopRequestException,
    NotLatestPipelineExecutionException,
    PipelineExecutionNotStoppableException,
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
    CouldNotStart,
    DeadlinePassed,
    JobRef,
    JobReported,
    JobStatusChanged,
    LeaseExpired,
    Retry,
    RetryMode,
    Rollback,
    RollbackStarted,
    Run,
    RunMoved,
    RunStatusChanged,
    Snapshot,
    StageEntered,
    StageRun,
    StageStatusChanged,
    Start,
    Stop,
    StopRequest,
    TransitionChanged,
)
from conveyor.domain.pipeline import ExecutionMode, parse_pipeline
from conveyor.domain.plan import make_plan
from conveyor.domain.status import ActionStatus as A
from conveyor.domain.status import ExecutionStatus as E
from conveyor.domain.status import JobStatus as J
from conveyor.domain.status import StageStatus as S
from tests.support.declarations import build_action, pipeline, source_action


def three_stages() -> dict[str, Any]:
    build_a = {**build_action("A"), "runOrder": 1}
    build_b = {**build_action("B"), "runOrder": 1}
    test = {**build_action("T"), "runOrder": 2}
    return pipeline(
        stages=[
            {"name": "Source", "actions": [source_action()]},
            {"name": "Build", "actions": [build_a, build_b, test]},
            {"name": "Deploy", "actions": [build_action("D")]},
        ]
    )


PLAN = make_plan(parse_pipeline(three_stages()), 1)


def snapshot(
    *runs: Run,
    mode: ExecutionMode = ExecutionMode.SUPERSEDED,
    version: int = 1,
    closed: frozenset[str] = frozenset(),
    latest: dict[str, str] | None = None,
) -> Snapshot:
    plans = {1: PLAN, 2: make_plan(parse_pipeline(three_stages()), 2)}
    return Snapshot(version, mode, plans, closed, runs, latest or {})


def waiting(run_id: str, seq: int, index: int = 0, arrived: float = 0.0, version: int = 1) -> Run:
    return Run(run_id, seq, version, E.IN_PROGRESS, index, True, arrived)


def inside(
    run_id: str,
    seq: int,
    index: int,
    stage: str,
    status: S = S.IN_PROGRESS,
    run_status: E = E.IN_PROGRESS,
    stop: StopRequest | None = None,
    version: int = 1,
    attempt: int = 1,
    **actions: A,
) -> Run:
    runs = {
        name: ActionRun(f"{run_id}-{name}", name, st, attempt, "boom" if st == A.FAILED else None)
        for name, st in actions.items()
    }
    return Run(
        run_id,
        seq,
        version,
        run_status,
        index,
        False,
        0.0,
        stop,
        StageRun(stage, status, attempt, 1, runs),
    )


def started(effects: list[Any]) -> list[str]:
    return [e.action for e in effects if isinstance(e, ActionStarted)]


def statuses(effects: list[Any]) -> list[tuple[str, E]]:
    return [(e.run_id, e.new) for e in effects if isinstance(e, RunStatusChanged)]


def test_a_new_run_enters_the_first_stage_and_starts_its_source() -> None:
    effects = decide(snapshot(waiting("r1", 1)), None, 10.0)
    assert effects[0] == RunMoved("r1", 0, False, 0.0)
    assert effects[1] == StageEntered("r1", "Source", 1, 1)
    assert started(effects) == ["Source"]


def test_a_run_order_group_runs_in_parallel_then_the_next_group() -> None:
    effects = decide(snapshot(inside("r1", 1, 1, "Build")), None, 1.0)
    assert started(effects) == ["A", "B"]
    effects = decide(
        snapshot(inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.IN_PROGRESS)), None, 1.0
    )
    assert effects == []
    effects = decide(snapshot(inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.SUCCEEDED)), None, 1.0)
    assert started(effects) == ["T"]


def test_a_succeeded_stage_moves_the_run_into_the_next_stage() -> None:
    effects = decide(
        snapshot(inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.SUCCEEDED, T=A.SUCCEEDED)),
        None,
        5.0,
    )
    assert effects[0] == StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.SUCCEEDED)
    assert effects[1] == RunMoved("r1", 2, True, 5.0)
    assert StageEntered("r1", "Deploy", 1, 1) in effects
    assert started(effects) == ["D"]


def test_the_last_stage_succeeding_ends_the_run() -> None:
    effects = decide(snapshot(inside("r1", 1, 2, "Deploy", D=A.SUCCEEDED)), None, 5.0)
    assert statuses(effects) == [("r1", E.SUCCEEDED)]


def test_a_failed_action_fails_the_stage_once_the_others_finish() -> None:
    assert (
        decide(snapshot(inside("r1", 1, 1, "Build", A=A.FAILED, B=A.IN_PROGRESS)), None, 1.0) == []
    )
    effects = decide(snapshot(inside("r1", 1, 1, "Build", A=A.FAILED, B=A.SUCCEEDED)), None, 1.0)
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.FAILED) in effects
    assert statuses(effects) == [("r1", E.FAILED)]
    summary = next(e for e in effects if isinstance(e, RunStatusChanged)).summary
    assert summary == "Action 'A' in stage 'Build' failed: boom"
    assert started(effects) == []


def test_superseded_keeps_only_the_newest_waiting_run() -> None:
    busy = inside("r1", 1, 1, "Build", A=A.IN_PROGRESS, B=A.IN_PROGRESS)
    effects = decide(snapshot(busy, waiting("r2", 2, 1), waiting("r3", 3, 1)), None, 1.0)
    assert statuses(effects) == [("r2", E.SUPERSEDED)]
    assert started(effects) == []


def test_superseded_never_touches_a_run_inside_a_stage() -> None:
    busy = inside("r1", 1, 0, "Source", Source=A.IN_PROGRESS)
    effects = decide(snapshot(busy, waiting("r2", 2, 0)), None, 1.0)
    assert effects == []


def test_queued_admits_first_in_first_out() -> None:
    done = inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.SUCCEEDED, T=A.SUCCEEDED)
    runs = (done, waiting("r3", 3, 1, arrived=1.0), waiting("r2", 2, 1, arrived=2.0))
    effects = decide(snapshot(*runs, mode=ExecutionMode.QUEUED), None, 9.0)
    entered = {e.stage: e.run_id for e in effects if isinstance(e, StageEntered)}
    assert entered == {"Deploy": "r1", "Build": "r3"}  # r3 arrived at Build before r2
    assert statuses(effects) == []


def test_parallel_never_locks() -> None:
    busy = inside("r1", 1, 1, "Build", A=A.IN_PROGRESS, B=A.IN_PROGRESS)
    effects = decide(
        snapshot(busy, waiting("r2", 2, 1), waiting("r3", 3, 1), mode=ExecutionMode.PARALLEL),
        None,
        1.0,
    )
    assert [e.run_id for e in effects if isinstance(e, StageEntered)] == ["r2", "r3"]


def test_a_closed_transition_holds_the_run() -> None:
    effects = decide(snapshot(waiting("r1", 1, 1), closed=frozenset({"Build"})), None, 1.0)
    assert effects == []


def test_stop_and_wait_then_stopped_when_actions_finish() -> None:
    effects = decide(
        snapshot(inside("r1", 1, 1, "Build", A=A.IN_PROGRESS, B=A.IN_PROGRESS)),
        Stop("r1", False, "why"),
        1.0,
    )
    assert statuses(effects) == [("r1", E.STOPPING)]
    stopping = inside(
        "r1",
        1,
        1,
        "Build",
        S.STOPPING,
        E.STOPPING,
        StopRequest(False, "why"),
        A=A.SUCCEEDED,
        B=A.SUCCEEDED,
    )
    effects = decide(snapshot(stopping), None, 2.0)
    assert started(effects) == []
    assert statuses(effects) == [("r1", E.STOPPED)]


def test_stop_and_abandon_stops_at_once() -> None:
    effects = decide(
        snapshot(inside("r1", 1, 1, "Build", A=A.IN_PROGRESS, B=A.SUCCEEDED)), Stop("r1", True), 1.0
    )
    assert ActionAbandoned("r1", "Build", "A") in effects
    assert statuses(effects) == [("r1", E.STOPPING), ("r1", E.STOPPED)]


def test_stop_escalation_and_duplicates() -> None:
    stopping = inside(
        "r1", 1, 1, "Build", S.STOPPING, E.STOPPING, StopRequest(False), A=A.IN_PROGRESS
    )
    with pytest.raises(DuplicatedStopRequestException):
        decide(snapshot(stopping), Stop("r1", False), 1.0)
    effects = decide(snapshot(stopping), Stop("r1", True), 1.0)
    assert statuses(effects) == [("r1", E.STOPPED)]
    finished = inside("r1", 1, 1, "Build", S.SUCCEEDED, E.SUCCEEDED)
    with pytest.raises(PipelineExecutionNotStoppableException):
        decide(snapshot(finished), Stop("r1", True), 1.0)


def test_stopping_a_waiting_run_stops_it_without_a_stage() -> None:
    effects = decide(
        snapshot(waiting("r1", 1, 1), closed=frozenset({"Build"})), Stop("r1", False), 1.0
    )
    assert statuses(effects) == [("r1", E.STOPPED)]


def test_retry_failed_actions_reruns_only_those() -> None:
    failed = inside("r1", 1, 1, "Build", S.FAILED, E.FAILED, A=A.FAILED, B=A.SUCCEEDED)
    effects = decide(
        snapshot(failed, latest={"Build": "r1"}),
        Retry("r1", "Build", RetryMode.FAILED_ACTIONS),
        1.0,
    )
    assert StageEntered("r1", "Build", 2, 1, retry_of=S.FAILED) in effects
    assert statuses(effects) == [("r1", E.IN_PROGRESS)]
    assert started(effects) == ["A"]


def test_retry_all_actions_starts_the_stage_over() -> None:
    failed = inside("r1", 1, 1, "Build", S.FAILED, E.FAILED, A=A.FAILED, B=A.SUCCEEDED)
    effects = decide(snapshot(failed), Retry("r1", "Build", RetryMode.ALL_ACTIONS), 1.0)
    assert StageEntered("r1", "Build", 2, 2, retry_of=S.FAILED) in effects
    assert started(effects) == ["A", "B"]


@pytest.mark.parametrize(
    ("run", "latest", "version", "error"),
    [
        (inside("r1", 1, 1, "Build", A=A.IN_PROGRESS), {}, 1, StageNotRetryableException),
        (
            inside("r1", 1, 1, "Build", S.SUCCEEDED, E.SUCCEEDED, A=A.SUCCEEDED),
            {},
            1,
            StageNotRetryableException,
        ),
        (
            inside("r1", 1, 1, "Build", S.FAILED, E.FAILED, A=A.FAILED),
            {"Build": "r9"},
            1,
            NotLatestPipelineExecutionException,
        ),
        (
            inside("r1", 1, 1, "Build", S.FAILED, E.FAILED, A=A.FAILED),
            {},
            2,
            StageNotRetryableException,
        ),
        (
            inside("r1", 1, 2, "Deploy", S.FAILED, E.FAILED, D=A.FAILED),
            {},
            1,
            StageNotRetryableException,
        ),
    ],
)
def test_retry_preconditions(run: Run, latest: dict[str, str], version: int, error: type) -> None:
    with pytest.raises(error):
        decide(
            snapshot(run, latest=latest, version=version),
            Retry("r1", "Build", RetryMode.FAILED_ACTIONS),
            1.0,
        )


def test_an_update_cancels_waiting_runs_and_lets_running_actions_finish() -> None:
    running = inside("r1", 1, 1, "Build", A=A.IN_PROGRESS, B=A.SUCCEEDED)
    effects = decide(snapshot(running, waiting("r2", 2, 0), version=2), None, 1.0)
    assert statuses(effects) == [("r2", E.CANCELLED)]
    done = inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.SUCCEEDED)
    effects = decide(snapshot(done, version=2), None, 1.0)
    assert started(effects) == []
    assert statuses(effects) == [("r1", E.CANCELLED)]


# -- every way an attempt ends goes through the decider ------------------------------------


def key(run_id: str, stage: str, action: str) -> ActionKey:
    return ActionKey(run_id, stage, action, f"{run_id}-{action}")


def ended(effects: list[Any]) -> list[tuple[str, A, A]]:
    return [(e.key.action, e.old, e.new) for e in effects if isinstance(e, ActionEnded)]


def jobs_moved(effects: list[Any]) -> list[tuple[str, J, J]]:
    return [(e.job_id, e.old, e.new) for e in effects if isinstance(e, JobStatusChanged)]


def test_a_reported_success_ends_the_attempt_and_starts_the_next_group() -> None:
    running = inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.IN_PROGRESS)
    effects = decide(
        snapshot(running), JobReported(key("r1", "Build", "B"), ActionResult(True)), 1.0
    )
    assert ended(effects) == [("B", A.IN_PROGRESS, A.SUCCEEDED)]
    assert effects.index(next(e for e in effects if isinstance(e, ActionEnded))) == 0
    assert started(effects) == ["T"]


def test_a_result_for_an_attempt_no_longer_in_progress_changes_nothing() -> None:
    done = inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.IN_PROGRESS)
    result = ActionResult(False, error_message="late")
    assert decide(snapshot(done), JobReported(key("r1", "Build", "A"), result), 1.0) == []
    other_attempt = ActionKey("r1", "Build", "B", "an-older-attempt")
    assert decide(snapshot(done), JobReported(other_attempt, result), 1.0) == []


def test_a_reported_failure_fails_the_stage_with_its_message() -> None:
    running = inside("r1", 1, 2, "Deploy", D=A.IN_PROGRESS)
    result = ActionResult.failure("exit 2")
    effects = decide(snapshot(running), JobReported(key("r1", "Deploy", "D"), result), 1.0)
    assert ended(effects) == [("D", A.IN_PROGRESS, A.FAILED)]
    assert StageStatusChanged("r1", "Deploy", S.IN_PROGRESS, S.FAILED) in effects
    summary = next(e for e in effects if isinstance(e, RunStatusChanged)).summary
    assert summary == "Action 'D' in stage 'Deploy' failed: exit 2"


def test_an_expired_lease_times_the_job_out_and_fails_the_attempt() -> None:
    running = inside("r1", 1, 2, "Deploy", D=A.IN_PROGRESS)
    event = LeaseExpired(key("r1", "Deploy", "D"), JobRef("j1", J.IN_PROGRESS), "gone")
    effects = decide(snapshot(running), event, 1.0)
    assert jobs_moved(effects) == [("j1", J.IN_PROGRESS, J.TIMED_OUT)]
    assert ended(effects) == [("D", A.IN_PROGRESS, A.FAILED)]
    assert statuses(effects) == [("r1", E.FAILED)]
    crashed = replace(event, crashed=True)
    assert jobs_moved(decide(snapshot(running), crashed, 1.0)) == [("j1", J.IN_PROGRESS, J.FAILED)]


def test_an_expired_lease_of_an_attempt_already_ended_still_ends_the_job() -> None:
    done = inside("r1", 1, 2, "Deploy", D=A.IN_PROGRESS)
    event = LeaseExpired(ActionKey("r1", "Deploy", "D", "old"), JobRef("j0", J.DISPATCHED), "x")
    assert decide(snapshot(done), event, 1.0) == [JobStatusChanged("j0", J.DISPATCHED, J.TIMED_OUT)]


def test_a_passed_deadline_times_out_every_active_job_of_the_attempt() -> None:
    running = inside("r1", 1, 2, "Deploy", D=A.IN_PROGRESS)
    jobs = (JobRef("j1", J.QUEUED), JobRef("j2", J.DISPATCHED))
    effects = decide(snapshot(running), DeadlinePassed(key("r1", "Deploy", "D"), jobs, "late"), 1.0)
    assert jobs_moved(effects) == [
        ("j1", J.QUEUED, J.TIMED_OUT),
        ("j2", J.DISPATCHED, J.TIMED_OUT),
    ]
    failed = next(e for e in effects if isinstance(e, ActionEnded))
    assert failed.result.error_message == "late" and failed.result.error_code == "JobFailed"


def test_an_answered_approval_ends_the_attempt() -> None:
    running = inside("r1", 1, 2, "Deploy", D=A.IN_PROGRESS)
    approved = ApprovalAnswered(key("r1", "Deploy", "D"), ActionResult(True, updated_by="me"))
    assert statuses(decide(snapshot(running), approved, 1.0)) == [("r1", E.SUCCEEDED)]
    rejected = ApprovalAnswered(key("r1", "Deploy", "D"), ActionResult.failure("Rejected"))
    assert statuses(decide(snapshot(running), rejected, 1.0)) == [("r1", E.FAILED)]


def test_attempts_that_could_not_start_fail_and_fail_the_stage() -> None:
    running = inside("r1", 1, 1, "Build", A=A.IN_PROGRESS, B=A.IN_PROGRESS)
    failures = ((key("r1", "Build", "A"), "no variable"), (key("r1", "Build", "B"), "no input"))
    effects = decide(snapshot(running), CouldNotStart(failures), 1.0)
    assert ended(effects) == [("A", A.IN_PROGRESS, A.FAILED), ("B", A.IN_PROGRESS, A.FAILED)]
    summary = next(e for e in effects if isinstance(e, RunStatusChanged)).summary
    assert summary == "Action 'A' in stage 'Build' failed: no variable"


def test_a_start_or_an_opened_transition_lets_the_pipeline_move_on() -> None:
    assert started(decide(snapshot(waiting("r1", 1)), Start("r1"), 1.0)) == ["Source"]
    opened = TransitionChanged("Build", "Inbound", True)
    assert started(decide(snapshot(waiting("r1", 1, 1)), opened, 1.0)) == ["A", "B"]
    closed = TransitionChanged("Build", "Inbound", False)
    held = snapshot(waiting("r1", 1, 1), closed=frozenset({"Build"}))
    assert decide(held, closed, 1.0) == []


def test_an_abandoned_stop_abandons_each_running_attempt_within_the_table() -> None:
    running = inside("r1", 1, 1, "Build", A=A.SUCCEEDED, B=A.IN_PROGRESS)
    effects = decide(snapshot(running), Stop("r1", True, "now"), 1.0)
    assert [e.action for e in effects if isinstance(e, ActionAbandoned)] == ["B"]
    assert statuses(effects) == [("r1", E.STOPPING), ("r1", E.STOPPED)]


# -- V2 stages: automatic retry, rollback ---------------------------------------------------


def v2_plans(**on_failure: Any) -> dict[int, Any]:
    declaration = three_stages()
    declaration["stages"][1]["onFailure"] = on_failure
    return {1: make_plan(parse_pipeline(declaration), 1)}


def v2_snapshot(*runs: Run, targets: dict[str, str] | None = None, **on_failure: Any) -> Snapshot:
    return Snapshot(
        1,
        ExecutionMode.SUPERSEDED,
        v2_plans(**on_failure),
        frozenset(),
        runs,
        {},
        targets or {},
    )


def test_a_stage_that_retries_on_failure_restarts_its_failed_actions_once() -> None:
    failing = inside("r1", 1, 1, "Build", A=A.FAILED, B=A.SUCCEEDED, T=A.IN_PROGRESS)
    snap = v2_snapshot(failing, result="RETRY", retryConfiguration={"retryMode": "FAILED_ACTIONS"})
    event = JobReported(ActionKey("r1", "Build", "T", "r1-T"), ActionResult.failure("x"))
    effects = decide(snap, event, 1.0)
    assert StageStatusChanged("r1", "Build", S.IN_PROGRESS, S.FAILED) in effects
    assert StageEntered("r1", "Build", 2, 1, retry_of=S.FAILED, automatic=True) in effects
    assert sorted(started(effects)) == ["A", "T"]
    assert statuses(effects) == []  # the execution never left InProgress

    retried = replace(failing.stage, attempt=2, auto_retried=True)  # type: ignore[type-var]
    again = replace(failing, stage=retried)
    effects = decide(v2_snapshot(again, result="RETRY"), event, 1.0)
    assert not any(isinstance(e, StageEntered) for e in effects)
    assert statuses(effects) == [("r1", E.FAILED)]


def test_a_retry_of_all_actions_starts_the_stage_afresh() -> None:
    failing = inside("r1", 1, 1, "Build", A=A.FAILED, B=A.SUCCEEDED)
    snap = v2_snapshot(failing, result="RETRY", retryConfiguration={"retryMode": "ALL_ACTIONS"})
    effects = decide(snap, None, 1.0)
    assert StageEntered("r1", "Build", 2, 2, retry_of=S.FAILED, automatic=True) in effects
    assert started(effects) == ["A", "B"]


def test_a_stage_that_rolls_back_on_failure_starts_a_rollback_to_its_last_success() -> None:
    failing = inside("r2", 2, 1, "Build", A=A.FAILED, B=A.SUCCEEDED)
    effects = decide(v2_snapshot(failing, targets={"Build": "r1"}, result="ROLLBACK"), None, 1.0)
    assert statuses(effects) == [("r2", E.FAILED)]
    assert effects[-1] == RollbackStarted("r2", "Build", "r1")
    # Without an earlier success, or for a rollback's own failure, nothing rolls back.
    assert not any(
        isinstance(e, RollbackStarted)
        for e in decide(v2_snapshot(failing, result="ROLLBACK"), None, 1.0)
    )
    own = replace(failing, rollback=True)
    effects = decide(v2_snapshot(own, targets={"Build": "r1"}, result="ROLLBACK"), None, 1.0)
    assert not any(isinstance(e, RollbackStarted) for e in effects)


def test_a_rollback_execution_runs_its_one_stage_then_ends() -> None:
    rollback = replace(waiting("rb", 3, 1), rollback=True)
    effects = decide(snapshot(rollback), Rollback("rb", "Build", "r1"), 1.0)
    assert StageEntered("rb", "Build", 1, 1) in effects
    assert started(effects) == ["A", "B"]
    done = replace(inside("rb", 3, 1, "Build", A=A.SUCCEEDED, B=A.SUCCEEDED, T=A.SUCCEEDED))
    effects = decide(snapshot(replace(done, rollback=True)), None, 1.0)
    assert statuses(effects) == [("rb", E.SUCCEEDED)]
    assert not any(isinstance(e, RunMoved) for e in effects)


def test_rollback_is_refused_for_a_source_stage_and_in_parallel_mode() -> None:
    at_source = replace(waiting("rb", 3, 0), rollback=True)
    with pytest.raises(UnableToRollbackStageException, match="source stage"):
        decide(snapshot(at_source), Rollback("rb", "Source", "r1"), 1.0)
    rollback = replace(waiting("rb", 3, 1), rollback=True)
    with pytest.raises(UnableToRollbackStageException, match="PARALLEL"):
        decide(snapshot(rollback, mode=ExecutionMode.PARALLEL), Rollback("rb", "Build", "r1"), 1.0)


def test_an_expired_lease_of_a_job_whose_attempt_is_gone_ends_the_job_alone() -> None:
    event = LeaseExpired(None, JobRef("j9", J.IN_PROGRESS), "gone")
    assert decide(snapshot(), event, 1.0) == [JobStatusChanged("j9", J.IN_PROGRESS, J.TIMED_OUT)]
