"""Builds a few at a time: a bounded pool of threads, and a stop flag per build.

`BuildPool` is the engine's `Launcher`: StartBuild records a build and hands its plan here,
where it waits for a free thread. StopBuild sets the build's flag: a waiting build ends as it
is taken, a running one has its shell stopped as an action's would be; a StopBuild another
server of the same database took is seen within `STOP_POLL_SECONDS`. A build that waits longer
than its queued timeout ends ``TIMED_OUT``: seen as often, and again as a thread takes it
(the build then does not run). When the server starts,
builds this machine was running when it stopped are ended as ``FAULT``.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conveyor.actions.base import ProviderConfig
from conveyor.artifacts import ArtifactStore
from conveyor.domain.builds import BuildPlan
from conveyor.engine.builds import BuildService

__all__ = ["BuildPool"]

log = logging.getLogger("conveyor.builds")

# How often a server looks for StopBuild requests another server took for its builds.
STOP_POLL_SECONDS = 2.0


class BuildPool:
    def __init__(
        self,
        service: BuildService,
        config: ProviderConfig,
        artifacts: ArtifactStore,
        home: Path,
        *,
        size: int,
        node: str,
    ) -> None:
        self.service = service
        self.config = config
        self.artifacts = artifacts
        self.home = home
        self.node = node
        self._executor = ThreadPoolExecutor(max(1, size), thread_name_prefix="conveyor-build")
        self._flags: dict[str, threading.Event] = {}
        self._waiting: set[str] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def start(self) -> None:
        """Take StartBuild's builds from now on; end those this machine left running."""
        ended = self.service.recover(self.node)
        if ended:
            log.warning("ended %d builds that were running when Conveyor stopped", ended)
        self.service.attach(self)
        threading.Thread(target=self._watch, name="conveyor-build-stops", daemon=True).start()

    def _watch(self) -> None:
        """Stop the builds StopBuild asked another server (sharing the database) to stop,
        and end those that waited for a thread longer than their queued timeout."""
        while not self._closed.wait(STOP_POLL_SECONDS):
            with self._lock:
                running = dict(self._flags)
                waiting = [i for i in self._waiting if i in running]
            if not running:
                continue
            try:
                for build_id in self.service.expire_queued(waiting):
                    running[build_id].set()
            except Exception:
                log.warning("cannot end the builds that waited too long", exc_info=True)
            try:
                wanted = self.service.stops_requested(list(running))
            except Exception:
                log.warning("cannot read the builds' stop requests", exc_info=True)
                continue
            for build_id in wanted:
                running[build_id].set()

    def launch(self, plan: BuildPlan) -> None:
        flag = threading.Event()
        with self._lock:
            self._flags[plan.build_id] = flag
            self._waiting.add(plan.build_id)
        self.service.claim(plan.build_id, self.node)
        self._executor.submit(self._run, plan, flag)

    def _run(self, plan: BuildPlan, flag: threading.Event) -> None:
        # Here: it imports the CodeBuild provider, which a process that runs no build (most
        # `conveyor run`s) never needs.
        from conveyor.builds.run import run_build

        with self._lock:
            self._waiting.discard(plan.build_id)
        try:
            if not flag.is_set() and not self.service.take(plan.build_id):
                return
            run_build(plan, self.config, self.artifacts, self.home, self.service, flag)
        finally:
            with self._lock:
                self._flags.pop(plan.build_id, None)

    def stop(self, build_id: str) -> bool:
        with self._lock:
            flag = self._flags.get(build_id)
        if flag is None:
            return False
        flag.set()
        return True

    def close(self) -> None:
        """Stop every build and wait for the threads to end."""
        self._closed.set()
        with self._lock:
            flags = list(self._flags.values())
        for flag in flags:
            flag.set()
        self._executor.shutdown(wait=True, cancel_futures=False)
