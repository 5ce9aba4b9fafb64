"""PutActionRevision: a new revision for a source action, run by a new execution."""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params


def put_action_revision(ctx: Context, params: Params) -> dict[str, Any]:
    new, execution_id = ctx.services.revisions.put(
        params["pipelineName"], params["stageName"], params["actionName"], params["actionRevision"]
    )
    return {"newRevision": new, "pipelineExecutionId": execution_id}
