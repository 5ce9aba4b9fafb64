"""Whether a server shares what every server of its database must: its local buckets, and
its secret key.

Several servers on one PostgreSQL database share every pipeline, so an artifact one server's
workers write must be readable by the next action's worker, whichever server runs it. With an
``s3_endpoint`` the store is shared by construction; with local buckets (folders under each
home) it is shared only when every home's ``buckets`` is the same folder (a shared mount, or a
symbolic link to one). A server cannot see the other homes, so the database names the folder:
the first server on it records an id for the installation's artifact folder and writes the
same id into a file at the folder's root; a later server whose folder holds no such file, or
another id, has buckets of its own, and is refused at start, before it runs anything, with
the ways out. The secret key seals the secrets kept in the database and signs each job's
artifact credentials, which a worker may present to any of the servers: the first server
records a fingerprint of its key, and a server with another key is refused the same way.
SQLite belongs to one process, which needs none of this.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from pathlib import Path

from conveyor.store import DuplicateKey, Store

ARTIFACT_ROOT_KEY = "artifact_root"
SECRET_KEY_CHECK = "secret_key_check"
MARKER = ".conveyor-artifact-root"


class NotShared(RuntimeError):
    """This server does not share with the other servers of its database what it must."""


class BucketsNotShared(NotShared):
    """This server's local buckets are not the folder the other servers use."""


def check_shared_key(store: Store, key: bytes, description: str) -> None:
    """Refuse (`NotShared`) a secret key other than the one the database's other servers use;
    record this one's fingerprint when none is recorded yet."""
    if store.dialect != "postgresql":
        return
    mine = hmac.new(key, b"conveyor: the servers of one database", hashlib.sha256).hexdigest()
    recorded, _, first = _record(store, SECRET_KEY_CHECK, mine[:32], description).partition(" ")
    if hmac.compare_digest(recorded, mine[:32]):
        return
    raise NotShared(
        f"this server's secret key is not the one the servers sharing its database use (the "
        f"key first used, by {first or 'another server'}): it could open none of the secrets "
        "they keep in the database, and a worker's artifact credentials made by one would be "
        "refused by the other. Give every server the same key: set secret_key "
        "(CONVEYOR_SECRET_KEY) to one value on all of them, or copy the first server's key "
        "file from its home to this one's."
    )


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
    identity, _, first = _record(store, ARTIFACT_ROOT_KEY, proposed, description).partition(" ")
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


def _record(store: Store, name: str, identity: str, description: str) -> str:
    """The recorded ``<id> <description>`` under ``name`` (the installation's folder, or its
    key's fingerprint), this one's if none."""
    value = f"{identity} {description}"
    try:
        with store.write() as tx:
            return tx.meta.setdefault(name, value)
    except DuplicateKey:  # another server recorded its own at the same moment
        with store.read() as tx:
            return tx.meta.get(name) or value


def _mark(marker: Path, identity: str) -> bool:
    """Write ``identity`` into a new marker; whether the marker now holds it."""
    with contextlib.suppress(FileExistsError), open(marker, "x", encoding="utf-8") as out:
        out.write(identity + "\n")
    return _read(marker) == identity
