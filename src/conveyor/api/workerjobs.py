"""``/_conveyor/worker/*``: the job protocol for ``conveyor worker``, a remote worker that runs
the built-in providers (Commands, CodeBuild, sources, deploys) on another machine.

This is a Conveyor extension beside the CodePipeline API, served only when the setting
``remote_workers`` is on. PollForJobs keeps serving custom and ``worker_action_types`` jobs
only; the jobs of built-in actions are reachable here, and nowhere else. Each call is a JSON
``POST``; an error is ``{"__type": <AWS error code>, "message": ...}`` with its status.

- ``poll`` ``{types, owner, wait, labels}``: claims (polls and acknowledges at once, as an
  in-process worker does) the oldest queued job of these built-in types that a worker with
  these ``labels`` may take (`conveyor.domain.labels`), waiting up to ``wait`` seconds for
  one; ``{"job": null}`` when none came. The job is leased to ``remote/<owner>``.
- ``renew`` ``{jobId, owner}``: extends the lease; ``{"renewed": false}`` once the job is no
  longer the worker's to run (abandoned, timed out), which tells it to stop the action.
- ``status`` ``{jobId, owner}``: the job's status, for actions that report themselves.
- ``watch`` ``{owner, wait}``: the ids of the jobs of owners starting with ``owner`` that
  were cancelled (stopped, abandoned, on this server or another of the database) since the
  last watch, as soon as there are some, else none after ``wait`` seconds: ``{"ended": [...]}``
  (`conveyor.api.workerwatch`). A worker keeps one waiting, and stops those actions at once.
- ``leave`` ``{owner}``: the worker stops taking jobs: the polls of owners starting with
  ``owner`` answer none at once (and for `MAX_WAIT` seconds), so a draining worker need not
  wait for its idle polls.
- ``result`` ``{jobId, owner, succeeded, ..., log, next, labels}``: the job's result and the
  action's log (appended to the server's log of the action before the result is written, so
  that a log followed to the action's end is whole); with ``next``, the worker's next job is
  claimed in the same transaction, as in-process workers do.

A job handed out (by a poll or with a result) gets its log file on the server once the answer
is sent, off the worker's path: making a file costs several times what appending to one does,
and the job's result, which appends the worker's log, comes later (or makes it, if first).

A job comes with ``objects``: what the server knows of the objects it reads (bucket, key, size,
ETag, version, when written), from local buckets, so that the worker need not ask the S3
endpoint about each input before it fetches it (or takes the copy it unpacked already).

A job answers only to the worker that holds it: another worker that learns its id cannot
renew or end it.

With authentication required, each call is signed with the worker's own access key (SigV4,
service ``codepipeline``, as API calls are) and its key's policies must allow
`WORKER_ACTION` on the action type ARN of each type it polls for and of each job it
reports; the owner a worker names is then kept under its access key (``remote/<key>/<owner>``),
so a worker with one key cannot reach the jobs of another.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor.api.logs import log_path
from conveyor.api.model import SERVICE
from conveyor.api.workerwatch import Handed, Watches
from conveyor.artifacts import ObjectInfo
from conveyor.auth.artifactkeys import job_objects
from conveyor.auth.gate import Access, Caller
from conveyor.auth.sigv4 import Received
from conveyor.domain.actiontype import ActionOwner, ActionTypeId
from conveyor.domain.errors import ConveyorError, JobNotFoundException, ValidationException
from conveyor.domain.labels import LabelError, parse_labels
from conveyor.engine.jobs import Taker
from conveyor.engine.services import Services
from conveyor.metrics import Recorder
from conveyor.store import JobRecord

log = logging.getLogger("conveyor.api")
# The start of every remote worker's owner name (what its jobs say holds them).
REMOTE = "remote/"
PREFIX = "/_conveyor/worker"
# The policy action a remote worker's key needs, on the types it runs (a Conveyor extension).
WORKER_ACTION = "conveyor:RunBuiltInJobs"
# The longest owner a worker may name.
MAX_OWNER = 64
# What the server knows of an object: (bucket, key) → its size, ETag, version and time.
Stat = Callable[[str, str], ObjectInfo | None]
# The longest a poll waits for a job, in seconds.
MAX_WAIT = 20.0
# The most of an action's log a result carries, in bytes.
MAX_LOG = 16 * 1024 * 1024


def type_of(text: object) -> ActionTypeId:
    """``Owner/Category/Provider/Version`` as an action type id; built-in types only (owner
    AWS or ThirdParty)."""
    parts = text.split("/") if isinstance(text, str) else []
    if len(parts) != 4 or parts[0] == ActionOwner.CUSTOM or not all(parts):
        raise ValidationException(
            f"types: {text!r} is not a built-in action type written "
            "Owner/Category/Provider/Version (such as AWS/Build/CodeBuild/1)"
        )
    return ActionTypeId(parts[1], parts[0], parts[2], parts[3])


def wire_job(job: JobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
        "actionExecutionId": job.action_execution_id,
        "pipelineId": job.pipeline_id,
        "type": str(job.type_id),
        "status": job.status,
        "nonce": job.nonce,
        "owner": job.owner,
        "leaseUntil": job.lease_until,
        "queryValue": job.query_value,
        "data": job.data,
        "created": job.created,
        "updated": job.updated,
    }


def known_objects(job: JobRecord, stat: Stat | None) -> list[list[Any]]:
    """``[bucket, key, size, etag, version, modified]`` of each object the job reads that
    ``stat`` finds."""
    if stat is None:
        return []
    found = []
    for bucket, key in job_objects(job.data)[0]:
        info = stat(bucket, key)
        if info is not None:
            found.append([bucket, key, info.size, info.etag, info.version_id, info.last_modified])
    return found


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationException(f"{name}: a non-empty string is required")
    return value


class WorkerRoutes:
    def __init__(
        self,
        services: Services,
        logs: Path,
        closing: threading.Event,
        access: Access | None = None,
        stat: Stat | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._services = services
        self._stat = stat
        # Counts the polls that wait, for /metrics.
        self._recorder = recorder
        self._access = access if access is not None and access.required else None
        self._logs = logs
        self._closing = closing
        # Owner prefix → when it left (monotonic seconds).
        self._leaving: dict[str, float] = {}
        self._lock = threading.Lock()
        self._watches = Watches()
        services.notifier.on_cancel(self._watches.cancelled)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/{name}", self._endpoint(name), methods=["POST"])
            for name in ("poll", "renew", "status", "result", "leave", "watch")
        ]

    def _endpoint(self, name: str) -> Any:
        handler = getattr(self, f"_{name}")

        async def endpoint(request: Request) -> Response:
            def answer(raw: bytes) -> dict[str, Any]:
                # One trip to a thread for the signature and the call.
                caller = self._caller(request, raw)
                return handler(_parse(raw), caller)  # type: ignore[no-any-return]

            try:
                payload = await run_in_threadpool(answer, await request.body())
            except ConveyorError as error:
                return JSONResponse(
                    {"__type": error.code, "message": error.message}, status_code=error.status
                )
            except Exception as error:  # the database away, typically: the worker retries
                log.warning("worker call %s failed: %s", name, error)
                message = "The server cannot answer now (see its log); try again."
                body = {"__type": "ServiceUnavailable", "message": message}
                return JSONResponse(body, status_code=503)
            return JSONResponse(payload, background=self._log_ahead(payload.get("job")))

        return endpoint

    def _log_ahead(self, wire: Mapping[str, Any] | None) -> BackgroundTask | None:
        """For a job handed out, the making of its log file, once the answer is sent."""
        execution = _execution(wire["data"]) if wire is not None else ""
        if not execution:
            return None
        return BackgroundTask(_make_log, log_path(self._logs, execution))

    def _caller(self, request: Request, raw: bytes) -> Caller | None:
        """The signer of the call when authentication is required (else None)."""
        if self._access is None:
            return None
        received = Received(
            request.method,
            request.url.path,
            request.url.query,
            [
                (k.decode("latin-1").lower(), v.decode("latin-1"))
                for k, v in request.scope["headers"]
            ],
            raw,
        )
        source_ip = request.client.host if request.client else "0.0.0.0"
        return self._access.authenticate(received, SERVICE, source_ip)

    def _allow(self, caller: Caller | None, type_id: ActionTypeId) -> None:
        if self._access is not None and caller is not None:
            arn = self._services.scope.action_type(type_id)
            self._access.authorize(caller, WORKER_ACTION, arn)

    def _owner(self, body: Mapping[str, Any], caller: Caller | None) -> str:
        named = _text(body, "owner")
        assert named is not None
        if len(named) > MAX_OWNER:
            raise ValidationException(f"owner: at most {MAX_OWNER} characters")
        return f"{REMOTE}{named}" if caller is None else f"{REMOTE}{caller.access_key}/{named}"

    def _held(self, body: Mapping[str, Any], caller: Caller | None) -> tuple[JobRecord, str]:
        job_id, owner = _text(body, "jobId"), self._owner(body, caller)
        assert job_id is not None
        job = self._services.jobs.get(job_id)
        if job.type_id.owner == ActionOwner.CUSTOM or job.owner != owner:
            raise JobNotFoundException(f"Job {job_id} does not exist for worker {owner}.")
        self._allow(caller, job.type_id)
        return job, owner

    def _types(self, body: Mapping[str, Any], caller: Caller | None) -> list[ActionTypeId]:
        types = body.get("types")
        if not isinstance(types, list) or not types:
            raise ValidationException("types: a non-empty list of action types is required")
        # The types the settings leave to PollForJobs workers are theirs alone.
        taken = [t for t in map(type_of, types) if t not in self._services.worker_types]
        if not taken:
            raise ValidationException(
                "types: every one is left to PollForJobs job workers (worker_action_types)"
            )
        for type_id in taken:
            self._allow(caller, type_id)
        return taken

    def _poll(self, body: Mapping[str, Any], caller: Caller | None) -> dict[str, Any]:
        types, owner = self._types(body, caller), self._owner(body, caller)
        labels = _labels(body)
        wait = _seconds(body)
        jobs, notifier = self._services.jobs, self._services.notifier
        deadline = time.monotonic() + min(float(wait), MAX_WAIT)
        with self._recorder.polling() if self._recorder is not None else nullcontext():
            while True:
                # The generation is read before the claim: a job queued in between wakes us.
                seen = notifier.generation
                job = jobs.claim(types, owner=owner, labels=labels)
                left = deadline - time.monotonic()
                if job is not None or left <= 0 or self._closing.is_set() or self._left(owner):
                    break
                notifier.wait_for_jobs(seen, left)
        return {"job": self._wire(job), "lease": jobs.lease}

    def _wire(self, job: JobRecord | None) -> dict[str, Any] | None:
        if job is None:
            return None
        if job.owner is not None:
            self._watches.handed(_handed(job))
        return wire_job(job) | {"objects": known_objects(job, self._stat)}

    def _left(self, owner: str) -> bool:
        with self._lock:
            return any(owner.startswith(prefix) for prefix in self._leaving)

    def _leave(self, body: Mapping[str, Any], caller: Caller | None) -> dict[str, Any]:
        now = time.monotonic()
        owner = self._owner(body, caller)
        with self._lock:
            for prefix, when in list(self._leaving.items()):
                if now - when > MAX_WAIT:
                    del self._leaving[prefix]
            self._leaving[owner] = now
        self._services.notifier.jobs_queued()
        return {}

    def _watch(self, body: Mapping[str, Any], caller: Caller | None) -> dict[str, Any]:
        owner = self._owner(body, caller)
        wait = _seconds(body)
        return {"ended": self._watches.wait(owner, min(wait, MAX_WAIT), self._closing)}

    def _renew(self, body: Mapping[str, Any], caller: Caller | None) -> dict[str, Any]:
        job, owner = self._held(body, caller)
        return {"renewed": self._services.jobs.renew(job.id, owner)}

    def _status(self, body: Mapping[str, Any], caller: Caller | None) -> dict[str, Any]:
        job, _ = self._held(body, caller)
        return {"status": job.status}

    def _handed(self, body: Mapping[str, Any], caller: Caller | None) -> Handed:
        """The job the call names, as this server handed it to the caller (no read); else as
        stored, checked to be the caller's."""
        job_id, owner = _text(body, "jobId"), self._owner(body, caller)
        assert job_id is not None
        handed = self._watches.handed_job(job_id)
        if handed is not None and handed.owner == owner:
            self._allow(caller, handed.type_id)
            return handed
        job, owner = self._held(body, caller)
        return _handed(job)

    def _result(self, body: Mapping[str, Any], caller: Caller | None) -> dict[str, Any]:
        # The job's owner is checked again as its result is written (``held_by``).
        job = self._handed(body, caller)
        owner = job.owner
        self._append_log(job.action_execution, body.get("log"))
        taker = Taker(self._types(body, caller), owner, _labels(body)) if body.get("next") else None
        jobs = self._services.jobs
        external_id = _text(body, "externalId", required=False)
        if body.get("succeeded") is True:
            variables = body.get("outputVariables") or {}
            revision = body.get("revision")
            if not isinstance(variables, dict) or not (
                revision is None or isinstance(revision, dict)
            ):
                raise ValidationException("outputVariables and revision must be objects")
            taken = jobs.succeed(
                job.id,
                summary=_text(body, "summary", required=False),
                external_id=external_id,
                output_variables={str(k): str(v) for k, v in variables.items()},
                revision=revision,
                next_for=taker,
                held_by=owner,
            )
        else:
            taken = jobs.fail(
                job.id,
                failure_type=_text(body, "failureType") or "JobFailed",
                message=(_text(body, "message") or "")[:5000],
                external_id=external_id,
                next_for=taker,
                held_by=owner,
            )
        self._watches.reported(job.id)
        return {"job": self._wire(taken)}

    def _append_log(self, execution: str, text: object) -> None:
        if not isinstance(text, str) or not text or not execution:
            return
        append(log_path(self._logs, execution), text[-MAX_LOG:].encode("utf-8"))


