"""Finishing an action attempt, whoever reports it: a job worker, an approver, the sweeper.

Each reporter turns what happened into its decider event (`JobReported`, `ApprovalAnswered`,
`LeaseExpired`, `DeadlinePassed`) and hands it to the runner; the decider moves the attempt
and its jobs, and the writers record the result, publish a success's output variables and
artifacts to the execution, and move the execution on. A result for an attempt that is no
longer in progress changes nothing.
"""

from __future__ import annotations

from conveyor.domain.execution import ActionKey, ConditionKind, Event, JobRef, RuleKey
from conveyor.domain.status import JobStatus
from conveyor.engine.runner import Outcome, Runner
from conveyor.store import ActionRecord, JobRecord, PipelineRecord, RuleRecord, Tx
from conveyor.store.executions import LiveRead


def key_of(action: ActionRecord) -> ActionKey:
    return ActionKey(action.execution_id, action.stage, action.action, action.id)


def rule_key(rule: RuleRecord) -> RuleKey:
    return RuleKey(
        rule.execution_id,
        rule.stage,
        ConditionKind(rule.kind),
        rule.condition_index,
        rule.rule,
        rule.id,
    )


def job_ref(job: JobRecord) -> JobRef:
    return JobRef(job.id, JobStatus(job.status))


def report(
    tx: Tx,
    runner: Runner,
    pipeline: PipelineRecord,
    action: ActionRecord,
    event: Event,
    ahead: LiveRead | None = None,
) -> Outcome:
    """Decide and write ``event``, about ``action`` (read under the pipeline's lock, with
    ``ahead``, what the snapshot reads first, when the caller read it too)."""
    return runner.advance(
        tx,
        pipeline,
        event,
        focus=action.execution_id,
        attempts={action.id: action},
        near=(action.execution_id, action.stage),
        ahead=ahead,
    )
