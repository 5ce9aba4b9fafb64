"""``conveyor worker``: the built-in providers run on another machine, with jobs claimed from a
server over HTTP only (its ``/_conveyor/worker`` routes, `conveyor.api.workerjobs`).

The worker is the in-process `WorkerPool` with another job source: `RemoteJobs` makes the
pool's calls (claim, renew, status, result) to the server, so claims, leases, renewals and
results keep the same rules. An idle worker long-polls: the server answers a poll as soon as a
job of the worker's types is queued. Artifacts go through the server's S3 endpoint
(``/_conveyor/s3``) or, when the worker's settings name one, the shared ``s3_endpoint``. An
action's log is written in the worker's home while it runs and travels with its result.
A job comes with what the server knows of the objects it reads, so a worker asks the S3
endpoint about an input only when the server said nothing of it
(`conveyor.worker.artifactaccess`). A ``watch`` call
kept waiting on the server (`watch`) tells of the jobs cancelled there or on another server of
its database, whose actions stop at once rather than at their next lease renewal. Calls keep
their connections open (`conveyor.worker.link`).

A failed call is retried by the pool's loop with a growing pause (the server away); a result
that cannot be delivered is retried for `RESULT_PATIENCE` seconds, after which the job's
lease, expired on the server, has failed it.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from conveyor.actions.base import Provider
from conveyor.actions.registry import providers
from conveyor.artifacts import ObjectInfo
from conveyor.auth.artifactkeys import Object
from conveyor.config import Settings, SettingsError
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.errors import ConveyorError
from conveyor.engine.jobs import LEASE_SECONDS, Taker
from conveyor.home import lock_home
from conveyor.store import JobRecord
from conveyor.worker import leftovers
from conveyor.worker.artifactaccess import artifact_store, signer
from conveyor.worker.embedded import node_id, provider_config
from conveyor.worker.link import Link
from conveyor.worker.pool import WorkerPool

log = logging.getLogger("conveyor.worker")
ROUTES = "/_conveyor/worker"
# Seconds a poll waits on the server for a job before it answers none.
POLL_WAIT = 10.0
# Seconds a worker keeps trying to deliver a result while the server is away.
RESULT_PATIENCE = 300.0


class Refused(ConveyorError):
    """The server refused a call; ``code`` is the error code it answered."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self._code = code

    @property
    def transient(self) -> bool:
        """The server could not answer for now (its database away): worth trying again."""
        return self._code in ("ServiceUnavailable", "InternalFailure") or self._code.startswith(
            "HTTP5"
        )

    @property
    def code(self) -> str:
        return self._code


def _type_id(text: str) -> ActionTypeId:
    owner, category, provider, version = text.split("/")
    return ActionTypeId(category, owner, provider, version)


def _record(wire: Mapping[str, Any]) -> JobRecord:
    return JobRecord(
        id=wire["id"],
        action_execution_id=wire["actionExecutionId"],
        pipeline_id=wire["pipelineId"],
        type_id=_type_id(wire["type"]),
        status=wire["status"],
        nonce=wire["nonce"],
        owner=wire["owner"],
        lease_until=wire["leaseUntil"],
        query_value=wire["queryValue"],
        data=wire["data"],
        created=wire["created"],
        updated=wire["updated"],
    )


@dataclass(frozen=True, slots=True)
class Key:
    """The worker's own access key, which signs its calls to a server with auth required."""

    access_key: str
    secret: str
    token: str | None = None


