"""Job worker operations for custom actions: PollForJobs, AcknowledgeJob, GetJobDetails,
PutJobSuccessResult, PutJobFailureResult.

They serve the jobs of custom (and third-party) action types, and, as an extension, of the
built-in types the settings leave to job workers (``worker_action_types``). The jobs of the
built-in actions this server runs (Commands, CodeBuild, ...) belong to its own workers: to a
job worker they do not exist, so nobody who learns such a job's id can read its data or end
a running action with a forged result; but a Lambda function run for a job reports it, as on
AWS, so Lambda jobs are reachable by their (unguessable) id.

With access control, each is decided on the job's action type ARN (a worker allowed to poll
one type cannot see, acknowledge or end another's jobs), and a job that a worker has taken
answers to that worker only: another caller who learns its id and nonce cannot end it.
"""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.api.shapes import compact, type_id_from
from conveyor.domain.actiontype import ActionOwner, render_url
from conveyor.domain.catalog import SELF_REPORTING, WORKER_SETTING
from conveyor.domain.errors import (
    ActionTypeNotFoundException,
    JobNotFoundException,
    ValidationException,
)
from conveyor.store import JobRecord


def _wire(ctx: Context, job: JobRecord) -> dict[str, Any]:
    data = {k: v for k, v in job.data.items() if k != "conveyor"}
    return {"id": job.id, "nonce": job.nonce, "accountId": ctx.services.scope.account, "data": data}


def poll_for_jobs(ctx: Context, params: Params) -> dict[str, Any]:
    type_id = type_id_from(params["actionTypeId"])
    if type_id.owner != ActionOwner.CUSTOM and type_id not in ctx.services.worker_types:
        raise ActionTypeNotFoundException(
            f"PollForJobs serves custom action types, and the built-in types listed in "
            f"{WORKER_SETTING}; {type_id} is neither."
        )
    ctx.authorize("PollForJobs", ctx.services.scope.action_type(type_id))
    action_type = ctx.services.action_types.get(type_id)
    query = params.get("queryParam") or {}
    query_value = None
    if query:
        ((key, query_value),) = query.items()
        prop = action_type.find_property(key)
        if prop is None or not prop.queryable:
            raise ValidationException(
                f"queryParam names '{key}', which is not the queryable property of {type_id}."
            )
    jobs = ctx.services.jobs.poll(
        [type_id],
        owner=_owner(ctx),
        limit=params.get("maxBatchSize") or 1,
        query_value=query_value,
        until_deadline=True,
    )
    return {"jobs": [_wire(ctx, job) for job in jobs]}


def _workers_job(ctx: Context, job_id: str, operation: str) -> JobRecord:
    """The job, if it is one this job worker may see: of a custom or third-party action type
    its policies allow ``operation`` on, and, once a worker holds it, held by this caller."""
    job = ctx.services.jobs.get(job_id)
    if job.type_id.owner == ActionOwner.AWS and not (
        job.type_id in ctx.services.worker_types or job.type_id in SELF_REPORTING
    ):
        raise JobNotFoundException(f"Job {job_id} does not exist.")
    ctx.authorize(operation, ctx.services.scope.action_type(job.type_id))
    if ctx.access is not None and ctx.access.required and job.owner not in (None, _owner(ctx)):
        raise JobNotFoundException(f"Job {job_id} does not exist for this worker.")
    return job


def _owner(ctx: Context) -> str:
    return f"remote/{ctx.caller}"


def _execution_url(ctx: Context, job: JobRecord, external_id: str | None) -> str | None:
    """The type's executionUrlTemplate with the job's values: the action's external URL.
    None (the action keeps its log URL) without a template or an external execution id."""
    if not external_id:
        return None
    return _rendered(ctx, job, "execution", external_id=external_id)


def _rendered(ctx: Context, job: JobRecord, which: str, **values: str) -> str | None:
    try:
        action_type = ctx.services.action_types.get(job.type_id)
    except ActionTypeNotFoundException:  # deleted while its job ran
        return None
    templates = action_type.urls
    template = (
        templates.execution_url_template
        if which == "execution"
        else templates.revision_url_template
    )
    configuration = job.data["actionConfiguration"]["configuration"]
    return render_url(template, action_type.public_configuration(configuration), **values)


def acknowledge_job(ctx: Context, params: Params) -> dict[str, Any]:
    _workers_job(ctx, params["jobId"], "AcknowledgeJob")
    return {"status": ctx.services.jobs.acknowledge(params["jobId"], params["nonce"])}


def get_job_details(ctx: Context, params: Params) -> dict[str, Any]:
    found = _workers_job(ctx, params["jobId"], "GetJobDetails")
    job = _wire(ctx, ctx.services.jobs.handed(found))
    return {"jobDetails": {"id": job["id"], "data": job["data"], "accountId": job["accountId"]}}


def put_job_success_result(ctx: Context, params: Params) -> None:
    details = params.get("executionDetails") or {}
    revision = params.get("currentRevision")
    if params.get("continuationToken") and params.get("outputVariables"):
        raise ValidationException(
            "outputVariables can only be given with the final result, not with a continuationToken."
        )
    job = _workers_job(ctx, params["jobId"], "PutJobSuccessResult")
    ctx.services.jobs.succeed(
        params["jobId"],
        summary=details.get("summary"),
        external_id=details.get("externalExecutionId"),
        external_url=_execution_url(ctx, job, details.get("externalExecutionId")),
        percent_complete=details.get("percentComplete"),
        output_variables=params.get("outputVariables"),
        revision=compact(
            revisionId=revision["revision"],
            revisionChangeIdentifier=revision["changeIdentifier"],
            created=revision.get("created"),
            revisionSummary=revision.get("revisionSummary"),
            revisionUrl=_rendered(ctx, job, "revision", revision_id=revision["revision"]),
        )
        if revision
        else None,
        continuation_token=params.get("continuationToken"),
    )


def put_job_failure_result(ctx: Context, params: Params) -> None:
    failure = params["failureDetails"]
    job = _workers_job(ctx, params["jobId"], "PutJobFailureResult")
    ctx.services.jobs.fail(
        params["jobId"],
        failure_type=failure["type"],
        message=failure["message"],
        external_id=failure.get("externalExecutionId"),
        external_url=_execution_url(ctx, job, failure.get("externalExecutionId")),
    )
