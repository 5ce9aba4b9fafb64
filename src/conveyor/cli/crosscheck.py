"""What `conveyor validate` checks beyond a server's rules: what would only fail an execution.

A server accepts a reference to a namespace no action declares, or a buildspec that does not
parse; the action fails when it starts. Offline the file can say so at once: every
``#{namespace.variable}`` must name a namespace that is visible to the action (the pipeline's
``variables``, ``codepipeline``, or the namespace of an action that runs before it) and, where
the producing action's variables are known (Commands ``outputVariables``, Git and S3 sources,
a CodeBuild buildspec's ``exported-variables``), one of them. Buildspecs are parsed with the
runner's own parser when they are inline, or in a local Git repository's branch.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from conveyor.domain.pipeline import Action, Pipeline
from conveyor.domain.variables import CODEPIPELINE, PIPELINE_VARIABLES, references

Hint = Callable[[str, list[str]], str]
BUILDSPEC_KEYS = ("BuildspecOverride", "BuildSpec")
DEFAULT_BUILDSPEC = "buildspec.yml"
# Output variables of the built-in sources whose names are fixed.
SOURCE_VARIABLES: Mapping[str, frozenset[str]] = {
    "Git": frozenset(
        {"CommitId", "BranchName", "CommitMessage", "AuthorDate", "CommitterDate", "RepositoryName"}
    ),
    "S3": frozenset({"ETag", "VersionId"}),
}
EXECUTION_VARIABLES = frozenset({"PipelineExecutionId"})


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    message: str


@dataclass(frozen=True, slots=True)
class _Producer:
    stage: int
    action: Action
    variables: frozenset[str] | None


def problems(pipeline: Pipeline, hint: Hint) -> list[Problem]:
    """Every reference and buildspec problem of ``pipeline`` that can be known offline."""
    found: list[Problem] = []
    exported: dict[str, frozenset[str]] = {}
    for s, a, _, action in pipeline.actions():
        if action.type_id.provider == "CodeBuild" and action.type_id.owner == "AWS":
            spec, problem = _buildspec(pipeline, s, a, action)
            if problem is not None:
                found.append(problem)
            if spec is not None and action.namespace:
                exported[action.namespace] = spec
    producers = {
        action.namespace: _Producer(s, action, _variables(action, exported))
        for s, _, _, action in pipeline.actions()
        if action.namespace
    }
    declared = [v.name for v in pipeline.variables]
    for s, a, _, action in pipeline.actions():
        for where, text in _texts(action):
            for ref in references(text):
                message = _reference(ref.namespace, ref.name, s, action, producers, declared, hint)
                if message:
                    found.append(Problem(f"stages[{s}].actions[{a}].{where}", f"{ref}: {message}"))
    return found


def _texts(action: Action) -> Iterator[tuple[str, str]]:
    for key, value in action.config.items():
        yield f"configuration.{key}", value
    for index, command in enumerate(action.commands):
        yield f"commands[{index}]", command
    for index, variable in enumerate(action.environment_variables):
        yield f"environmentVariables[{index}].value", variable.value


def _variables(action: Action, exported: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    """The variables ``action`` sets, when they can be known offline."""
    if action.type_id.provider == "Commands":
        return frozenset(action.output_variables)
    if action.is_source and action.type_id.owner == "AWS":
        return SOURCE_VARIABLES.get(action.type_id.provider)
    return exported.get(action.namespace or "")


def _reference(
    namespace: str,
    name: str,
    stage: int,
    action: Action,
    producers: Mapping[str, _Producer],
    declared: list[str],
    hint: Hint,
) -> str | None:
    if namespace == PIPELINE_VARIABLES:
        if name in declared:
            return None
        listed = ", ".join(declared) or "none"
        return (
            f"the pipeline declares no variable '{name}' (it declares: {listed})."
            f"{hint(name, declared)}"
        )
    if namespace == CODEPIPELINE:
        if name in EXECUTION_VARIABLES:
            return None
        suggested = hint(name, sorted(EXECUTION_VARIABLES))
        return f"'{CODEPIPELINE}' has only PipelineExecutionId.{suggested}"
    producer = producers.get(namespace)
    if producer is None:
        known = sorted([*producers, PIPELINE_VARIABLES, CODEPIPELINE])
        return f"no action declares namespace '{namespace}'.{hint(namespace, known)}"
    before = producer.stage < stage or (
        producer.stage == stage and producer.action.run_order < action.run_order
    )
    if not before:
        return (
            f"namespace '{namespace}' belongs to action '{producer.action.name}', which does not "
            f"run before action '{action.name}'."
        )
    if producer.variables is None or name in producer.variables:
        return None
    listed = ", ".join(sorted(producer.variables)) or "none"
    return (
        f"action '{producer.action.name}' sets no variable '{name}' (it sets: {listed})."
        f"{hint(name, sorted(producer.variables))}"
    )


def _buildspec(
    pipeline: Pipeline, s: int, a: int, action: Action
) -> tuple[frozenset[str] | None, Problem | None]:
    """The buildspec's exported variables when it could be read, and its problem if any."""
    # Here: CodeBuild's package is imported only for a pipeline with CodeBuild actions.
    from conveyor.actions.codebuild.buildspec import BuildspecError, is_inline, parse

    key = next((k for k in BUILDSPEC_KEYS if action.config.get(k, "").strip()), None)
    value = action.config.get(key, "").strip() if key else ""
    where = f"stages[{s}].actions[{a}]" + (f".configuration.{key}" if key else "")
    text: str | None = value
    label = f"{key} (inline)"
    if not (key and is_inline(value)):
        read = _from_repository(pipeline, action, value or DEFAULT_BUILDSPEC)
        if read is None:
            return None, None
        text, label = read
        if text is None:
            return None, Problem(where, f"no buildspec: {label} does not exist")
    assert text is not None
    try:
        spec = parse(text)
    except BuildspecError as error:
        return None, Problem(where, f"Invalid buildspec ({label}): {error}")
    return frozenset(spec.env.exported_variables), None


def _from_repository(
    pipeline: Pipeline, action: Action, path: str
) -> tuple[str | None, str] | None:
    """``path`` in the branch of the local Git repository the action's primary input comes
    from: its text (None when the branch has no such file), or None when it cannot be read."""
    primary = action.config.get("PrimarySource") or (
        action.input_artifacts[0] if action.input_artifacts else None
    )
    source = next(
        (
            producer
            for _, _, _, producer in pipeline.actions()
            if any(o.name == primary for o in producer.output_artifacts)
        ),
        None,
    )
    if source is None or source.type_id.provider != "Git" or source.type_id.owner != "AWS":
        return None
    folder = source.config.get("RepositoryUrl", "")
    branch = source.config.get("BranchName") or "main"
    own = os.path.exists(os.path.join(folder, ".git")) or os.path.isfile(
        os.path.join(folder, "HEAD")
    )
    if not os.path.isdir(folder) or not own:  # a folder inside another repository is not one
        return None
    label = f"{path} on branch {branch} of {folder}"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    try:
        branch_ok = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            cwd=folder,
            env=env,
            capture_output=True,
            check=False,
        )
        if branch_ok.returncode != 0:
            return None
        shown = subprocess.run(
            ["git", "show", f"refs/heads/{branch}:{path}"],
            cwd=folder,
            env=env,
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if shown.returncode != 0:
        return None, label
    return shown.stdout.decode(errors="replace"), label
