"""What a server counts for ``/metrics``, in memory and cheaply: plain counters and
histograms behind one lock each, no Prometheus library on the way of a request or an action
(`conveyor.api.metrics` turns them into Prometheus' format when scraped, with the gauges it
reads from the store then).

Counted here: API requests by operation and error code with their latency, action durations
by provider (from the committed events: an action's start and end as this server saw them
commit), delivery failures and delivery lag, change detection's lag, and the remote workers'
polls waiting at this server (their idle workers).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

Labels = tuple[str, ...]
# Seconds: an API call, an action, a delivery or detection.
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ACTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Action starts waiting for their end, at most: the oldest are forgotten (their end was
# committed by another server, or never will be).
MAX_STARTED = 10_000
_ACTION = "CodePipeline Action Execution State Change"
_ENDS = frozenset({"SUCCEEDED", "FAILED", "ABANDONED", "CANCELED"})


@dataclass(frozen=True, slots=True)
class Series:
    """One histogram series as scraped: cumulative counts per upper bound, sum and count."""

    labels: Labels
    buckets: list[tuple[float, int]]
    total: float
    count: int


class Histogram:
    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._lock = threading.Lock()
        # labels → [count in each bucket (the last is +Inf)], sum
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, labels: Labels, value: float) -> None:
        index = bisect_left(self.bounds, value)
        with self._lock:
            counts = self._counts.get(labels)
            if counts is None:
                counts = self._counts[labels] = [0] * (len(self.bounds) + 1)
                self._sums[labels] = 0.0
            counts[index] += 1
            self._sums[labels] += value

    def take(self) -> dict[Labels, tuple[list[int], float]]:
        """What was observed since the last take (each series' bucket counts and sum), and
        start again from nothing: how a process that observes for another hands it over."""
        with self._lock:
            taken = {k: (v, self._sums[k]) for k, v in self._counts.items()}
            self._counts, self._sums = {}, {}
        return taken

    def add(self, labels: Labels, counts: Sequence[int], total: float) -> None:
        """Add bucket counts and a sum observed elsewhere (`take`, with the same bounds)."""
        if len(counts) != len(self.bounds) + 1:
            raise ValueError(f"{len(counts)} bucket counts for {len(self.bounds) + 1} buckets")
        with self._lock:
            kept = self._counts.get(labels)
            if kept is None:
                kept = self._counts[labels] = [0] * (len(self.bounds) + 1)
                self._sums[labels] = 0.0
            for index, count in enumerate(counts):
                kept[index] += int(count)
            self._sums[labels] += float(total)

    def series(self) -> list[Series]:
        with self._lock:
            taken = [(k, list(v), self._sums[k]) for k, v in self._counts.items()]
        found = []
        for labels, counts, total in taken:
            running, buckets = 0, []
            for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
                running += count
                buckets.append((bound, running))
            found.append(Series(labels, buckets, total, running))
        return found


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Labels, float] = {}

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def values(self) -> dict[Labels, float]:
        with self._lock:
            return dict(self._values)

    def take(self) -> dict[Labels, float]:
        """The counts since the last take, and start again from nothing (`Histogram.take`)."""
        with self._lock:
            taken, self._values = self._values, {}
        return taken


class Recorder:
    """One server's counts. Every method is safe from any thread and costs a lock and a few
    dictionary operations."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.api_requests = Counter()  # (service, operation, code)
        self.api_latency = Histogram(API_BUCKETS)  # (service, operation)
        self.action_duration = Histogram(ACTION_BUCKETS)  # (provider, state)
        self.delivery_failures = Counter()  # (kind,)
        self.delivery_lag = Histogram(LAG_BUCKETS)  # (kind,)
        self.detection_lag = Histogram(LAG_BUCKETS)  # ()
        # Notifications the deliverer holds in memory, not yet delivered (its last report).
        self.deliveries_held = 0
        self._started: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()
        # Remote workers' polls waiting at this server for a job: their idle slots.
        self._polling = 0

    @contextmanager
    def polling(self) -> Iterator[None]:
        """Count a remote worker's poll as an idle worker while it waits."""
        with self._lock:
            self._polling += 1
        try:
            yield
        finally:
            with self._lock:
                self._polling -= 1

    def polls_waiting(self) -> int:
        with self._lock:
            return self._polling

    def api_request(self, service: str, operation: str, code: str, seconds: float) -> None:
        self.api_requests.inc((service, operation, code))
        self.api_latency.observe((service, operation), seconds)

    def committed(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """The events of a transaction that committed: an action's start is remembered, its
        end observed as a duration by provider."""
        for detail_type, body in events:
            if detail_type != _ACTION:
                continue
            detail = body.get("detail") or {}
            key = (
                str(detail.get("execution-id", "")),
                str(detail.get("stage", "")),
                str(detail.get("action", "")),
            )
            state = detail.get("state")
            now = self._clock()
            if state == "STARTED":
                with self._lock:
                    self._started[key] = now
                    if len(self._started) > MAX_STARTED:
                        self._started.popitem(last=False)
            elif state in _ENDS:
                with self._lock:
                    began = self._started.pop(key, None)
                if began is not None:
                    provider = str((detail.get("type") or {}).get("provider", ""))
                    self.action_duration.observe((provider, str(state)), now - began)

    def delivered(self, kind: str, lag: float) -> None:
        self.delivery_lag.observe((kind,), lag)

    def delivery_failed(self, kind: str) -> None:
        self.delivery_failures.inc((kind,))

    def detected(self, lag: float) -> None:
        self.detection_lag.observe((), lag)


def chained(
    first: Callable[[list[tuple[str, dict[str, Any]]]], None] | None,
    then: Callable[[list[tuple[str, dict[str, Any]]]], None],
) -> Callable[[list[tuple[str, dict[str, Any]]]], None]:
    """A store's ``on_events`` that calls ``first`` (what was there), then ``then``."""

    def both(events: list[tuple[str, dict[str, Any]]]) -> None:
        if first is not None:
            first(events)
        then(events)

    return both