def signed(
    url: str, data: bytes, headers: Mapping[str, str], key: Key, region: str
) -> dict[str, str]:
    """``headers`` with a SigV4 signature of the POST of ``data`` to ``url`` (botocore's
    signer, service ``codepipeline`` as for API calls)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=data, headers=dict(headers))
    credentials = Credentials(key.access_key, key.secret, key.token)
    SigV4Auth(credentials, "codepipeline", region).add_auth(request)
    return dict(request.headers.items())


class RemoteJobs:
    """The job calls a `WorkerPool` makes, made to a server's worker routes."""

    def __init__(
        self,
        endpoint: str,
        logs: Path,
        *,
        wait: float = POLL_WAIT,
        key: Key | None = None,
        region: str = "us-east-1",
    ) -> None:
        self._base = endpoint.rstrip("/") + ROUTES
        self._link = Link(endpoint)
        self._logs = logs
        self._wait = wait
        self._key = key
        self._region = region
        self.lease = LEASE_SECONDS
        # Job id → (the job as claimed, the owner that holds it).
        self._held: dict[str, tuple[JobRecord, str]] = {}
        # The held jobs whose result is on its way: the server may end them any moment.
        self._reporting: set[str] = set()
        # Job id → what the server said of the objects it reads, by (bucket, key).
        self._objects: dict[str, dict[Object, ObjectInfo]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connections kept open to the server."""
        self._link.close()

    def _call(self, name: str, body: Mapping[str, Any], timeout: float = 30.0) -> Any:
        url, data = f"{self._base}/{name}", json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if self._key is not None:
            headers = signed(url, data, headers, self._key, self._region)
        answer = self._link.post(urlsplit(url).path, data, headers, timeout)
        if answer.status < 400:
            return json.loads(answer.body)
        try:
            payload = json.loads(answer.body or b"{}")
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        code = str(payload.get("__type") or f"HTTP{answer.status}")
        raise Refused(code, str(payload.get("message") or answer.reason))

    def _keep(self, wire: Mapping[str, Any] | None, owner: str) -> JobRecord | None:
        if wire is None:
            return None
        job = _record(wire)
        objects = {
            (bucket, key): ObjectInfo(int(size), str(etag), version, float(modified))
            for bucket, key, size, etag, version, modified in wire.get("objects") or ()
        }
        with self._lock:
            self._held[job.id] = (job, owner)
            self._objects[job.id] = objects
        return job

    def known(self, bucket: str, key: str) -> ObjectInfo | None:
        """What the server said of this object when it handed out a job that reads it."""
        with self._lock:
            for objects in self._objects.values():
                if (found := objects.get((bucket, key))) is not None:
                    return found
        return None

    def claim(
        self, types: Sequence[ActionTypeId], *, owner: str, labels: frozenset[str] = frozenset()
    ) -> JobRecord | None:
        body = {
            "types": [str(t) for t in types],
            "owner": owner,
            "wait": self._wait,
            "labels": sorted(labels),
        }
        answer = self._call("poll", body, timeout=self._wait + 30.0)
        self.lease = float(answer.get("lease") or self.lease)
        return self._keep(answer.get("job"), owner)

    def credentials_for(self, bucket: str, key: str) -> Mapping[str, str] | None:
        """The artifactCredentials of a held job that may reach this object (with no key:
        an object of the bucket): see `signer`."""
        with self._lock:
            held = [(job, job.id in self._reporting) for job, _ in self._held.values()]
        return signer(held, bucket, key)

    def leave(self, owner: str) -> None:
        """Tell the server that the workers whose ids start with ``owner`` take no more jobs:
        their idle polls end at once."""
        self._call("leave", {"owner": owner})

    def watch(self, prefix: str) -> list[str]:
        """The jobs of owners starting with ``prefix`` that the server cancelled since the
        last call, once there are some (or none, after the poll's wait)."""
        answer = self._call("watch", {"owner": prefix, "wait": self._wait}, self._wait + 30.0)
        return [str(job_id) for job_id in answer.get("ended") or ()]

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._held.pop(job_id, None)
            self._reporting.discard(job_id)
            self._objects.pop(job_id, None)

    def _owner(self, job_id: str) -> tuple[JobRecord, str]:
        with self._lock:
            return self._held[job_id]

    def get(self, job_id: str) -> JobRecord:
        job, owner = self._owner(job_id)
        answer = self._call("status", {"jobId": job_id, "owner": owner})
        return replace(job, status=answer["status"])

    def renew(self, job_id: str, owner: str) -> bool:
        return bool(self._call("renew", {"jobId": job_id, "owner": owner})["renewed"])

    def succeed(
        self,
        job_id: str,
        *,
        summary: str | None = None,
        external_id: str | None = None,
        output_variables: Mapping[str, str] | None = None,
        revision: Mapping[str, Any] | None = None,
        next_for: Taker | None = None,
    ) -> JobRecord | None:
        return self._result(
            job_id,
            next_for,
            succeeded=True,
            summary=summary,
            externalId=external_id,
            outputVariables=dict(output_variables or {}),
            revision=dict(revision) if revision else None,
        )

    def fail(
        self,
        job_id: str,
        *,
        failure_type: str,
        message: str,
        external_id: str | None = None,
        next_for: Taker | None = None,
    ) -> JobRecord | None:
        return self._result(
            job_id,
            next_for,
            succeeded=False,
            failureType=failure_type,
            message=message,
            externalId=external_id,
        )

    def _result(self, job_id: str, next_for: Taker | None, **result: Any) -> JobRecord | None:
        """Deliver a result with the action's log, trying again while the server is away."""
        job, owner = self._owner(job_id)
        with self._lock:
            self._reporting.add(job_id)
        log_file = self._logs / f"{job.data['pipelineContext']['action']['actionExecutionId']}.log"
        try:
            text = log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        body = {"jobId": job_id, "owner": owner, "log": text, **result}
        if next_for is not None:
            body |= {
                "next": True,
                "types": [str(t) for t in next_for.types],
                "labels": sorted(next_for.labels),
            }
        give_up, pause = time.monotonic() + RESULT_PATIENCE, 0.5
        while True:
            try:
                answer = self._call("result", body)
                break
            except Refused as refused:
                if not refused.transient:  # the job is no longer this worker's
                    self._forget(job_id)
                raise  # a transient refusal: the pool tries again, the job still held
            except OSError as error:
                if time.monotonic() > give_up:
                    self._forget(job_id)
                    raise
                log.warning("job %s: cannot deliver its result (%s); retrying", job_id, error)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
        self._forget(job_id)
        log_file.unlink(missing_ok=True)
        return self._keep(answer.get("job"), owner)


class Idle:
    """The pool's wake-ups for a remote worker: the long poll itself waits for jobs, and
    `watch` tells of the jobs the server cancelled."""

    generation = 0

    def __init__(self) -> None:
        self._listeners: list[Callable[[str], None]] = []

    def wait_for_jobs(self, seen: int, timeout: float) -> int:
        return seen

    def jobs_queued(self, count: int | None = None) -> None:
        return None

    def on_cancel(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def cancelled(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            for listener in self._listeners:
                listener(job_id)


def watch(jobs: RemoteJobs, idle: Idle, prefix: str, stop: threading.Event) -> None:
    """Until ``stop``, keep a ``watch`` call waiting on the server, and stop the actions of
    the jobs it says were cancelled (a job it misses is seen at its next renewal). A server
    without the call is left to the renewals."""
    pause = 0.5
    while not stop.is_set():
        try:
            ended = jobs.watch(prefix)
        except Refused as refused:
            if not refused.transient:
                log.warning("the server tells of no cancellations (%s): renewals will", refused)
                return
            ended, pause = [], min(pause * 2, 10.0)
            stop.wait(pause)
        except OSError:  # the server away: the polls say so
            ended, pause = [], min(pause * 2, 10.0)
            stop.wait(pause)
        else:
            pause = 0.5
        idle.cancelled(ended)


def choose(
    built: Mapping[ActionTypeId, Provider], wanted: Sequence[str]
) -> dict[ActionTypeId, Provider]:
    """The providers named in ``wanted`` (provider names such as ``Commands``, or type ids
    such as ``AWS/Build/CodeBuild/1``); all of them when it is empty."""
    if not wanted:
        return dict(built)
    chosen: dict[ActionTypeId, Provider] = {}
    for name in wanted:
        found = {t: p for t, p in built.items() if name in (t.provider, str(t))}
        if not found:
            known = ", ".join(sorted(str(t) for t in built))
            raise SettingsError(
                f"--providers: this worker has no provider {name!r} (it has: {known})"
            )
        chosen |= found
    return chosen


def serve(
    settings: Settings,
    endpoint: str,
    concurrency: int,
    wanted: Sequence[str],
    key: Key | None = None,
    labels: frozenset[str] = frozenset(),
) -> None:
    """Run jobs for ``endpoint`` until SIGTERM or SIGINT: the first drains (the jobs held
    finish and report, nothing new is taken), a second stops the actions, which fail.
    ``key`` signs the calls (a server with auth required wants them signed); ``labels``: the
    worker's labels, for the actions that require some (``ConveyorLabels``)."""
    if concurrency < 1:
        raise SettingsError(f"--concurrency: at least 1, not {concurrency}")
    home_lock = lock_home(settings.home, f"conveyor worker for {endpoint}")
    try:
        chosen = choose(providers(provider_config(replace(settings, public_url=endpoint))), wanted)
        leftovers.clean(settings.home / "work")
        jobs = RemoteJobs(endpoint, settings.home / "logs", key=key, region=settings.region)
        try:
            owner = f"{node_id(settings.home)}/{uuid.uuid4().hex[:8]}"
            idle = Idle()
            pool = WorkerPool(
                jobs,
                idle,
                artifact_store(settings, endpoint, jobs),
                chosen,
                settings.home,
                size=concurrency,
                owner=owner,
                labels=labels,
            )
            stop = threading.Event()
            threading.Thread(
                target=watch,
                args=(jobs, idle, f"{owner}/", stop),
                name="conveyor-watch",
                daemon=True,
            ).start()
            try:
                _run(pool, jobs, owner, endpoint, chosen, labels)
            finally:
                stop.set()
        finally:
            jobs.close()
    finally:
        home_lock.release()


def _run(
    pool: WorkerPool,
    jobs: RemoteJobs,
    owner: str,
    endpoint: str,
    chosen: Mapping[ActionTypeId, Provider],
    labels: frozenset[str] = frozenset(),
) -> None:
    signals = threading.Semaphore(0)

    def asked(sig: int, frame: FrameType | None) -> None:
        signals.release()

    previous = {s: signal.signal(s, asked) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        pool.start()
        log.info(
            "conveyor worker polling %s for %s (%d at once; labels: %s)",
            endpoint,
            ", ".join(sorted(str(t) for t in chosen)),
            pool.size,
            ", ".join(sorted(labels)) or "none",
        )
        signals.acquire()
        log.info("stopping: finishing the %d actions held, taking nothing new", pool.running)
        drain = threading.Thread(target=pool.drain, name="conveyor-drain", daemon=True)
        drain.start()
        try:
            jobs.leave(f"{owner}/")
        except (ConveyorError, OSError) as error:  # the server away: the polls end in time
            log.warning("could not tell %s this worker leaves: %s", endpoint, error)
        while drain.is_alive():
            if signals.acquire(timeout=0.2):
                log.warning("stopping now: the actions still running are stopped and fail")
                pool.stop()
                break
        drain.join(15)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
