"""Whether a server's local buckets are the ones every server of its database uses.

Several servers on one PostgreSQL database share every pipeline, so an artifact one server's
workers write must be readable by the next action's worker, whichever server runs it. With an
``s3_endpoint`` the store is shared by construction; with local buckets (folders under each
home) it is shared only when every home's ``buckets`` is the same folder (a shared mount, or a
symbolic link to one). A server cannot see the other homes, so the database names the folder:
the first server on it records an id for the installation's artifact folder and writes the
same id into a file at the folder's root; a later server whose folder holds no such file, or
another id, has buckets of its own, and is refused at start, before it runs anything, with
the ways out. SQLite belongs to one process, which needs none of this.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from conveyor.store import DuplicateKey, Store

ARTIFACT_ROOT_KEY = "artifact_root"
MARKER = ".conveyor-artifact-root"


class BucketsNotShared(RuntimeError):
    """This server's local buckets are not the folder the other servers use."""


def check_shared_buckets(store: Store, root: Path, description: str) -> None:
    """Refuse (`BucketsNotShared`) local buckets at ``root`` that are not the folder the
    database's other servers use; record them as that folder when none is recorded yet.
    ``description`` says where this server is, for the record."""
    if store.dialect != "postgresql":
        return
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER
    found = _read(marker)
    proposed = found or secrets.token_hex(8)
    identity, _, first = _record(store, proposed, description).partition(" ")
    if found == identity:
        return
    if found is None and identity == proposed and _mark(marker, identity):
        return  # the first folder the database knows: this one
    raise BucketsNotShared(
        f"this server keeps artifacts in the folder {root}, but the servers sharing its database "
        f"keep them elsewhere (the folder first used, by {first or 'another server'}), so "
        "their actions could not read each other's artifacts. Do one of: make "
        f"{root} the same shared folder on every server (a shared mount, or a symbolic link "
        "to one); set s3_endpoint (CONVEYOR_S3_ENDPOINT) on every server to one S3-compatible "
        "store; or, instead of a server here, run `conveyor worker --endpoint URL` for a "
        "server that keeps the artifacts: its workers fetch them through that server's S3 "
        "endpoint. If this folder "
        f"now holds the installation's artifacts, write {identity} into {marker}."
    )


def _read(marker: Path) -> str | None:
    try:
        return marker.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _record(store: Store, identity: str, description: str) -> str:
    """The recorded ``<id> <description>`` of the installation's folder, this one's if none."""
    value = f"{identity} {description}"
    try:
        with store.write() as tx:
            return tx.meta.setdefault(ARTIFACT_ROOT_KEY, value)
    except DuplicateKey:  # another server recorded its folder at the same moment
        with store.read() as tx:
            return tx.meta.get(ARTIFACT_ROOT_KEY) or value


def _mark(marker: Path, identity: str) -> bool:
    """Write ``identity`` into a new marker; whether the marker now holds it."""
    with contextlib.suppress(FileExistsError), open(marker, "x", encoding="utf-8") as out:
        out.write(identity + "\n")
    return _read(marker) == identity
