"""Structural validation: the rules of a pipeline beyond the shapes of the model.

`check` returns every problem it finds, each with the path of the offending part in the
declaration and the CodePipeline exception that reports it; nothing is raised here, so the
server can answer with the first and ``conveyor validate`` can list them all.
"""

from __future__ import annotations

from collections import Counter

from conveyor.domain.actionrules import COMMANDS, check_action
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.errors import (
    ConveyorError,
    InvalidActionDeclarationException,
    InvalidBlockerDeclarationException,
    InvalidStageDeclarationException,
    InvalidStructureException,
)
from conveyor.domain.gitfilters import INVALID_COMBINATION
from conveyor.domain.pipeline import ExecutionMode, Pipeline, PipelineType, Stage
from conveyor.domain.problems import Path, Problem, Resolver, format_path
from conveyor.domain.rulecatalog import rule_problems

MIN_STAGES = 2
MAX_STAGES = 50
MAX_ACTIONS_PER_STAGE = 50
RESERVED_NAMESPACES = frozenset({"codepipeline", "variables"})
CONNECTION_SOURCE = "CodeStarSourceConnection"
# Condition results each kind of stage condition may ask for (CodePipeline's user guide,
# "Configure conditions for a stage"): entry conditions fail or skip the stage, success
# conditions fail it or roll it back, failure conditions can only roll it back.
CONDITION_RESULTS = {
    "beforeEntry": frozenset({"FAIL", "SKIP"}),
    "onSuccess": frozenset({"ROLLBACK", "FAIL"}),
    "onFailure": frozenset({"ROLLBACK"}),
}
# What a failed stage may do of itself (`onFailure.result`): roll back or retry once. A
# stage fails without saying so, and a failed stage cannot be skipped.
ON_FAILURE_RESULTS = frozenset({"ROLLBACK", "RETRY"})


def v2_features(pipeline: Pipeline) -> list[tuple[str, type[ConveyorError]]]:
    """What in the declaration only a V2 pipeline may use, with the error that reports it."""
    found: list[tuple[str, type[ConveyorError]]] = []
    if pipeline.execution_mode in (ExecutionMode.QUEUED, ExecutionMode.PARALLEL):
        found.append((f"Execution mode {pipeline.execution_mode}", InvalidStructureException))
    if pipeline.variables:
        found.append(("Pipeline variables", InvalidStructureException))
    if pipeline.triggers:
        found.append(("Triggers", InvalidStructureException))
    if any(stage.has_conditions or stage.on_failure_result for stage in pipeline.stages):
        found.append(("Stage level conditions", InvalidStageDeclarationException))
    if any(action.type_id == COMMANDS for _, _, _, action in pipeline.actions()):
        found.append(("The Commands action", InvalidActionDeclarationException))
    return found


def effective_type(pipeline: Pipeline) -> PipelineType:
    """The declared type; without one, V2 when V2 features are used and V1 otherwise."""
    if pipeline.pipeline_type is not None:
        return pipeline.pipeline_type
    return PipelineType.V2 if v2_features(pipeline) else PipelineType.V1


def check(pipeline: Pipeline, resolve: Resolver, region: str) -> list[Problem]:
    """Every structural problem of ``pipeline``; an empty list when it is valid."""
    problems: list[Problem] = []
    problems += _check_type(pipeline)
    problems += _check_stores(pipeline, region)
    problems += _check_stages(pipeline)
    for s, stage in enumerate(pipeline.stages):
        for a, action in enumerate(stage.actions):
            problems += check_action(("stages", s, "actions", a), stage, action, resolve, region)
    problems += _check_artifacts(pipeline)
    problems += _check_namespaces(pipeline)
    problems += _check_variables_and_triggers(pipeline)
    problems += _check_rollbacks(pipeline)
    return problems


def _rolls_back(stage: Stage) -> bool:
    return stage.on_failure_result == "ROLLBACK" or any(
        c.result == "ROLLBACK" for c in (*stage.on_success, *stage.on_failure)
    )


def _check_rollbacks(pipeline: Pipeline) -> list[Problem]:
    """A stage may roll back only in a pipeline that can: not in PARALLEL mode, and never
    the source stage."""
    problems = []
    for s, stage in enumerate(pipeline.stages):
        if not _rolls_back(stage):
            continue
        if pipeline.execution_mode == ExecutionMode.PARALLEL:
            problems.append(
                Problem(
                    ("stages", s, "onFailure"),
                    InvalidStageDeclarationException,
                    f"Stage '{stage.name}' rolls back, which a pipeline in PARALLEL execution "
                    "mode cannot do.",
                )
            )
        elif s == 0:
            problems.append(
                Problem(
                    ("stages", s, "onFailure"),
                    InvalidStageDeclarationException,
                    f"Stage '{stage.name}' is the source stage, which cannot be rolled back.",
                )
            )
    return problems


def _check_type(pipeline: Pipeline) -> list[Problem]:
    if pipeline.pipeline_type != PipelineType.V1:
        return []
    return [
        Problem(("pipelineType",), error, f"{feature} can only be used with V2 pipelines.")
        for feature, error in v2_features(pipeline)
    ]


