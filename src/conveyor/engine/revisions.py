"""PutActionRevision: a source action is told of a new revision, and an execution runs it.

The execution starts with trigger ``PutActionRevision`` (the revision id as detail) and the
revision pinned for that source action, so a Git, CodeCommit or connection source fetches
exactly that commit and an S3 source that object version, however the branch or object has
moved since. Source types Conveyor cannot pin a revision for (custom and third-party ones)
start unpinned; their job workers are handed the job as for any other start.

A revision already given to the action, or the revision the action last emitted, is not new:
``newRevision`` is false, no execution starts, and ``pipelineExecutionId`` names the
execution that has it. The check and the start commit together, with the pipeline locked,
so the same revision put twice at once starts one execution.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from conveyor.domain.arn import Scope
from conveyor.domain.errors import (
    ActionNotFoundException,
    StageNotFoundException,
    ValidationException,
)
from conveyor.engine import lookup
from conveyor.engine.clock import Clock
from conveyor.engine.executions import ExecutionService
from conveyor.engine.plans import Plans
from conveyor.engine.runner import Outcome
from conveyor.store import Tx

TRIGGER = "PutActionRevision"
# The revision type an ActionRevision's revisionId is, by source provider.
PINNED_AS = {
    "Git": "COMMIT_ID",
    "CodeCommit": "COMMIT_ID",
    "CodeStarSourceConnection": "COMMIT_ID",
    "S3": "S3_OBJECT_VERSION_ID",
    "ECR": "IMAGE_DIGEST",
}
_COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,64}\Z")
_MAX_DETAIL = 1024


class RevisionService:
    def __init__(
        self, scope: Scope, clock: Clock, plans: Plans, executions: ExecutionService
    ) -> None:
        self._scope = scope
        self._clock = clock
        self._plans = plans
        self._executions = executions

    def put(
        self, name: str, stage: str, action: str, revision: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """Whether the revision is new, and the execution that runs it."""
        revision_id: str = revision["revisionId"]

        def work(tx: Tx) -> tuple[tuple[bool, str], Outcome]:
            pipeline = lookup.pipeline(tx, self._scope, name, lock=True)
            plan = self._plans.get(tx, pipeline.id, pipeline.version)
            stage_plan = plan.stage(stage)
            if stage_plan is None:
                raise StageNotFoundException(
                    f"Stage '{stage}' does not exist in pipeline '{name}'."
                )
            declared = stage_plan.actions.get(action)
            if declared is None or not declared.is_source:
                raise ActionNotFoundException(
                    f"Stage '{stage}' of pipeline '{name}' has no source action named '{action}'."
                )
            revision_type = PINNED_AS.get(declared.type_id.provider)
            if revision_type == "COMMIT_ID" and not _COMMIT_ID.match(revision_id):
                raise ValidationException(
                    f"actionRevision.revisionId '{revision_id[:100]}' is not a commit id, which "
                    f"source action '{action}' ({declared.type_id.provider}) needs."
                )
            seen = self._seen(tx, pipeline.id, stage, action, revision_id)
            if seen is not None:
                return (False, seen), Outcome()
            pinned = (
                [
                    {
                        "actionName": action,
                        "revisionType": revision_type,
                        "revisionValue": revision_id,
                    }
                ]
                if revision_type
                else []
            )
            execution_id, outcome = self._executions.start_locked(
                tx,
                pipeline,
                trigger_type=TRIGGER,
                trigger_detail=revision_id[:_MAX_DETAIL],
                source_revisions=pinned,
            )
            tx.action_revisions.record(
                pipeline.id, stage, action, revision_id, execution_id, self._clock.now()
            )
            return (True, execution_id), outcome

        return self._executions.write(work)

    @staticmethod
    def _seen(tx: Tx, pipeline_id: int, stage: str, action: str, revision_id: str) -> str | None:
        """The execution that has this revision of the action already, if one has."""
        put_before = tx.action_revisions.execution_of(pipeline_id, stage, action, revision_id)
        if put_before is not None:
            return put_before
        current = tx.actions.latest_revision(pipeline_id, stage, action) or {}
        if current.get("revisionId") == revision_id:
            latest = tx.actions.latest_of_pipeline(pipeline_id, stage, action)
            if latest is not None:
                return latest.execution_id
        return None
