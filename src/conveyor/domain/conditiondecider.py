"""The decider's condition-and-rule half: evaluating a stage's conditions, one rule at a time.

A stage's conditions of one kind (beforeEntry, onSuccess, onFailure) are evaluated one after
the other, in the order declared, and a condition's rules likewise: a passing rule starts the
next, the first failing one ends its condition ``Failed``, the last passing one ends it
``Succeeded``. `ConditionDecider.verdict` tells the stage half what they came to: ``MET``, the
result of the first unmet condition (FAIL, SKIP, ROLLBACK), ``None`` while one is evaluated,
or ``OUTDATED`` when one would begin in a run of an older pipeline version (which begins
nothing). What an unmet result does to the stage and the execution is the stage half's
business (`conveyor.domain.decider`); here only conditions and rules move, each move checked
against ``CONDITION_MOVES`` and ``RULE_MOVES``:

    condition  InProgress -> Succeeded | Failed | Overridden | Abandoned | Cancelled
    rule       InProgress -> Succeeded | Failed | Abandoned

A rule result for a rule execution that is no longer the one running changes nothing. An
override (BEFORE_ENTRY, ON_SUCCESS) ends the condition being evaluated and those after it
``Overridden`` (never a condition whose result is SKIP); a stop abandons the running rule
(``Abandoned``), a pipeline update cancels it (``Cancelled``). onSuccess and onFailure are
evaluated again on each attempt of the stage (a retry), beforeEntry once per stage execution
unless its evaluation ended undecided.
"""

from __future__ import annotations

from dataclasses import replace

from conveyor.domain.deciderstate import LiveRun, LiveStage, Work, legal
from conveyor.domain.errors import (
    ConditionNotOverridableException,
    NotLatestPipelineExecutionException,
    StageNotFoundException,
)
from conveyor.domain.execution import (
    ActionResult,
    ConditionEnded,
    ConditionKind,
    ConditionRun,
    ConditionStarted,
    OverrideCondition,
    RuleAbandoned,
    RuleEnded,
    RuleKey,
    RuleRun,
    RuleStarted,
)
from conveyor.domain.pipeline import Condition
from conveyor.domain.plan import StagePlan
from conveyor.domain.status import (
    CONDITION_MET,
    CONDITION_MOVES,
    RULE_MOVES,
    ConditionStatus,
    RuleStatus,
)

__all__ = [
    "MET",
    "OUTDATED",
    "ConditionDecider",
    "declared_conditions",
    "rule_names",
]

C, R, K = ConditionStatus, RuleStatus, ConditionKind
# What evaluating a kind of conditions came to: all met, or the result of the first unmet one.
MET = "MET"
# A condition would begin in a run of an older pipeline version: none begins.
OUTDATED = "OUTDATED"
# Conditions whose evaluation ended without a verdict: a retry evaluates them again.
UNDECIDED = frozenset({C.ABANDONED, C.CANCELLED})


def declared_conditions(plan: StagePlan, kind: ConditionKind) -> tuple[Condition, ...]:
    stage = plan.stage
    if kind == K.BEFORE_ENTRY:
        return stage.before_entry
    return stage.on_success if kind == K.ON_SUCCESS else stage.on_failure


def rule_names(condition: Condition) -> list[str]:
    return [str(rule.get("name", "")) for rule in condition.rules]


def _put(stage: LiveStage, condition: ConditionRun) -> None:
    """Record ``condition`` as the latest evaluation of its kind and index."""
    stage.conditions = [
        c for c in stage.conditions if not (c.kind == condition.kind and c.index == condition.index)
    ]
    stage.conditions.append(condition)


def _abandoned(
    run: LiveRun, stage: LiveStage, condition: ConditionRun
) -> tuple[ConditionRun, RuleAbandoned | None]:
    """``condition`` with its running rule abandoned, and the effect that says so."""
    rule = condition.rule
    if rule is None or rule.status != R.IN_PROGRESS:
        return condition, None
    legal(RULE_MOVES, rule.status, R.ABANDONED)
    key = RuleKey(run.id, stage.name, condition.kind, condition.index, rule.rule, rule.id)
    return replace(condition, rule=replace(rule, status=R.ABANDONED)), RuleAbandoned(key)


