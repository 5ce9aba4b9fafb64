"""``GET /metrics``: the server's metrics in Prometheus' text format (prometheus-client).

Counts kept in memory as things happen (`conveyor.metrics`) are turned into metric families
when scraped; gauges are read from the store then (one short read transaction per scrape),
never on the engine's path. Each application has a registry of its own, so several servers
in one process do not mix their figures. prometheus-client is imported at the first scrape:
commands that never serve do not pay for it.

With authentication on, see `Guard.protect_metrics` for who may read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.api.guard import Guard
from conveyor.api.offload import Offloader
from conveyor.api.workerjobs import REMOTE
from conveyor.metrics import Histogram, Recorder
from conveyor.store import Store

# Busy in-process workers and how many there are, as the engine counts them.
Workers = Callable[[], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Metered:
    """What an application counts with, and what /metrics reads."""

    recorder: Recorder
    workers: Workers
    # With authentication on: the bearer token a scraper may send.
    token: str | None = None


def _bound(value: float) -> str:
    """A bucket's upper bound as Prometheus writes it ("0.5", "+Inf")."""
    return "+Inf" if value == float("inf") else repr(float(value))


def _histogram(family: Any, histogram: Histogram) -> Any:
    for series in histogram.series():
        buckets = [(_bound(bound), count) for bound, count in series.buckets]
        family.add_metric(list(series.labels), buckets, series.total)
    return family


class Collector:
    """What one scrape reports: the recorder's counts, and gauges read from the store."""

    def __init__(self, store: Store, recorder: Recorder, workers: Workers) -> None:
        self._store = store
        self._recorder = recorder
        self._workers = workers

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self._store.read() as tx:
            executions = tx.executions.counts()
            queued = tx.jobs.count_queued_any()
            deliveries = tx.deliveries.counts()
            remote_busy = tx.jobs.holders(REMOTE)
        recorder = self._recorder
        family = GaugeMetricFamily(
            "conveyor_pipeline_executions",
            "Executions of each pipeline in each status.",
            labels=["pipeline", "status"],
        )
        for pipeline, status, count in executions:
            family.add_metric([pipeline, status], count)
        yield family
        yield _histogram(
            HistogramMetricFamily(
                "conveyor_action_duration_seconds",
                "How long actions ran, by provider and how they ended (as this server saw).",
                labels=["provider", "state"],
            ),
            recorder.action_duration,
        )
        yield GaugeMetricFamily("conveyor_jobs_queued", "Jobs waiting for a worker.", queued)
        busy, size = self._workers()
        workers = GaugeMetricFamily(
            "conveyor_workers", "This server's in-process workers.", labels=["state"]
        )
        workers.add_metric(["busy"], busy)
        workers.add_metric(["idle"], max(size - busy, 0))
        yield workers
        remote = GaugeMetricFamily(
            "conveyor_remote_workers",
            "Remote workers (each of a `conveyor worker`'s): busy, those holding a job (read"
            " from the database: the same on every server of it); idle, those whose poll"
            " waits at this server.",
            labels=["state"],
        )
        remote.add_metric(["busy"], remote_busy)
        remote.add_metric(["idle"], recorder.polls_waiting())
        yield remote
        yield _histogram(
            HistogramMetricFamily(
                "conveyor_trigger_detection_lag_seconds",
                "From the change detection's look that found a change (a watched folder's"
                " notice, or the poll before the one that saw it) to the execution started.",
            ),
            recorder.detection_lag,
        )
        backlog = GaugeMetricFamily(
            "conveyor_notification_deliveries",
            "Notifications and commit statuses not delivered, by status: PENDING is the"
            " backlog (kept, and held in the deliverer's memory), FAILED those given up on"
            " (a delivered one is not kept: see the delivery lag's count).",
            labels=["status"],
        )
        backlog.add_metric(["PENDING"], deliveries.get("PENDING", 0) + recorder.deliveries_held)
        backlog.add_metric(["FAILED"], deliveries.get("FAILED", 0))
        yield backlog
        failures = CounterMetricFamily(
            "conveyor_notification_delivery_failures",
            "Delivery attempts that failed (each is retried until its retry time is over).",
            labels=["kind"],
        )
        for (kind,), value in recorder.delivery_failures.values().items():
            failures.add_metric([kind], value)
        yield failures
        yield _histogram(
            HistogramMetricFamily(
                "conveyor_notification_delivery_lag_seconds",
                "From a notification's making to its delivery.",
                labels=["kind"],
            ),
            recorder.delivery_lag,
        )
        requests = CounterMetricFamily(
            "conveyor_api_requests",
            "API requests by service, operation and error code ('none' when it succeeded).",
            labels=["service", "operation", "error_code"],
        )
        for labels, value in recorder.api_requests.values().items():
            requests.add_metric(list(labels), value)
        yield requests
        yield _histogram(
            HistogramMetricFamily(
                "conveyor_api_request_duration_seconds",
                "How long API requests took in the server, by service and operation.",
                labels=["service", "operation"],
            ),
            recorder.api_latency,
        )


class Exposition:
    """A registry of its own, made at the first scrape."""

    def __init__(self, collector: Collector) -> None:
        self._collector = collector
        self._registry: Any = None

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self._registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(self._collector)
            self._registry = registry
        return generate_latest(self._registry), CONTENT_TYPE_LATEST


def metrics_route(
    store: Store,
    recorder: Recorder,
    workers: Workers,
    guard: Guard,
    offload: Offloader,
    token: str | None = None,
) -> Route:
    exposition = Exposition(Collector(store, recorder, workers))

    async def metrics(_: Request) -> Response:
        body, content_type = await offload(exposition.render)
        return Response(body, media_type=content_type)

    return Route("/metrics", guard.protect_metrics(metrics, offload, token), methods=["GET"])
