"""How a remote worker reaches artifacts: through the server's S3 endpoint, each object with
the ``artifactCredentials`` of the held job it belongs to (`signer`), and ``stat`` answered
from what the server said of a job's objects when it handed the job out (`KnownObjects`), so
the endpoint is asked about an input only when the server said nothing of it, and fetches
nothing the worker has just sent (`conveyor.worker.sent`); or the shared ``s3_endpoint`` when
the worker's settings name one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from conveyor.artifacts import ArtifactStore, ObjectInfo
from conveyor.auth.artifactkeys import job_objects
from conveyor.config import Settings
from conveyor.store import JobRecord
from conveyor.worker.sent import Sent

if TYPE_CHECKING:
    from conveyor.artifacts.s3 import S3Buckets

S3_PATH = "/_conveyor/s3"


class HeldJobs(Protocol):
    """What the worker's job source knows of the jobs it holds (`RemoteJobs`)."""

    def credentials_for(self, bucket: str, key: str) -> Mapping[str, str] | None: ...

    def known(self, bucket: str, key: str) -> ObjectInfo | None: ...


def signer(
    held: Sequence[tuple[JobRecord, bool]], bucket: str, key: str
) -> Mapping[str, str] | None:
    """Of the held jobs (oldest first, each with whether its result is on its way), the
    artifactCredentials of one that may reach this object (with no key: an object of the
    bucket). Jobs of one execution read the same inputs, and the server refuses a job's
    credentials the moment the job ends: so the newest job wins, and one whose result is on
    its way only when no other may reach the object."""

    def reaches(job: JobRecord) -> bool:
        reads, writes = job_objects(job.data)
        return any(b == bucket and (not key or k == key) for b, k in (*reads, *writes))

    found = [(reporting, job) for job, reporting in reversed(held) if reaches(job)]
    if not found:
        return None
    _, job = min(found, key=lambda pair: pair[0])  # the first not reporting, if any
    credentials: Mapping[str, str] | None = job.data.get("artifactCredentials")
    return credentials


class KnownObjects:
    """An `ArtifactStore` that answers ``stat`` from what the server said of a held job's
    objects, and asks ``store`` everything else (the S3 endpoint: a round trip each); an
    object whose size the server said is fetched knowing it (in one request when small),
    unless it is one ``sent`` kept."""

    def __init__(
        self,
        store: S3Buckets,
        known: Callable[[str, str], ObjectInfo | None],
        sent: Sent | None = None,
    ):
        self._store = store
        self._known = known
        self._sent = sent

    def put(
        self,
        bucket: str,
        key: str,
        source: Path,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        acl: str | None = None,
    ) -> None:
        self._store.put(
            bucket, key, source, content_type=content_type, cache_control=cache_control, acl=acl
        )
        if self._sent is not None:
            self._sent.keep(bucket, key, source)

    def get(
        self, bucket: str, key: str, destination: Path, *, version_id: str | None = None
    ) -> None:
        found = None if version_id is not None else self._known(bucket, key)
        sent = self._sent
        if found is not None and sent is not None and sent.give(bucket, key, found, destination):
            return
        size = None if found is None else found.size
        self._store.get(bucket, key, destination, version_id=version_id, size=size)

    def exists(self, bucket: str, key: str) -> bool:
        return self.stat(bucket, key) is not None

    def stat(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        found = None if version_id is not None else self._known(bucket, key)
        return found if found is not None else self._store.stat(bucket, key, version_id=version_id)

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        return self._store.list(bucket, prefix)


def artifact_store(settings: Settings, endpoint: str, jobs: HeldJobs) -> ArtifactStore:
    """The shared S3 store when the settings name one, else the server's S3 endpoint, each
    object reached with the artifactCredentials of the job it belongs to."""
    from conveyor.artifacts.s3 import S3Buckets  # here: it imports boto3

    if settings.s3_endpoint:
        return S3Buckets(settings.s3_endpoint, settings.region)
    import boto3
    from botocore.credentials import Credentials

    base = endpoint.rstrip("/") + S3_PATH
    prefix = urlsplit(base).path + "/"
    # Requests no job covers go out signed with these, and the server refuses them.
    session = boto3.session.Session(aws_access_key_id="none", aws_secret_access_key="none")
    store = S3Buckets(base, settings.region, session=session, create_buckets=False)

    def sign_as_job(request: Any, **kwargs: Any) -> None:
        """Sign with the credentials of the held job whose object the request names
        (botocore's per-request credentials)."""
        path = unquote(urlsplit(request.url).path).removeprefix(prefix)
        bucket, _, key = path.partition("/")
        found = jobs.credentials_for(bucket, key)
        if found is not None:
            signing = request.context.setdefault("signing", {})
            signing["request_credentials"] = Credentials(
                found["accessKeyId"], found["secretAccessKey"], found["sessionToken"]
            )

    store.client.meta.events.register("before-sign.s3", sign_as_job)
    return KnownObjects(store, jobs.known, Sent(settings.home / "work" / "sent"))