def _check_stores(pipeline: Pipeline, region: str) -> list[Problem]:
    has_one, has_map = pipeline.artifact_store is not None, pipeline.artifact_stores is not None
    if has_one and has_map:
        return [
            Problem(
                ("artifactStores",),
                InvalidStructureException,
                "A pipeline takes either artifactStore or artifactStores, not both.",
            )
        ]
    if not has_map:
        return [
            Problem(
                ("stages", s, "actions", a, "region"),
                InvalidStructureException,
                f"Action '{action.name}' runs in Region '{action.region}', which needs "
                "artifactStores with an artifact store for that Region.",
            )
            for s, a, _, action in pipeline.actions()
            if action.region and action.region != region
        ]
    stores = pipeline.artifact_stores or {}
    needed = {region} | {
        action.region for _, _, _, action in pipeline.actions() if action.region is not None
    }
    return [
        Problem(
            ("artifactStores",),
            InvalidStructureException,
            f"artifactStores has no artifact store for Region '{name}'.",
        )
        for name in sorted(needed - stores.keys())
    ]


def _duplicates(names: list[str]) -> list[str]:
    return [name for name, count in Counter(names).items() if count > 1]


def _check_stages(pipeline: Pipeline) -> list[Problem]:
    problems = []
    count = len(pipeline.stages)
    if count < MIN_STAGES:
        problems.append(
            Problem(
                ("stages",),
                InvalidStructureException,
                f"Pipeline has only {count} stage(s). There should be a minimum of "
                f"{MIN_STAGES} stages in a pipeline.",
            )
        )
    if count > MAX_STAGES:
        problems.append(
            Problem(
                ("stages",),
                InvalidStructureException,
                f"Pipeline has {count} stages; a pipeline has at most {MAX_STAGES}.",
            )
        )
    for name in _duplicates([stage.name for stage in pipeline.stages]):
        problems.append(
            Problem(
                ("stages",),
                InvalidStructureException,
                f"Stage name '{name}' is used more than once; stage names must be unique.",
            )
        )
    for s, stage in enumerate(pipeline.stages):
        problems += _check_stage(s, stage)
    return problems


def _check_stage(s: int, stage: Stage) -> list[Problem]:
    path: Path = ("stages", s)
    problems = []
    if not stage.actions or len(stage.actions) > MAX_ACTIONS_PER_STAGE:
        problems.append(
            Problem(
                (*path, "actions"),
                InvalidStageDeclarationException,
                f"Stage '{stage.name}' has {len(stage.actions)} actions; a stage has 1 to "
                f"{MAX_ACTIONS_PER_STAGE}.",
            )
        )
    for name in _duplicates([action.name for action in stage.actions]):
        problems.append(
            Problem(
                (*path, "actions"),
                InvalidStageDeclarationException,
                f"Action name '{name}' is used more than once in stage '{stage.name}'.",
            )
        )
    for name in _duplicates(list(stage.blockers)):
        problems.append(
            Problem(
                (*path, "blockers"),
                InvalidBlockerDeclarationException,
                f"Blocker name '{name}' is used more than once in stage '{stage.name}'.",
            )
        )
    sources = [a for a in stage.actions if a.is_source]
    others = [a for a in stage.actions if not a.is_source]
    if s == 0 and others:
        problems.append(
            Problem(
                (*path, "actions", stage.actions.index(others[0])),
                InvalidStructureException,
                f"The first stage, '{stage.name}', may contain only source actions, but "
                f"action '{others[0].name}' is a {others[0].type_id.category} action.",
            )
        )
    if s == 0 and not sources:
        problems.append(
            Problem(
                (*path, "actions"),
                InvalidStructureException,
                f"The first stage, '{stage.name}', must contain at least one source action.",
            )
        )
    if s > 0 and sources:
        problems.append(
            Problem(
                (*path, "actions", stage.actions.index(sources[0])),
                InvalidStructureException,
                f"Source action '{sources[0].name}' is in stage '{stage.name}'; source actions "
                "may only be in the first stage.",
            )
        )
    for kind, conditions in (
        ("beforeEntry", stage.before_entry),
        ("onSuccess", stage.on_success),
        ("onFailure", stage.on_failure),
    ):
        for c, condition in enumerate(conditions):
            if condition.result and condition.result not in CONDITION_RESULTS[kind]:
                where = (*path, kind, "conditions", c, "result")
                problems.append(
                    Problem(
                        where,
                        InvalidStageDeclarationException,
                        f"Invalid result {condition.result} at pipeline.{format_path(where)}: "
                        f"a {kind} condition of stage '{stage.name}' may have the result "
                        f"{_either(CONDITION_RESULTS[kind])}.",
                    )
                )
            skip = kind == "beforeEntry" and condition.result == "SKIP"
            for r, rule in enumerate(condition.rules):
                shape = rule.get("ruleTypeId") or {}
                type_id = ActionTypeId(
                    str(shape.get("category", "")),
                    str(shape.get("owner", "")),
                    str(shape.get("provider", "")),
                    str(shape.get("version", "")),
                )
                config = {str(k): str(v) for k, v in (rule.get("configuration") or {}).items()}
                for message in rule_problems(
                    str(rule.get("name", "")),
                    type_id,
                    config,
                    inputs=len(rule.get("inputArtifacts") or ()),
                    commands=len(rule.get("commands") or ()),
                    skip=skip,
                ):
                    problems.append(
                        Problem(
                            (*path, kind, "conditions", c, "rules", r),
                            InvalidStageDeclarationException,
                            f"Stage '{stage.name}': {message}.",
                        )
                    )
    if stage.on_failure_result and stage.on_failure_result not in ON_FAILURE_RESULTS:
        where = (*path, "onFailure", "result")
        problems.append(
            Problem(
                where,
                InvalidStageDeclarationException,
                f"Invalid result {stage.on_failure_result} at pipeline.{format_path(where)}: "
                f"the onFailure result of stage '{stage.name}' may be "
                f"{_either(ON_FAILURE_RESULTS)}.",
            )
        )
    if stage.on_failure_result == "RETRY" and stage.on_failure:
        problems.append(
            Problem(
                (*path, "onFailure"),
                InvalidStageDeclarationException,
                f"Stage '{stage.name}' retries on failure, which cannot be combined with "
                "onFailure conditions.",
            )
        )
    return problems