class ConditionDecider:
    def __init__(self, work: Work) -> None:
        self.work = work

    def evaluating(self, run: LiveRun) -> bool:
        stage = run.stage
        assert stage is not None
        return any(c.status == C.IN_PROGRESS for c in stage.conditions)

    def verdict(self, run: LiveRun, plan: StagePlan, kind: ConditionKind) -> str | None:
        """MET, the result of the first condition of ``kind`` that was not met, None while
        they are being evaluated (this begins the next one, when none runs), or OUTDATED."""
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
                if self.work.outdated(run):
                    return OUTDATED
                self.begin(run, plan, kind, index)
                return None
            assert found is not None
            if found.status == C.IN_PROGRESS:
                return None
            if found.status not in CONDITION_MET:
                return condition.result or "FAIL"
        return MET

    def begin(self, run: LiveRun, plan: StagePlan, kind: ConditionKind, index: int) -> None:
        stage = run.stage
        assert stage is not None
        self.work.effects.append(ConditionStarted(run.id, stage.name, kind, index, stage.attempt))
        condition = ConditionRun(kind, index, C.IN_PROGRESS, stage.attempt)
        names = rule_names(declared_conditions(plan, kind)[index])
        if not names:
            _put(stage, condition)
            self.end(run, condition, C.SUCCEEDED)
            return
        self.start_rule(run, condition, names[0])

    def start_rule(self, run: LiveRun, condition: ConditionRun, rule: str) -> None:
        stage = run.stage
        assert stage is not None
        self.work.effects.append(
            RuleStarted(run.id, stage.name, condition.kind, condition.index, rule, stage.attempt)
        )
        _put(stage, replace(condition, rule=RuleRun("", rule, R.IN_PROGRESS)))

    def end(
        self,
        run: LiveRun,
        condition: ConditionRun,
        new: ConditionStatus,
        summary: str | None = None,
    ) -> None:
        stage = run.stage
        assert stage is not None
        legal(CONDITION_MOVES, condition.status, new)
        self.work.effects.append(
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
        _put(stage, replace(condition, status=new))

    def rule_reported(self, key: RuleKey, result: ActionResult) -> None:
        run = self.work.get(key.run_id)
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
        legal(RULE_MOVES, rule.status, new)
        self.work.effects.append(RuleEnded(key, rule.status, new, result))
        condition = replace(condition, rule=replace(rule, status=new))
        _put(stage, condition)
        if not result.succeeded:
            detail = f": {result.error_message}" if result.error_message else ""
            self.end(run, condition, C.FAILED, f"Rule '{key.rule}' failed{detail}")
            return
        names = rule_names(declared_conditions(self.work.plan(run), key.kind)[key.index])
        position = names.index(key.rule) if key.rule in names else len(names)
        if position + 1 < len(names):
            self.start_rule(run, condition, names[position + 1])
        else:
            self.end(run, condition, C.SUCCEEDED)

    def override(self, command: OverrideCondition) -> None:
        snapshot = self.work.snapshot
        run = self.work.get(command.run_id)
        index = snapshot.plans[snapshot.version].index(command.stage)
        if index is None:
            raise StageNotFoundException(f"Stage '{command.stage}' does not exist.")
        if snapshot.latest_in_stage.get(command.stage, command.run_id) != command.run_id:
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
        declared = declared_conditions(self.work.plan(run), command.kind)
        if any(c.result == "SKIP" for c in declared[current.index :]):
            raise ConditionNotOverridableException(
                f"The {command.kind} condition of stage '{command.stage}' skips the stage when "
                "it is not met; a condition with result SKIP cannot be overridden."
            )
        current, abandoned = _abandoned(run, stage, current)
        if abandoned is not None:
            self.work.effects.append(abandoned)
        self.end(run, current, C.OVERRIDDEN, "Overridden")
        for later in range(current.index + 1, len(declared)):
            self.work.effects.append(
                ConditionStarted(run.id, stage.name, command.kind, later, stage.attempt)
            )
            started = ConditionRun(command.kind, later, C.IN_PROGRESS, stage.attempt)
            self.end(run, started, C.OVERRIDDEN, "Overridden")

    def drop(self, run: LiveRun, new: ConditionStatus) -> None:
        """End the conditions being evaluated (the execution stopped, the pipeline was
        updated): their running rules are abandoned."""
        stage = run.stage
        assert stage is not None
        for current in [c for c in stage.conditions if c.status == C.IN_PROGRESS]:
            condition, abandoned = _abandoned(run, stage, current)
            if abandoned is not None:
                self.work.effects.append(abandoned)
            self.end(run, condition, new)
