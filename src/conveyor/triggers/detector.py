"""The detector: follows every watched source and feeds what changed to `Feed`.

Local repositories are watched by file events on their git folder (refs, ``packed-refs``,
``HEAD``: see `conveyor.triggers.watcher`) and read again every few seconds in case an event
was lost; remote git URLs are read with ``git ls-remote`` once per poll interval per distinct
(URL, branch) however many pipelines follow it; S3 objects are looked at once per interval.

What was seen is kept in the database (``source_heads``) so that a restart starts what changed
while it was away and nothing twice. The first sight of a source (a new pipeline, or a new
version of one) records its heads without starting anything: CreatePipeline has started an
execution already. A source that cannot be followed is recorded in ``source_problems`` (shown
by GetPipelineState) and logged once per location and problem, not per poll.

With several servers on one PostgreSQL database, only the holder of the detection lock
(`conveyor.store.Leadership`) runs the passes; the others try to take it every second.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from conveyor.actions.base import ProviderConfig
from conveyor.artifacts import ArtifactError, ArtifactStore
from conveyor.config import Connection
from conveyor.domain.triggers import (
    HEADS,
    Change,
    Fire,
    ObjectChange,
    Push,
    decide,
    trigger_type,
)
from conveyor.engine.services import Services
from conveyor.store import DuplicateKey
from conveyor.triggers.catalog import Catalog, Target
from conveyor.triggers.feed import Feed
from conveyor.triggers.followed import Counters, Source
from conveyor.triggers.gitrefs import RefsUnavailable, changed_files, local_refs, remote_refs
from conveyor.triggers.locations import Kind, SourceUnavailable, locate
from conveyor.triggers.problems import Problems
from conveyor.triggers.watcher import Watcher

log = logging.getLogger("conveyor.triggers")
TICK = 1.0
RESCAN = 5.0  # seconds between reads of local repositories that no event asked for
SIGHTED = ""  # the ref under which the pipeline version last sighted is kept
S3_REF = "s3"
POLLERS = 4
_Head = tuple[tuple[int, str, str], str]


class Detector:
    def __init__(
        self,
        services: Services,
        config: ProviderConfig,
        connections: dict[str, Connection],
        buckets: ArtifactStore | None = None,
        poll_interval: float = 60.0,
        rescan: float = RESCAN,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        self._services = services
        # Told, for each execution started, the seconds since the look that found its change
        # (a watched folder's notice, or the poll before the one that saw it).
        self._on_lag = on_lag
        self._since: float | None = None
        self._looked: dict[tuple[str, str | None], float] = {}
        self._store = services.store
        self._config = config
        self._connections = connections
        self._buckets = buckets
        self._interval = poll_interval
        self._rescan = min(rescan, poll_interval)
        self._catalog = Catalog(services.store)
        self._feed = Feed(services)
        self._leadership = services.store.leadership()
        self._lock = threading.RLock()
        self._leading = False
        self._heads: dict[tuple[int, str, str], str] = {}
        self._sources: dict[tuple[int, str], Source] = {}
        # Polled locations, and when the last round of them began: every location is read
        # once per round, a new one at once and then with the others.
        self._polled: set[tuple[str, str | None]] = set()
        self._rounds: dict[Kind, float] = {}
        self._scanned = float("-inf")
        self._problems = Problems(services.store, services.clock)
        self._pool = ThreadPoolExecutor(POLLERS, thread_name_prefix="conveyor-poll")
        self.watcher = Watcher(self._changed_folders)
        self.counters = Counters()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, tick: float | None = None) -> None:
        """Pass every ``tick`` seconds (default: a second, or the poll interval if shorter)
        until ``stop`` is set."""
        tick = min(TICK, self._interval) if tick is None else tick
        watcher = threading.Thread(
            target=self.watcher.run, args=(stop,), name="conveyor-watch", daemon=True
        )
        watcher.start()
        failing: str | None = None
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception as exc:  # keep detecting: one bad pass must not end the loop
                    if str(exc) != failing:  # once per problem, not once a second
                        log.exception("change detection pass failed")
                    failing = str(exc)
                else:
                    if failing is not None:
                        log.warning("change detection passes again")
                    failing = None
                stop.wait(tick)
        finally:
            self._leadership.release()
            self._pool.shutdown(wait=False, cancel_futures=True)
            watcher.join(5)

    @property
    def leading(self) -> bool:
        return self._leading

    def tick(self) -> None:
        """One pass: hold the lock (or wait for it), then look at what is due."""
        began = time.thread_time()
        try:
            self._tick()
        finally:
            self.counters.passes += 1
            self.counters.spent(time.thread_time() - began)

    def _tick(self) -> None:
        if not self._leadership.hold():
            if self._leading:
                log.warning("change detection moves to another server")
            self._leading = False
            self.watcher.set_folders(set())
            return
        with self._lock:
            if not self._leading:
                with self._store.read() as tx:
                    self._heads = tx.heads.all()
                self._problems.load()
                self._sources.clear()
                self._leading = True
                log.info("this server detects source changes")
            now = time.monotonic()
            rescan = now - self._scanned >= self._rescan
            if rescan:
                self._scanned = now
            new = self._refresh(relocate=rescan)
        self._scan_local(None if rescan else new)
        self._poll_remote(now)
        self._poll_s3(now)

    # -- what to follow ------------------------------------------------------------------------

    def _refresh(self, *, relocate: bool) -> set[tuple[int, str]]:
        """Bring the sources up to date with the pipelines; the keys of sources not seen yet.
        New sources and those that could not be found are located; all of them when
        ``relocate`` (a repository may have appeared or gone)."""
        targets = {t.key: t for t in self._catalog.targets()}
        new = set()
        for key in set(self._sources) - set(targets):
            del self._sources[key]
        for key, target in targets.items():
            source = self._sources.get(key)
            if source is None or source.target.version != target.version:
                source = self._sources[key] = Source(target)
                new.add(key)
            elif not relocate and source.location is not None:
                continue
            try:
                source.location = locate(target.watch, self._config, self._connections)
            except SourceUnavailable as problem:
                source.location = None
                self._problem(source, str(problem))
        self.watcher.set_folders(
            {
                s.location.git_dir
                for s in self._sources.values()
                if s.location and s.location.git_dir
            }
        )
        return new

    def _grouped(self, kind: Kind) -> dict[tuple[str, str | None], list[Source]]:
        groups: dict[tuple[str, str | None], list[Source]] = defaultdict(list)
        for source in self._sources.values():
            location = source.location
            if location is None or location.kind != kind:
                continue
            watch = source.target.watch
            if kind == Kind.LOCAL:
                groups[(location.git_dir or "", None)].append(source)
            elif kind == Kind.REMOTE:
                groups[(location.url, None if watch.every_ref else watch.branch)].append(source)
            else:
                groups[(location.url, None)].append(source)
        return groups

    # -- local repositories ----------------------------------------------------------------------

    def _changed_folders(self, folders: set[str]) -> None:
        """Called by the watcher with the git folders whose refs changed."""
        began = time.thread_time()
        try:
            self._changed(folders)
        finally:
            self.counters.spent(time.thread_time() - began)

    def _changed(self, folders: set[str]) -> None:
        with self._lock:
            if not self._leading:
                return
            groups = self._grouped(Kind.LOCAL)
            for folder in folders:
                self._scan_folder(folder, groups.get((folder, None), []))

    def _scan_local(self, only: set[tuple[int, str]] | None) -> None:
        with self._lock:
            for (folder, _), sources in self._grouped(Kind.LOCAL).items():
                if only is None or any(s.target.key in only for s in sources):
                    self._scan_folder(folder, sources)

    def _scan_folder(self, folder: str, sources: list[Source]) -> None:
        if not sources:
            return
        self.counters.local_scans += 1
        self._since = time.monotonic()
        try:
            refs = local_refs(folder)
        except RefsUnavailable as problem:
            for source in sources:
                path = source.location.url if source.location else folder
                gone = not os.path.isdir(path)
                self._problem(source, f"There is no folder {path}" if gone else str(problem))
            return
        self._consider(sources, refs, folder, polled=False)

    # -- remote repositories ---------------------------------------------------------------------

    def _due(self, kind: Kind, now: float) -> dict[tuple[str, str | None], list[Source]]:
        """The locations of ``kind`` to read now: all of them once a round is due, else those
        never read yet."""
        groups = self._grouped(kind)
        if now - self._rounds.get(kind, float("-inf")) >= self._interval:
            self._rounds[kind] = now
            due = groups
            if kind == Kind.REMOTE and groups:
                self.counters.rounds.append(len(groups))
        else:
            due = {key: sources for key, sources in groups.items() if key not in self._polled}
        self._polled.update(due)
        return due

    def _poll_remote(self, now: float) -> None:
        with self._lock:
            due = self._due(Kind.REMOTE, now)
        if not due:
            return
        results = self._pool.map(self._ls_remote, due)
        for (key, sources), refs in zip(due.items(), results, strict=True):
            with self._lock:
                if not self._leading:
                    return
                if isinstance(refs, RefsUnavailable):
                    for source in sources:
                        self._problem(source, str(refs))
                else:
                    self._since = self._looked.get(key, now)
                    self._looked[key] = now
                    self._consider(sources, refs, None, polled=True)

    def _ls_remote(self, key: tuple[str, str | None]) -> dict[str, str] | RefsUnavailable:
        began = time.thread_time()
        try:
            return remote_refs(*key)
        except RefsUnavailable as problem:
            return problem
        finally:
            self.counters.spent(time.thread_time() - began, polls=1)

    # -- considering what was read ---------------------------------------------------------------

    def _consider(
        self, sources: list[Source], refs: dict[str, str], folder: str | None, *, polled: bool
    ) -> None:
        writes: list[_Head] = []
        for source in sources:
            if source.location is None:
                continue
            watch = source.target.watch
            if watch.every_ref:
                relevant = refs
            else:
                ref = HEADS + watch.branch
                if ref not in refs:
                    message = f"Branch {watch.branch} not found in {source.location.shown}"
                    self._problem(source, message)
                    continue
                relevant = {ref: refs[ref]}
            self._problems.clear(source.target.key, source.where)
            diff = folder if watch.every_ref else None  # only filters need changed files
            for ref, commit in sorted(relevant.items()):
                push = partial(_push, diff, ref, commit)
                self._saw(source.target, ref, commit, push, polled, writes)
            self._sighted(source.target, writes)
        self._write(writes)

    def _saw(
        self,
        target: Target,
        ref: str,
        revision: str,
        change: Callable[[str | None], Change],
        polled: bool,
        writes: list[_Head],
    ) -> None:
        """``ref`` of the target's source is at ``revision``: start what that calls for,
        unless it is no change or the first sight of the source."""
        old = self._heads.get((target.pipeline_id, target.watch.action, ref))
        if old == revision:
            return
        if old is not None or not self._sighting(target):
            fire = decide(target.watch, change(old))
            if fire is not None:
                self._start(target, fire, trigger_type(target.watch, polled=polled))
        writes.append(self._remember(target, ref, revision))

    def _sighting(self, target: Target) -> bool:
        """Whether this version of the pipeline has not been sighted yet."""
        marker = self._heads.get((target.pipeline_id, target.watch.action, SIGHTED))
        return marker != str(target.version)

    def _sighted(self, target: Target, writes: list[_Head]) -> None:
        if self._sighting(target):
            writes.append(self._remember(target, SIGHTED, str(target.version)))

    def _start(self, target: Target, fire: Fire, kind: str) -> None:
        execution = self._feed.start(target, fire, kind)
        if execution is not None:
            self.counters.starts += 1
            if self._on_lag is not None and self._since is not None:
                self._on_lag(time.monotonic() - self._since)

    def _remember(self, target: Target, ref: str, revision: str) -> _Head:
        key = (target.pipeline_id, target.watch.action, ref)
        self._heads[key] = revision
        return key, revision

    def _write(self, heads: list[_Head]) -> None:
        if not heads:
            return
        now = self._services.clock.now()
        try:
            with self._store.write() as tx:
                for (pipeline_id, action, ref), revision in heads:
                    tx.heads.put(pipeline_id, action, ref, revision, now)
        except DuplicateKey:
            pass  # the pipeline was deleted meanwhile, and its heads with it

    # -- S3 objects ------------------------------------------------------------------------------

    def _poll_s3(self, now: float) -> None:
        if self._buckets is None:
            return
        with self._lock:
            self._since = None  # an object's change has no earlier look to count from
            for sources in self._due(Kind.S3, now).values():
                self._look_at_object(sources)

    def _look_at_object(self, sources: list[Source]) -> None:
        location = sources[0].location
        assert location is not None and location.bucket and location.key and self._buckets
        self.counters.s3_polls += 1
        try:
            info = self._buckets.stat(location.bucket, location.key)
        except ArtifactError as error:
            for source in sources:
                self._problem(source, str(error))
            return
        if info is None:
            for source in sources:
                self._problem(source, f"No object {location.key} in bucket {location.bucket}")
            return
        revision = info.version_id or info.etag
        change = ObjectChange(location.bucket, location.key, revision)
        writes: list[_Head] = []
        for source in sources:
            self._problems.clear(source.target.key, source.where)
            self._saw(source.target, S3_REF, revision, lambda _: change, True, writes)
            self._sighted(source.target, writes)
        self._write(writes)

    def _problem(self, source: Source, message: str) -> None:
        self._problems.report(source.target.key, message, source.where)


def _push(folder: str | None, ref: str, commit: str, old: str | None) -> Change:
    """The push of ``ref`` to ``commit`` from ``old``, with the files it changed when
    ``folder`` (the repository's git folder) is given."""
    return Push(ref, commit, changed_files(folder, old, commit) if folder is not None else None)