def _either(results: frozenset[str]) -> str:
    """``{"FAIL", "SKIP"}`` as ``FAIL or SKIP``."""
    return " or ".join(sorted(results))


def _check_artifacts(pipeline: Pipeline) -> list[Problem]:
    problems = []
    producers: dict[str, tuple[int, int]] = {}
    for s, a, stage, action in pipeline.actions():
        for o, artifact in enumerate(action.output_artifacts):
            if artifact.name in producers:
                problems.append(
                    Problem(
                        ("stages", s, "actions", a, "outputArtifacts", o),
                        InvalidStructureException,
                        f"Output artifact name '{artifact.name}' of action '{action.name}' in "
                        f"stage '{stage.name}' is already used; output artifact names must be "
                        "unique in the pipeline.",
                    )
                )
            else:
                producers[artifact.name] = (s, action.run_order)
    for s, a, stage, action in pipeline.actions():
        for i, name in enumerate(action.input_artifacts):
            produced = producers.get(name)
            if produced is None or not _runs_before(produced, (s, action.run_order)):
                problems.append(
                    Problem(
                        ("stages", s, "actions", a, "inputArtifacts", i),
                        InvalidStructureException,
                        f"Input artifact '{name}' of action '{action.name}' in stage "
                        f"'{stage.name}' is not the output of an action that runs before it.",
                    )
                )
    return problems


def _runs_before(producer: tuple[int, int], consumer: tuple[int, int]) -> bool:
    """An earlier stage, or the same stage with a lower runOrder."""
    return producer[0] < consumer[0] or (producer[0] == consumer[0] and producer[1] < consumer[1])


def _check_namespaces(pipeline: Pipeline) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for s, a, stage, action in pipeline.actions():
        namespace = action.namespace
        if namespace is None:
            continue
        path: Path = ("stages", s, "actions", a, "namespace")
        if namespace in RESERVED_NAMESPACES:
            problems.append(
                Problem(
                    path,
                    InvalidActionDeclarationException,
                    f"Namespace '{namespace}' of action '{action.name}' is reserved.",
                )
            )
        elif namespace in seen:
            problems.append(
                Problem(
                    path,
                    InvalidActionDeclarationException,
                    f"Namespace '{namespace}' of action '{action.name}' in stage "
                    f"'{stage.name}' is already used. Namespaces must be unique across the "
                    "pipeline definition.",
                )
            )
        seen.add(namespace)
    return problems


def _check_variables_and_triggers(pipeline: Pipeline) -> list[Problem]:
    problems = [
        Problem(
            ("variables",),
            InvalidStructureException,
            f"Pipeline variable '{name}' is declared more than once.",
        )
        for name in _duplicates([v.name for v in pipeline.variables])
    ]
    first = pipeline.stages[0] if pipeline.stages else None
    sources = {a.name: a for a in first.actions} if first else {}
    for name in _duplicates([t.source_action_name for t in pipeline.triggers]):
        problems.append(
            Problem(
                ("triggers",),
                InvalidStructureException,
                f"Source action '{name}' has more than one trigger; it may have one.",
            )
        )
    for t, trigger in enumerate(pipeline.triggers):
        action = sources.get(trigger.source_action_name)
        if action is None or action.type_id.provider != CONNECTION_SOURCE:
            problems.append(
                Problem(
                    ("triggers", t, "gitConfiguration", "sourceActionName"),
                    InvalidStructureException,
                    f"Trigger source action '{trigger.source_action_name}' is not a "
                    f"{CONNECTION_SOURCE} source action of the first stage.",
                )
            )
        if trigger.git is not None and not trigger.git.valid:
            problems.append(
                Problem(
                    ("triggers", t, "gitConfiguration"),
                    InvalidStructureException,
                    INVALID_COMBINATION,
                )
            )
    return problems