def append(path: Path, data: bytes) -> None:
    """Append ``data`` to the file at ``path``, made (and its folder) when missing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    try:
        fd = os.open(path, flags, 0o666)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _make_log(path: Path) -> None:
    try:
        append(path, b"")
    except OSError as error:  # the result makes it, or says why it cannot
        log.warning("cannot make the log file %s: %s", path, error)


def _execution(data: Mapping[str, Any]) -> str:
    """The action execution a job's data names; empty for a job that keeps no data."""
    action = (data.get("pipelineContext") or {}).get("action") or {}
    return str(action.get("actionExecutionId", ""))


def _handed(job: JobRecord) -> Handed:
    # A finished built-in job keeps no data: its result is refused, and no log is appended.
    return Handed(job.id, str(job.owner), job.type_id, _execution(job.data))


def _seconds(body: Mapping[str, Any]) -> float:
    wait = body.get("wait", 0)
    if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
        raise ValidationException("wait: a number of seconds, 0 or more, is required")
    return float(wait)


def _labels(body: Mapping[str, Any]) -> frozenset[str]:
    value = body.get("labels") or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationException("labels: a list of label names is required")
    try:
        return parse_labels(",".join(value))
    except LabelError as exc:
        raise ValidationException(f"labels: {exc}") from exc


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ValidationException(f"The request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationException("The request body must be a JSON object")
    return body


def worker_routes(
    services: Services,
    logs: Path,
    closing: threading.Event,
    access: Access | None = None,
    stat: Stat | None = None,
    recorder: Recorder | None = None,
) -> Sequence[BaseRoute]:
    """The routes; ``closing`` set (the server stops) ends the polls that wait; with
    ``access`` requiring authentication, every call is signed and decided; ``stat``: what
    the server's local buckets say of an object, handed out with each job; ``recorder``
    counts the polls waiting (the remote workers' idle ones, in /metrics)."""
    return WorkerRoutes(services, logs, closing, access, stat, recorder).routes()
