"""The event log: EventBridge-shaped state changes, in the order they were committed.

An event is stored without what its row already says or what follows from it: the envelope's
constant ``version`` and ``source``, its ``detail-type`` (a one-letter code in its column for
the three CodePipeline kinds) and ``time`` (a column), its one resource (the pipeline's ARN,
from the row's pipeline name, the account and the Region), the detail's ``pipeline`` and an
action's ``region`` when it is the event's. What is left is a JSON array (id, account, Region,
detail) in shorthand (`conveyor.store.shorthand`): the detail's members named by codes, the
event and execution ids in 22 characters, an action's type as one string and its artifacts as
lists with the key's usual folder left out. Reading puts it all back, in the order written.
An event that would not come back exactly is stored in the earlier, longer encoding (an
object) or whole, and events written in either read back as they were.

Events are read in the order of ``seq``, which only grows: retention removes the oldest
(`conveyor.store.retention`), never renumbers.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.domain.arn import Scope
from conveyor.domain.events import ACTION, PIPELINE, STAGE, envelope
from conveyor.store.rows import dumps, insert_many
from conveyor.store.shorthand import (
    coded,
    decoded,
    long_artifacts,
    long_uuid,
    short_artifacts,
    short_uuid,
)
from conveyor.store.tables import events

# Sequence numbers per DELETE … IN (…): SQLite's limit on bound parameters is far above it.
_IN_LIST = 500


@dataclass(frozen=True, slots=True)
class EventRecord:
    seq: int
    pipeline_name: str
    time: float
    detail_type: str
    body: dict[str, Any]


class Events:
    """Events are kept until the transaction is about to commit, then written in one insert."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._pending: list[dict[str, Any]] = []
        # Every event of this transaction as (detail-type, body), for `Store.on_events`.
        self.appended: list[tuple[str, dict[str, Any]]] = []

    def append(
        self, pipeline_name: str, time: float, detail_type: str, body: dict[str, Any]
    ) -> None:
        self.appended.append((detail_type, body))
        self._pending.append(
            {
                "pipeline_name": pipeline_name,
                "time": time,
                "detail_type": _KIND_CODES.get(detail_type, detail_type),
                "body": dumps(compact(pipeline_name, time, detail_type, body)),
            }
        )

    def flush(self) -> None:
        if self._pending:
            insert_many(self._conn, events, self._pending)
            self._pending = []

    def prune(
        self, before: float, after: int = 0, limit: int | None = None
    ) -> tuple[int, int | None]:
        """Remove the events older than ``before``: all of them, or (with ``limit``) those
        among the next ``limit`` after sequence number ``after``, oldest first. How many, and
        where the next batch starts (None when no event is left after these)."""
        self.flush()
        if limit is None:
            removed = self._conn.execute(sa.delete(events).where(events.c.time < before))
            return int(removed.rowcount), None
        head = sa.select(events.c.seq, events.c.time).where(events.c.seq > after)
        seen = self._conn.execute(head.order_by(events.c.seq).limit(limit)).all()
        old = [seq for seq, time in seen if time < before]
        for start in range(0, len(old), _IN_LIST):
            chunk = old[start : start + _IN_LIST]
            self._conn.execute(sa.delete(events).where(events.c.seq.in_(chunk)))
        return len(old), seen[-1][0] if len(seen) == limit else None

    def last_seq(self) -> int:
        """The sequence number of the newest event (0 when there is none)."""
        self.flush()
        return int(self._conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0)

    def after(
        self, seq: int, limit: int = 1000, pipeline_name: str | None = None
    ) -> list[EventRecord]:
        self.flush()
        query = sa.select(events).where(events.c.seq > seq)
        if pipeline_name is not None:
            query = query.where(events.c.pipeline_name == pipeline_name)
        return self._records(query.order_by(events.c.seq).limit(limit))

    def after_reading(
        self,
        seq: int,
        limit: int,
        *,
        pipelines: Collection[str] = (),
        kinds: Collection[str] = (),
        containing: Collection[str] = (),
    ) -> list[EventRecord]:
        """The events after ``seq``, as `after` reads them, with the body read only of the
        events of ``pipelines``, of the detail-types ``kinds``, and of those whose stored
        form holds one of the strings ``containing`` (every event that names one does);
        the others come with an empty body, neither sent nor decoded."""
        self.flush()
        wanted: list[Any] = []
        if pipelines:
            wanted.append(events.c.pipeline_name.in_(sorted(pipelines)))
        if kinds:
            wanted.append(events.c.detail_type.in_(sorted(_KIND_CODES.get(k, k) for k in kinds)))
        wanted.extend(events.c.body.contains(text, autoescape=True) for text in containing)
        body = sa.case((sa.or_(*wanted), events.c.body), else_=sa.null()) if wanted else sa.null()
        query = sa.select(
            events.c.seq,
            events.c.pipeline_name,
            events.c.time,
            events.c.detail_type,
            body.label("body"),
        )
        query = query.where(events.c.seq > seq).order_by(events.c.seq).limit(limit)
        return self._records(query)

    def _records(self, query: sa.Select[Any]) -> list[EventRecord]:
        found = []
        for row in self._conn.execute(query):
            kind = _KINDS.get(row.detail_type, row.detail_type)
            body = (
                {}
                if row.body is None
                else whole(row.pipeline_name, row.time, kind, json.loads(row.body))
            )
            found.append(EventRecord(row.seq, row.pipeline_name, row.time, kind, body))
        return found


