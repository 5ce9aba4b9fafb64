"""The job protocol: poll, acknowledge, renew, then report success or failure.

In-process workers and remote job workers go through these same calls. A poll hands out
queued jobs with a fresh nonce and a lease; a worker acknowledges with the nonce, renews the
lease while it works, and reports once. A success with a continuation token queues a new job
for the same action, which stays in progress; a result for a job that is no longer active
(abandoned, timed out, already reported) is an ``InvalidJobStateException``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.errors import (
    InvalidJobStateException,
    InvalidNonceException,
    JobNotFoundException,
    OutputVariablesSizeExceededException,
)
from conveyor.domain.execution import ActionResult, JobReported, RuleReported
from conveyor.domain.status import JOB_MOVES, JobStatus
from conveyor.domain.variables import MAX_OUTPUT_BYTES, output_size
from conveyor.engine.clock import Clock
from conveyor.engine.completion import key_of, report, rule_key
from conveyor.engine.executions import ExecutionService
from conveyor.engine.runner import Outcome, Runner
from conveyor.engine.writers import require_move
from conveyor.store import JobRecord, JobResultRows, RuleJobRows, Store, Tx
from conveyor.store.jobs import opened_job


class Taker(NamedTuple):
    """A worker that reports a result and takes its next job at once: the types it runs, its
    id, and its labels (`conveyor.domain.labels`)."""

    types: Sequence[ActionTypeId]
    owner: str
    labels: frozenset[str] = frozenset()


# A taker written as a plain (types, owner) pair has no labels.
Takes = Taker | tuple[Sequence[ActionTypeId], str]

# Seconds a worker holds a job without renewing; workers renew every third of it.
LEASE_SECONDS = 30.0


class JobService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        runner: Runner,
        executions: ExecutionService,
        lease: float = LEASE_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._runner = runner
        self._executions = executions
        self.lease = lease
        # Mints a job's artifactCredentials as it is handed out (`conveyor.auth.artifactkeys`,
        # set by whoever assembles the services): (job id, data, created) → credentials.
        self.credentials: Callable[[str, Mapping[str, Any], float], dict[str, str]] | None = None

    def poll(
        self,
        types: Sequence[ActionTypeId],
        *,
        owner: str,
        limit: int = 1,
        query_value: str | None = None,
        until_deadline: bool = False,
    ) -> list[JobRecord]:
        """Claim up to ``limit`` queued jobs of these types for ``owner``.

        ``until_deadline`` leases each job until its action's deadline instead of for a
        renewable while: remote job workers have no way to renew a lease.
        """
        with self._store.write() as tx:
            now = self._clock.now()
            claimed = []
            for job in tx.jobs.claimable(types, limit, query_value):
                deadline = (job.data.get("conveyor") or {}).get("deadline")
                lease_until = deadline if until_deadline and deadline else now + self.lease
                taken = _take(tx, job, JobStatus.DISPATCHED, owner, lease_until, now)
                if taken is not None:
                    claimed.append(taken)
        return [self.handed(job) for job in claimed]

    def claim(
        self, types: Sequence[ActionTypeId], *, owner: str, labels: frozenset[str] = frozenset()
    ) -> JobRecord | None:
        """Poll and acknowledge at once, for workers inside this process: one transaction
        instead of two, with the same outcome (the job is ``InProgress`` and leased). A
        worker with ``labels`` also takes the jobs that require some of them.

        On SQLite a read comes first: a worker that finds nothing never takes the write
        lock. PostgreSQL has no such lock, and a claim that finds nothing writes nothing: the
        read would only cost its round trips.
        """
        if self._store.dialect == "sqlite":
            with self._store.read() as tx:
                if not tx.jobs.claimable(types, 1, labels=labels):
                    return None
        with self._store.write() as tx:
            taken = self._take_next(tx, Taker(types, owner, labels))
        return None if taken is None else self.handed(taken)

    def get(self, job_id: str) -> JobRecord:
        """The job as stored: its secret configuration values sealed (see `handed`)."""
        with self._store.read() as tx:
            return _job(tx, job_id)

    def handed(self, job: JobRecord) -> JobRecord:
        """The job as its worker gets it, its secret configuration values opened and its
        artifactCredentials minted: only what is given to a worker goes through here."""
        box = self._store.box
        opened = job if box is None else opened_job(job, box.open)
        if self.credentials is None:
            return opened
        minted = self.credentials(opened.id, opened.data, opened.created)
        return replace(opened, data={**opened.data, "artifactCredentials": minted})

    def acknowledge(self, job_id: str, nonce: str) -> str:
        with self._store.write() as tx:
            job = _job(tx, job_id)
            if job.nonce != nonce:
                raise InvalidNonceException(
                    f"The nonce '{nonce}' is not the nonce of job {job_id}."
                )
            if job.status == JobStatus.DISPATCHED:
                require_move(JOB_MOVES, JobStatus.DISPATCHED, JobStatus.IN_PROGRESS)
                tx.jobs.update(
                    job_id,
                    JobStatus.DISPATCHED,
                    status=JobStatus.IN_PROGRESS,
                    updated=self._clock.now(),
                )
                return JobStatus.IN_PROGRESS
            return job.status

    def renew(self, job_id: str, owner: str) -> bool:
        """Extend the lease; False when the job is no longer this owner's to run."""
        with self._store.write() as tx:
            now = self._clock.now()
            return tx.jobs.renew(job_id, owner, now + self.lease, now)

    def succeed(
        self,
        job_id: str,
        *,
        summary: str | None = None,
        external_id: str | None = None,
        external_url: str | None = None,
        percent_complete: int | None = None,
        output_variables: Mapping[str, str] | None = None,
        revision: Mapping[str, Any] | None = None,
        continuation_token: str | None = None,
        next_for: Takes | None = None,
        held_by: str | None = None,
    ) -> JobRecord | None:
        """Report success. With ``next_for`` (types, owner) the reporting worker claims its
        next job in the same transaction: the job this result queued, typically. With
        ``held_by``, a job that worker does not hold is not found."""
        variables = dict(output_variables or {})
        if output_size(variables) > MAX_OUTPUT_BYTES:
            raise OutputVariablesSizeExceededException(
                f"The output variables of job {job_id} take {output_size(variables)} bytes; "
                f"the limit is {MAX_OUTPUT_BYTES}."
            )

        def work(tx: Tx) -> tuple[JobRecord | None, Outcome]:
            found = self._settle(tx, job_id, JobStatus.SUCCEEDED, held_by)
            if isinstance(found, RuleJobRows):
                passed = ActionResult(succeeded=True, summary=summary, external_id=external_id)
                return self._claim_next(tx, next_for, self._rule_result(tx, found, passed))
            job, action = found.job, found.action
            now = self._clock.now()
            if continuation_token:
                data = dict(job.data)
                data["continuationToken"] = continuation_token
                tx.jobs.insert(
                    replace(
                        job,
                        id=str(uuid.uuid4()),
                        status=JobStatus.QUEUED,
                        nonce=secrets.token_hex(8),
                        owner=None,
                        lease_until=None,
                        data=data,
                        created=now,
                        updated=now,
                    )
                )
                tx.actions.update(
                    action.id,
                    "InProgress",
                    summary=summary,
                    external_id=external_id,
                    percent_complete=percent_complete,
                    updated=now,
                )
                return self._claim_next(tx, next_for, Outcome(jobs_queued=1))
            result = ActionResult(
                succeeded=True,
                summary=summary,
                external_id=external_id,
                external_url=external_url,
                output_variables=variables,
                revision=dict(revision) if revision else None,
                percent_complete=percent_complete,
            )
            return self._claim_next(tx, next_for, self._action_result(tx, found, result))

        return self._executions.write(work)

    def fail(
        self,
        job_id: str,
        *,
        failure_type: str,
        message: str,
        external_id: str | None = None,
        external_url: str | None = None,
        next_for: Takes | None = None,
        held_by: str | None = None,
    ) -> JobRecord | None:
        """Report failure; ``next_for`` and ``held_by`` as for `succeed`."""

        def work(tx: Tx) -> tuple[JobRecord | None, Outcome]:
            found = self._settle(tx, job_id, JobStatus.FAILED, held_by)
            result = ActionResult(
                succeeded=False,
                external_id=external_id,
                external_url=external_url,
                error_code=failure_type,
                error_message=message,
            )
            if isinstance(found, RuleJobRows):
                return self._claim_next(tx, next_for, self._rule_result(tx, found, result))
            return self._claim_next(tx, next_for, self._action_result(tx, found, result))

        return self._executions.write(work)

    def _claim_next(
        self, tx: Tx, next_for: Takes | None, outcome: Outcome
    ) -> tuple[JobRecord | None, Outcome]:
        """Claim a job for the reporting worker in this transaction; one wake-up fewer."""
        if next_for is None:
            return None, outcome
        taker = next_for if isinstance(next_for, Taker) else Taker(*next_for)
        # The events go first, so that on PostgreSQL they travel with the claim.
        tx.events.flush()
        taken = self._take_next(tx, taker)
        if taken is not None:
            outcome.jobs_queued = max(0, outcome.jobs_queued - 1)
        return (None if taken is None else self.handed(taken)), outcome

    def _take_next(self, tx: Tx, taker: Taker) -> JobRecord | None:
        """The oldest queued job of the taker's types it may take, now in progress for it."""
        now = self._clock.now()
        nonce = secrets.token_hex(8)
        return tx.jobs.take_next(
            taker.types,
            JobStatus.IN_PROGRESS,
            nonce,
            taker.owner,
            now + self.lease,
            now,
            taker.labels,
        )

    def _action_result(self, tx: Tx, found: JobResultRows, result: ActionResult) -> Outcome:
        """An action's job reported: the decider moves its attempt on, from the snapshot's
        rows read with the job's."""
        event = JobReported(key_of(found.action), result)
        return report(tx, self._runner, found.pipeline, found.action, event, found.live)

    def _rule_result(self, tx: Tx, found: RuleJobRows, result: ActionResult) -> Outcome:
        """A rule's job reported: the decider moves its condition on."""
        event = RuleReported(rule_key(found.rule), result)
        return self._runner.advance(tx, found.pipeline, event, focus=found.rule.execution_id)

    def _settle(
        self, tx: Tx, job_id: str, status: JobStatus, held_by: str | None = None
    ) -> JobResultRows | RuleJobRows:
        """Lock the job's pipeline and move the job, still waiting for its result, to
        ``status``; the job, its attempt (an action's or a rule's) and its pipeline as they
        were. With ``held_by``: only a job of that owner's."""
        found: JobResultRows | RuleJobRows | None = tx.results.lock_for(job_id)
        if found is None:
            found = tx.rule_runs.lock_for(job_id)
        if found is None:
            raise JobNotFoundException(f"Job {job_id} does not exist.")
        if held_by is not None and found.job.owner != held_by:
            raise JobNotFoundException(f"Job {job_id} does not exist for worker {held_by}.")

        def missed() -> None:
            job = tx.jobs.get(job_id)
            state = job.status if job is not None else "gone"
            raise InvalidJobStateException(f"Job {job_id} is {state}; it no longer takes a result.")

        if found.job.status not in (JobStatus.DISPATCHED, JobStatus.IN_PROGRESS):
            missed()
        # A built-in job's data served its one run: nobody reads it once the job is done
        # (the job API serves only custom and third-party jobs), so it is not kept. The
        # update is guarded by the job being active, whatever the row read said: on
        # PostgreSQL that read may predate the lock.
        require_move(JOB_MOVES, JobStatus(found.job.status), status)
        trim = found.job.type_id.owner == "AWS"
        tx.jobs.finish(job_id, status, self._clock.now(), trim=trim, missed=missed)
        return found


def _take(
    tx: Tx, job: JobRecord, status: JobStatus, owner: str, lease_until: float, now: float
) -> JobRecord | None:
    """Move a queued job to ``status`` for ``owner`` with a fresh nonce and lease."""
    require_move(JOB_MOVES, JobStatus.QUEUED, status)
    nonce = secrets.token_hex(8)
    if not tx.jobs.update(
        job.id,
        JobStatus.QUEUED,
        status=status,
        nonce=nonce,
        owner=owner,
        lease_until=lease_until,
        updated=now,
        claimed=now,
    ):
        return None
    return replace(
        job, status=status, nonce=nonce, owner=owner, lease_until=lease_until, claimed=now
    )


def _job(tx: Tx, job_id: str) -> JobRecord:
    job = tx.jobs.get(job_id)
    if job is None:
        raise JobNotFoundException(f"Job {job_id} does not exist.")
    return job
