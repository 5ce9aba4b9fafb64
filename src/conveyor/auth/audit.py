"""The audit trail: a CloudTrail record of every API call, allowed or refused.

A call's record is queued in memory and written with others in one transaction a moment
later (at most `FLUSH_SECONDS`), so a request pays for a queue append, not a commit; a lookup
writes what is queued first, so it always sees the calls before it. Secrets in parameters are
replaced with CloudTrail's own placeholder. A call's event id is made from its request id
(`event_id_for`), so the store keeps one of the two. Records older than the retention are
pruned in the background, a batch per transaction (see `conveyor.store.retention`); of several
servers on one PostgreSQL database, only the holder of the audit lock (`LOCK`, a
`conveyor.store.Leadership`) prunes, and another takes the duty at its next pass once the
holder is gone.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from conveyor.domain.ids import unique_id
from conveyor.store import AuditRecord, DuplicateKey, Leadership, Store
from conveyor.store.audit import event_id_for
from conveyor.store.retention import prune_audit

log = logging.getLogger("conveyor.audit")
FLUSH_SECONDS = 0.2
PRUNE_SECONDS = 3600.0
# The advisory lock whose holder prunes, of the servers sharing a database.
LOCK = "audit_lock_key"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
TRUNCATED = "(nested too deeply to record)"
MAX_DEPTH = 32
_SECRET_KEY = re.compile(r"(secret|token|password|credential)", re.IGNORECASE)
# Parameters whose name says token but which are not secrets.
_NOT_SECRET = frozenset({"nextToken", "NextToken", "clientRequestToken", "clientToken"})
# Job operations hand out artifact credentials and secret configuration: never recorded.
_UNRECORDED_RESPONSES = frozenset(
    {"PollForJobs", "GetJobDetails", "PollForThirdPartyJobs", "GetThirdPartyJobDetails"}
)


def mask(value: Any, depth: int = 0) -> Any:
    """``value`` with every member whose name speaks of a secret hidden, and what is nested
    deeper than any valid input (`MAX_DEPTH`) cut off."""
    if depth > MAX_DEPTH and isinstance(value, Mapping | list):
        return TRUNCATED
    if isinstance(value, Mapping):
        return {
            k: HIDDEN if _SECRET_KEY.search(k) and k not in _NOT_SECRET else mask(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v, depth + 1) for v in value]
    return value


def _resource_type(arn: str) -> str:
    if arn.split(":", 3)[2:3] == ["codebuild"]:
        return "AWS::CodeBuild::Project"
    resource = arn.split(":", 5)[-1]
    if resource.startswith("webhook:"):
        return "AWS::CodePipeline::Webhook"
    if resource.startswith("actiontype:"):
        return "AWS::CodePipeline::CustomActionType"
    return "AWS::CodePipeline::Pipeline"


def _resource_name(arn: str) -> str:
    resource = arn.split(":", 5)[-1]
    if arn.split(":", 3)[2:3] == ["codebuild"]:
        return resource.removeprefix("project/")
    if resource.startswith(("webhook:", "actiontype:")):
        return resource.partition(":")[2]
    return resource.split("/", 1)[0]


def _renamed(record: AuditRecord) -> AuditRecord:
    """The record under a new random event id."""
    event_id = unique_id()
    event = json.loads(record.record)
    event["eventID"] = event_id
    return replace(record, event_id=event_id, record=json.dumps(event, separators=(",", ":")))


class AuditTrail:
    def __init__(
        self,
        store: Store,
        region: str,
        account: str,
        retention_days: float | None = 90.0,
        clock: Callable[[], float] = time.time,
        leadership: Leadership | None = None,
    ) -> None:
        """``leadership``: held while this process prunes (None: it always does)."""
        self._store = store
        self._leadership = leadership
        self._region = region
        self._account = account
        self._retention = None if retention_days is None else retention_days * 86400
        self._clock = clock
        self._queue: list[AuditRecord] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = 0.0

    def record(
        self,
        *,
        event_name: str,
        event_source: str,
        caller: Mapping[str, Any],
        source_ip: str,
        user_agent: str,
        request_id: str,
        read_only: bool,
        resource: str | None,
        params: Any,
        response: Any = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        """Queue the record of one call. ``caller``: the userIdentity element."""
        now = self._clock()
        event_id = event_id_for(request_id)
        arn = resource if resource and resource.startswith("arn:") else None
        event: dict[str, Any] = {
            "eventVersion": "1.08",
            "userIdentity": dict(caller),
            "eventTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": self._region,
            "sourceIPAddress": source_ip,
            "userAgent": user_agent,
            "requestParameters": mask(params) if params else None,
            "responseElements": None
            if read_only or error or event_name in _UNRECORDED_RESPONSES
            else mask(response or None),
            "requestID": request_id,
            "eventID": event_id,
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self._account,
            "eventCategory": "Management",
        }
        if error is not None:
            event["errorCode"], event["errorMessage"] = error
        if arn:
            event["resources"] = [{"ARN": arn, "accountId": self._account}]
        entry = AuditRecord(
            event_id=event_id,
            event_time=now,
            event_name=event_name,
            event_source=event_source,
            username=caller.get("userName"),
            access_key=caller.get("accessKeyId"),
            read_only=read_only,
            resource_type=_resource_type(arn) if arn else None,
            resource_name=_resource_name(arn) if arn else None,
            record=json.dumps(event, separators=(",", ":"), default=str),
        )
        with self._lock:
            self._queue.append(entry)
        self._wake.set()

    def flush(self) -> None:
        """Write what is queued, now; once a flush under way elsewhere has written its batch,
        so that what was queued before is in the store when this returns."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            self._append(batch)
        except DuplicateKey:
            # A request recorded twice would name one event id twice: give the batch fresh ids.
            batch = [_renamed(r) for r in batch]
            self._requeue_on_failure(batch)
        except Exception:
            with self._lock:
                self._queue[:0] = batch
            raise

    def _append(self, batch: list[AuditRecord]) -> None:
        with self._store.write() as tx:
            tx.audit.append(batch)

    def _requeue_on_failure(self, batch: list[AuditRecord]) -> None:
        try:
            self._append(batch)
        except Exception:
            with self._lock:
                self._queue[:0] = batch
            raise

    def lookup(
        self,
        equal: Mapping[str, Any],
        start: float | None,
        end: float | None,
        limit: int,
        before: tuple[float, str] | None = None,
    ) -> list[AuditRecord]:
        self.flush()
        with self._store.read() as tx:
            return tx.audit.lookup(equal, start, end, limit, before)

    def prune(self) -> int:
        """Remove the records past the retention, a batch per transaction; how many (none
        unless this process holds the pruning duty)."""
        if self._retention is None:
            return 0
        if self._leadership is not None and not self._leadership.hold():
            return 0
        self.flush()
        return prune_audit(self._store, self._clock() - self._retention)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="conveyor-audit", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._flush_logged()
        if self._leadership is not None:
            self._leadership.release()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(PRUNE_SECONDS)
            self._wake.clear()
            self._stopped.wait(FLUSH_SECONDS)
            self._flush_logged()
            if time.monotonic() - self._pruned > PRUNE_SECONDS:
                self._pruned = time.monotonic()
                try:
                    self.prune()
                except Exception:
                    log.exception("pruning the audit trail failed")

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:
            log.exception("writing the audit trail failed; the records are kept for next time")