# The detail-types of CodePipeline's events, stored as one letter.
_KIND_CODES = {PIPELINE: "P", STAGE: "S", ACTION: "A"}
_KINDS = {code: kind for kind, code in _KIND_CODES.items()}
# The detail's members (and those of its objects), stored under these codes.
_CODES = {
    "execution-id": "e",
    "stage": "s",
    "action": "a",
    "state": "t",
    "type": "y",
    "version": "v",
    "region": "r",
    "input-artifacts": "i",
    "output-artifacts": "o",
    "execution-result": "x",
    "external-execution-id": "xi",
    "external-execution-summary": "xs",
    "external-execution-url": "xu",
    "error-code": "ec",
    "execution-trigger": "et",
    "trigger-type": "tt",
    "trigger-detail": "td",
    "stop-execution-comments": "sc",
    "name": "n",
    "s3location": "l",
    "bucket": "b",
    "key": "k",
}
_NAMES = {code: name for name, code in _CODES.items()}
_ARTIFACTS = ("input-artifacts", "output-artifacts")


def _shorthand(pipeline_name: str, short: dict[str, Any]) -> dict[str, Any]:
    """A detail as `_short_detail` gives it, in shorthand."""
    out: dict[str, Any] = {}
    for key, value in short.items():
        code = _CODES.get(key, key)
        if key == "execution-id":
            out[code] = short_uuid(value)
        elif key in _ARTIFACTS and (kept := short_artifacts(value, pipeline_name)) is not value:
            out[code] = kept
        elif isinstance(value, dict | list):
            out[code] = coded(value, _CODES)
        else:
            out[code] = value
    return out


def _longhand(pipeline_name: str, out: dict[str, Any]) -> dict[str, Any]:
    """The reverse of `_shorthand`."""
    short: dict[str, Any] = {}
    for code, value in out.items():
        key = _NAMES.get(code, code)
        if key == "execution-id":
            short[key] = long_uuid(value)
        elif key in _ARTIFACTS and (given := long_artifacts(value, pipeline_name)) is not value:
            short[key] = given
        elif isinstance(value, dict | list):
            short[key] = decoded(value, _NAMES)
        else:
            short[key] = value
    return short


# An action's type, stored as one string "owner/category/provider/version".
_TYPE_PARTS = ("owner", "category", "provider", "version")


def _short_detail(detail: dict[str, Any], region: Any) -> dict[str, Any]:
    """The detail without its pipeline, with an action's type as one string and without
    the action's Region when it is the event's."""
    short: dict[str, Any] = {}
    for key, value in detail.items():
        if key == "pipeline" or (key == "region" and value == region and "type" in detail):
            continue
        if key == "type" and isinstance(value, dict) and tuple(value) == _TYPE_PARTS:
            short[key] = "/".join(str(part) for part in value.values())
        else:
            short[key] = value
    return short


def _full_detail(pipeline_name: str, region: Any, short: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {"pipeline": pipeline_name}
    for key, value in short.items():
        if key == "type":
            if "region" not in short:
                detail["region"] = region
            if isinstance(value, str):
                detail[key] = dict(zip(_TYPE_PARTS, value.split("/"), strict=True))
                continue
        detail[key] = value
    return detail


def _rebuilt(
    pipeline_name: str, time: float, detail_type: str, stored: dict[str, Any]
) -> dict[str, Any]:
    account, region = stored["account"], stored["region"]
    resources = stored.get("resources") or [Scope(region, account).pipeline(pipeline_name)]
    detail = _full_detail(pipeline_name, region, stored["detail"])
    return envelope(stored["id"], detail_type, time, account, region, resources, detail)


def compact(
    pipeline_name: str, time: float, detail_type: str, body: dict[str, Any]
) -> dict[str, Any] | list[Any]:
    """What is stored of an event: the parts that cannot be derived, when the rest can."""
    detail = body.get("detail")
    if isinstance(detail, dict) and detail.get("pipeline") == pipeline_name:
        try:
            region = body.get("region")
            short = _shorthand(pipeline_name, _short_detail(detail, region))
            stored = [short_uuid(body.get("id")), body.get("account"), region, short]
            if whole(pipeline_name, time, detail_type, stored) == body:
                return stored
            stored.append(body.get("resources"))
            if whole(pipeline_name, time, detail_type, stored) == body:
                return stored
        except (TypeError, ValueError, AttributeError, KeyError):
            pass
    return _longer(pipeline_name, time, detail_type, body)


def _longer(
    pipeline_name: str, time: float, detail_type: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The event in the earlier encoding (an object), or whole."""
    detail = body.get("detail")
    if not isinstance(detail, dict) or detail.get("pipeline") != pipeline_name:
        return body
    stored = {
        "id": body.get("id"),
        "account": body.get("account"),
        "region": body.get("region"),
        "detail": _short_detail(detail, body.get("region")),
    }
    try:
        if _rebuilt(pipeline_name, time, detail_type, stored) == body:
            return stored
    except (TypeError, ValueError, AttributeError):
        pass
    stored["resources"] = body.get("resources")
    try:
        if _rebuilt(pipeline_name, time, detail_type, stored) == body:
            return stored
    except (TypeError, ValueError, AttributeError):
        pass
    return body


def whole(pipeline_name: str, time: float, detail_type: str, stored: Any) -> dict[str, Any]:
    """The event as it was appended, from what `compact` stored."""
    if isinstance(stored, list):
        event_id, account, region, short, *resources = stored
        longer = {
            "id": long_uuid(event_id),
            "account": account,
            "region": region,
            "detail": _longhand(pipeline_name, short),
        }
        if resources:
            longer["resources"] = resources[0]
        return _rebuilt(pipeline_name, time, detail_type, longer)
    if "source" in stored or "account" not in stored or "detail" not in stored:
        return dict(stored)
    return _rebuilt(pipeline_name, time, detail_type, stored)
