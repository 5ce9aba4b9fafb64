"""What a remote worker stored lately, kept on its own disk so that it never fetches back an
object it has just sent.

An action's output is read by the actions after it, and the worker that reports a result
claims its next job in the same call: in a pipeline of actions one after the other, the
worker that built an artifact is, most often, the one that reads it next. A server reading
an artifact it stored takes it from its disk; a remote worker would fetch it back over HTTP
(a request, a few milliseconds). So `Sent` keeps each small object the worker stored (a hard
link to the file it sent, a copy across disks), and hands out a copy when the server says,
with a job, that the object has its size and, as its ETag, the MD5 of the copy: the object is
then exactly what was sent. The MD5 is taken as the copy is made, so keeping costs a link
(an S3 deploy of a thousand files hashes none of them). The newest `KEPT_BYTES` are kept; the
folder is the worker's, emptied as it starts (`conveyor.worker.leftovers`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections import OrderedDict
from pathlib import Path

from conveyor.artifacts import ObjectInfo
from conveyor.artifacts.local import link_or_copy

log = logging.getLogger("conveyor.worker")
# The largest object kept, and the most bytes kept in all.
MAX_BYTES = 8 * 1024 * 1024
KEPT_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


class Sent:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        # (bucket, key) → (the copy, its size), the least recently used first.
        self._kept: OrderedDict[tuple[str, str], tuple[Path, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def keep(self, bucket: str, key: str, source: Path) -> None:
        """``source`` was just stored as (bucket, key): keep it, if small."""
        self._drop(self._forget(bucket, key))
        try:
            size = source.stat().st_size
            if size > MAX_BYTES:
                return
            self._folder.mkdir(parents=True, exist_ok=True)
            copy = self._folder / secrets.token_hex(8)
            link_or_copy(source, copy)
        except OSError as error:  # nothing is lost: the object is fetched when read
            log.info("cannot keep what was sent as %s: %s", key, error)
            return
        with self._lock:
            self._kept[(bucket, key)] = (copy, size)
            self._bytes += size
            evicted = []
            while self._bytes > KEPT_BYTES:
                _, entry = self._kept.popitem(last=False)
                self._bytes -= entry[1]
                evicted.append(entry[0])
        self._drop(evicted)

    def give(self, bucket: str, key: str, said: ObjectInfo, destination: Path) -> bool:
        """Make ``destination`` a copy of what was sent as (bucket, key) when the server
        ``said`` the object has its size and MD5; else False, and no ``destination``."""
        with self._lock:
            entry = self._kept.get((bucket, key))
            if entry is not None:
                self._kept.move_to_end((bucket, key))
        if entry is None or entry[1] != said.size:
            return False
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with open(entry[0], "rb") as kept, open(destination, "wb") as out:
                while chunk := kept.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError:  # dropped meanwhile, say: fetched instead
            destination.unlink(missing_ok=True)
            return False
        if digest.hexdigest() != said.etag:  # not what was sent: stored again since
            destination.unlink(missing_ok=True)
            return False
        return True

    def _forget(self, bucket: str, key: str) -> list[Path]:
        with self._lock:
            entry = self._kept.pop((bucket, key), None)
            if entry is None:
                return []
            self._bytes -= entry[1]
            return [entry[0]]

    @staticmethod
    def _drop(copies: list[Path]) -> None:
        for copy in copies:
            copy.unlink(missing_ok=True)
