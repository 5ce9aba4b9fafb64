"""The console's pages, one function each: read through the engine's services and views,
off the event loop, and render. An error the API would answer becomes a page saying it.
Each answer says in ``Server-Timing`` how long the server took, as the API's do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from conveyor.console import present
from conveyor.console.ansi import to_html
from conveyor.console.models import (
    can_roll_back,
    execution_model,
    pipeline_model,
    rollback_targets,
)
from conveyor.console.render import Renderer
from conveyor.console.signin import Gate, caller_of
from conveyor.domain.errors import (
    ActionExecutionNotFoundException,
    ConveyorError,
    InternalFailure,
    PipelineNotFoundException,
    ValidationException,
)
from conveyor.engine.services import Services
from conveyor.engine.views import StateView
from conveyor.store import ActionRecord, ExecutionRecord, PipelineRecord, Tx

log = logging.getLogger("conveyor.console")
PAGE = 25
SCAN = 1000  # rows read at most to fill a page filtered by status or name
LOG_LIMIT = 2 * 1024 * 1024  # bytes of a log shown on its page (its end); the rest: download
TARGETS = 25  # newest executions read to find the ones a stage can be rolled back to
STATUSES = ("InProgress", "Stopping", "Stopped", "Succeeded", "Failed", "Superseded", "Cancelled")
Endpoint = Callable[[Request], Awaitable[Response]]
R = TypeVar("R")
P = TypeVar("P")


def filled(
    fetch: Callable[[P | None], tuple[list[R], P | None]],
    position: P | None,
    *,
    keep: Callable[[R], bool],
    cursor: Callable[[R], P],
    past: Callable[[R], bool] = lambda _: False,
) -> tuple[list[R], P | None]:
    """Up to `PAGE` rows that ``keep`` accepts, read page by page from ``position`` (at most
    `SCAN` rows), and where the next page starts (None: no more). ``past`` says a row lies
    beyond every row ``keep`` could accept."""
    rows: list[R] = []
    scanned = 0
    while scanned < SCAN:
        page, following = fetch(position)
        scanned += len(page)
        for row in page:
            if past(row):
                return rows, None
            if keep(row):
                rows.append(row)
                if len(rows) == PAGE:
                    more = row is not page[-1] or following is not None
                    return rows, cursor(row) if more else None
        if following is None:
            return rows, None
        position = following
    return rows, position


def _number(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise ValidationException(f"The query parameter '{name}' must be a whole number.")
    return int(value)


class Pages:
    def __init__(
        self, services: Services, renderer: Renderer, logs: Path | None, gate: Gate | None = None
    ) -> None:
        self.services = services
        self.renderer = renderer
        self.logs = logs
        self.gate = gate

    def endpoint(self, build: Callable[[Request], tuple[str, dict[str, Any]]]) -> Endpoint:
        """An endpoint that runs ``build`` in a thread and renders the template it names."""

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                template, values = await run_in_threadpool(self.read, build, request)
            except ConveyorError as error:
                response = self.renderer.failure(request, error)
            except Exception:
                response = self.renderer.failure(request, internal_failure(request))
            else:
                response = self.renderer.page(request, template, values)
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.3f}"
            return response

        return endpoint

    def read(
        self, build: Callable[[Request], tuple[str, dict[str, Any]]], request: Request
    ) -> tuple[str, dict[str, Any]]:
        """``build``'s page, with the newest event before it read: the page's event stream
        starts there, so a change made while the page loads still reaches it."""
        with self.services.store.read() as tx:
            since = tx.events.last_seq()
        template, values = build(request)
        return template, {**values, "since": since}

    # -- pipelines ----------------------------------------------------------------------------

    def pipelines(self, request: Request) -> tuple[str, dict[str, Any]]:
        """Pipelines by name, a page at a time, optionally those whose name starts with ``q``."""
        prefix = request.query_params.get("q", "").strip()
        after = request.query_params.get("after") or (prefix[:-1] or None)
        caller, scope, gate = caller_of(request), self.services.scope, self.gate
        records, following = filled(
            lambda position: self.services.pipelines.page(position, PAGE),
            after,
            # As ListPipelines: only the pipelines the user may GetPipeline.
            keep=lambda r: (
                r.name.startswith(prefix)
                and (gate is None or gate.permits(caller, "GetPipeline", scope.pipeline(r.name)))
            ),
            cursor=lambda r: r.name,
            past=lambda r: bool(prefix) and r.name > prefix and not r.name.startswith(prefix),
        )
        return "pipelines.html", {
            "title": "Pipelines",
            "rows": self._latest(records),
            "q": prefix,
            "following": following,
            "revisions": present_revisions,
        }

    def _latest(self, records: list[PipelineRecord]) -> list[dict[str, Any]]:
        """Each pipeline with its latest execution and that execution's stage statuses (in
        the stage order of the version it runs), all in one read."""
        rows = []
        with self.services.store.read() as tx:
            for record in records:
                found = tx.executions.page(record.id, None, 1, None)
                latest = found[0] if found else None
                version = latest.version if latest else record.version
                declared = tx.pipelines.declaration(record.id, version) or {}
                names = [s["name"] for s in declared.get("stages", [])]
                statuses = {}
                rollback = None
                if latest is not None:
                    pairs = [(latest.id, n) for n in names]
                    statuses = {s.stage: s.status for s in tx.executions.stages_at(pairs)}
                    rollback = self._targets_in(tx, [latest]).get(latest.id)
                rows.append(
                    {
                        "record": record,
                        "latest": latest,
                        "stages": [(n, statuses.get(n)) for n in names],
                        "rollback": rollback,
                    }
                )
        return rows

    @staticmethod
    def _targets_in(tx: Tx, records: list[ExecutionRecord]) -> dict[str, tuple[str, str]]:
        """The (stage, target execution) of each rollback execution among ``records``."""
        found = {}
        for record in records:
            if record.execution_type == "ROLLBACK":
                rollback = tx.stage_runs.rollback(record.id)
                if rollback is not None:
                    found[record.id] = (rollback.stage, rollback.target_id)
        return found

    def pipeline(self, request: Request) -> tuple[str, dict[str, Any]]:
        name = request.path_params["name"]
        state = self.services.views.state(name)
        view = self.services.pipelines.get(name, state.pipeline.version)
        rolled_back_to, targets = self._rollbacks(state)
        model = pipeline_model(state, view.declaration, time.time(), rolled_back_to, targets)
        return "pipeline.html", {
            "title": name,
            "pipeline": model,
            "revisions": present_revisions,
        }

    def _rollbacks(
        self, state: StateView
    ) -> tuple[dict[str, str], dict[str, list[ExecutionRecord]]]:
        """By stage: the target of the rollback that is its latest execution, and the
        executions it can be rolled back to (for the stages that can be): those of the
        pipeline's `TARGETS` newest executions that succeeded in it. Three statements at
        most, however many stages."""
        rolled_back_to: dict[str, str] = {}
        pipeline = state.pipeline
        stages = [s.name for s in state.stages if can_roll_back(state, s.index)]
        with self.services.store.read() as tx:
            for stage in state.stages:
                if stage.latest_rollback and stage.latest is not None:
                    rollback = tx.stage_runs.rollback(stage.latest.execution_id)
                    if rollback is not None:
                        rolled_back_to[stage.name] = rollback.target_id
            if not stages:
                return rolled_back_to, {}
            recent = tx.executions.page(pipeline.id, None, TARGETS, None)
            candidates = rollback_targets(recent, pipeline.version)
            pairs = [(r.id, stage) for r in candidates for stage in stages]
            succeeded = {
                (s.execution_id, s.stage)
                for s in tx.executions.stages_at(pairs)
                if s.status == "Succeeded"
            }
        targets = {stage: [r for r in candidates if (r.id, stage) in succeeded] for stage in stages}
        return rolled_back_to, targets

    # -- executions ---------------------------------------------------------------------------

    def history(self, request: Request) -> tuple[str, dict[str, Any]]:
        name = request.path_params["name"]
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            raise ValidationException(
                f"The status filter '{status}' is not one of {', '.join(STATUSES)}."
            )
        rows, following = filled(
            lambda position: self.services.views.executions(name, position, PAGE, None),
            _number(request, "before"),
            keep=lambda r: status is None or r.status == status,
            cursor=lambda r: r.seq,
        )
        with self.services.store.read() as tx:
            rollbacks = self._targets_in(tx, rows)
        return "history.html", {
            "rollbacks": rollbacks,
            "title": f"{name}: executions",
            "name": name,
            "rows": rows,
            "status": status,
            "statuses": STATUSES,
            "following": following,
            "revisions": present_revisions,
        }

    def execution(self, request: Request) -> tuple[str, dict[str, Any]]:
        name = request.path_params["name"]
        execution_id = request.path_params["execution_id"]
        _, record = self.services.views.execution(name, execution_id)
        _, attempts, _ = self.services.views.action_executions(
            name, execution_id, False, None, 10000
        )
        declaration = self.services.pipelines.get(name, record.version).declaration
        with self.services.store.read() as tx:
            claimed = tx.jobs.claimed_at([a.id for a in attempts])
            rollback = self._targets_in(tx, [record]).get(record.id)
        model = execution_model(record, attempts, declaration, time.time(), claimed, rollback)
        return "execution.html", {"title": f"{name}: {execution_id}", "name": name, "run": model}

    # -- logs ---------------------------------------------------------------------------------

    def log(self, request: Request) -> tuple[str, dict[str, Any]]:
        name = request.path_params["name"]
        action_execution_id = request.path_params["action_execution_id"]
        record = self._action(name, action_execution_id)
        text = ""
        size = 0
        left_out = 0
        if self.logs is not None:
            path = self.logs / f"{record.id}.log"
            if path.exists():
                with open(path, "rb") as log:
                    size = log.seek(0, 2)
                    left_out = max(0, size - LOG_LIMIT)
                    log.seek(left_out)
                    data = log.read(size - left_out)
                if left_out:  # start at a whole line
                    data = data[data.find(b"\n") + 1 :]
                text = to_html(data.decode("utf-8", "replace"))
        return "log.html", {
            "title": f"{name}: {record.stage}/{record.action} log",
            "name": name,
            "action": record,
            "log": text,
            "size": size,
            "left_out": left_out,
            "downloadable": self.logs is not None,
        }

    def _action(self, name: str, action_execution_id: str) -> ActionRecord:
        with self.services.store.read() as tx:
            pipeline = tx.pipelines.get(name)
            record = tx.actions.get(action_execution_id)
        if pipeline is None:
            raise PipelineNotFoundException(f"Pipeline '{name}' does not exist.")
        if record is None or record.pipeline_id != pipeline.id:
            raise ActionExecutionNotFoundException(
                f"Pipeline '{name}' has no action execution '{action_execution_id}'."
            )
        return record

    # -- definitions and action types ---------------------------------------------------------

    def definition(self, request: Request) -> tuple[str, dict[str, Any]]:
        name = request.path_params["name"]
        latest = self.services.pipelines.get(name)
        newest = int(latest.declaration.get("version") or 1)
        version = _number(request, "version") or newest
        shown = self.services.pipelines.get(name, version)
        form = request.query_params.get("format", "yaml")
        if form not in ("yaml", "json"):
            raise ValidationException("The query parameter 'format' must be yaml or json.")
        text = (present.as_json if form == "json" else present.as_yaml)(shown.declaration)
        compare = _number(request, "compare")
        lines = None
        if compare is not None:
            other = self.services.pipelines.get(name, compare).declaration
            lines = present.diff(
                present.as_yaml(other),
                present.as_yaml(shown.declaration),
                f"version {compare}",
                f"version {version}",
            )
        return "definition.html", {
            "title": f"{name}: definition",
            "name": name,
            "version": version,
            "versions": list(range(newest, 0, -1)),
            "format": form,
            "text": text,
            "compare": compare,
            "diff": lines,
            "view": shown,
        }

    def action_types(self, request: Request) -> tuple[str, dict[str, Any]]:
        types = self.services.action_types.all()
        return "action_types.html", {"title": "Action types", "types": types}


def internal_failure(request: Request) -> InternalFailure:
    """Log what went wrong with its traceback; the page only says that something did."""
    log.exception("console: %s %s failed", request.method, request.url.path)
    return InternalFailure("The server hit an unexpected error; see its log.")


def present_revisions(record: ExecutionRecord) -> list[tuple[str, str, str | None]]:
    """(artifact, short revision id, summary) of each source revision of an execution."""
    return [
        (name, str(entry["revisionId"])[:12], entry.get("revisionSummary"))
        for name, entry in record.artifacts.items()
        if entry.get("revisionId")
    ]
