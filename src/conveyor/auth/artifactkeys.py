"""Per-job artifact credentials: minted as a job is handed to its worker, checked by the
server's S3 endpoint (`conveyor.api.s3serve`).

Every job carries ``artifactCredentials`` (accessKeyId, secretAccessKey, sessionToken), as
CodePipeline's jobs do. Nothing is stored: the session token carries the grant (the job, when
it expires, the objects it may read and those it may write) and an HMAC of it under a key
derived from the installation's secret key, so any server sharing that key checks it. The
access key id and secret are HMACs of the same grant under two more derived keys: whoever
holds the token learns neither, and a grant cannot be altered without changing all three.

A job may read its input and output objects (and an S3 source action the object it reads)
and write its output objects; the grant ends at the job's deadline, and the endpoint also
refuses it once the job is no longer active.

A request is checked as S3 checks one: SigV4 (`conveyor.auth.sigv4`, botocore's signer) with
the secret derived from the token it carries in ``X-Amz-Security-Token``; refusals carry S3's
codes (`ArtifactDenied`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.domain.errors import (
    ConveyorError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

VERSION = "CVJ1"
SERVICE = "s3"
_PURPOSE = b"conveyor artifact credentials v1"
# What a job's grant lasts when its data names no deadline, in seconds.
DEFAULT_LIFETIME = 3600.0
Object = tuple[str, str]

if TYPE_CHECKING:
    from conveyor.auth.sigv4 import Received


class ArtifactDenied(Exception):
    """A request the artifact endpoint refuses, with S3's code and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Grant:
    """What one job's credentials allow."""

    job_id: str
    expires: int
    reads: frozenset[Object]
    writes: frozenset[Object]

    def may_read(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.reads or (bucket, key) in self.writes

    def may_write(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.writes

    def visible(self, bucket: str) -> frozenset[str]:
        """The keys of ``bucket`` this job may see."""
        return frozenset(k for b, k in self.reads | self.writes if b == bucket)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _locations(artifacts: Iterable[Mapping[str, Any]]) -> list[Object]:
    found = []
    for artifact in artifacts:
        s3 = (artifact.get("location") or {}).get("s3Location") or {}
        if s3.get("bucketName") and s3.get("objectKey"):
            found.append((str(s3["bucketName"]), str(s3["objectKey"])))
    return found


def job_objects(data: Mapping[str, Any]) -> tuple[list[Object], list[Object]]:
    """The objects a job with this data may read and those it may write: its input artifacts
    and, for an S3 source action, the object its configuration names; its output artifacts
    (readable too)."""
    reads = _locations(data.get("inputArtifacts") or ())
    writes = _locations(data.get("outputArtifacts") or ())
    kind = data.get("actionTypeId") or {}
    if (kind.get("owner"), kind.get("category"), kind.get("provider")) == ("AWS", "Source", "S3"):
        configuration = (data.get("actionConfiguration") or {}).get("configuration") or {}
        bucket, key = configuration.get("S3Bucket"), configuration.get("S3ObjectKey")
        if isinstance(bucket, str) and isinstance(key, str) and bucket and key:
            reads.append((bucket, key))
    return reads, writes


class ArtifactKeys:
    """Mints and checks job credentials with keys derived from ``secret`` (the installation's
    secret key, read the first time it is needed: servers that share a database share it)."""

    def __init__(self, secret: Callable[[], bytes], clock: Callable[[], float] = time.time) -> None:
        self._read_secret = secret
        self._keys: tuple[bytes, bytes, bytes] | None = None
        self._lock = threading.Lock()
        self._clock = clock

    def _derived(self) -> tuple[bytes, bytes, bytes]:
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    root = hmac.new(self._read_secret(), _PURPOSE, hashlib.sha256).digest()
                    self._keys = tuple(  # type: ignore[assignment]
                        hmac.new(root, label, hashlib.sha256).digest()
                        for label in (b"token", b"access key id", b"secret access key")
                    )
        assert self._keys is not None
        return self._keys

    @property
    def _token_key(self) -> bytes:
        return self._derived()[0]

    @property
    def _id_key(self) -> bytes:
        return self._derived()[1]

    @property
    def _secret_key(self) -> bytes:
        return self._derived()[2]

    def _access_key(self, payload: bytes) -> str:
        digest = hmac.new(self._id_key, payload, hashlib.sha256).digest()
        return "ASIA" + base64.b32encode(digest).decode("ascii")[:16]

    def _secret(self, payload: bytes) -> str:
        digest = hmac.new(self._secret_key, payload, hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")[:40]

    def mint(
        self, job_id: str, expires: float, reads: Iterable[Object], writes: Iterable[Object]
    ) -> dict[str, str]:
        """``artifactCredentials`` for a job allowed these objects until ``expires``."""
        grant = {
            "j": job_id,
            "e": int(expires),
            "r": sorted([b, k] for b, k in reads),
            "w": sorted([b, k] for b, k in writes),
        }
        payload = json.dumps(grant, separators=(",", ":")).encode()
        mac = hmac.new(self._token_key, payload, hashlib.sha256).digest()
        return {
            "accessKeyId": self._access_key(payload),
            "secretAccessKey": self._secret(payload),
            "sessionToken": f"{VERSION}.{_b64(payload)}.{_b64(mac)}",
        }

    def for_job(self, job_id: str, data: Mapping[str, Any], created: float) -> dict[str, str]:
        """The credentials of a job with this data: its objects (`job_objects`), until its
        deadline."""
        deadline = (data.get("conveyor") or {}).get("deadline")
        expires = float(deadline) if deadline else created + DEFAULT_LIFETIME
        reads, writes = job_objects(data)
        return self.mint(job_id, expires, reads, writes)

    def _open(self, token: str) -> tuple[bytes, Grant]:
        """The grant a session token carries, if this installation signed it."""
        invalid = ArtifactDenied(
            "InvalidToken", "The provided token is malformed or otherwise invalid.", 400
        )
        version, _, rest = token.partition(".")
        text, _, mac_text = rest.partition(".")
        if version != VERSION or not text or not mac_text:
            raise invalid
        try:
            payload, mac = _unb64(text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            raise invalid from None
        expected = hmac.new(self._token_key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, mac):
            raise invalid
        fields = json.loads(payload)
        grant = Grant(
            job_id=str(fields["j"]),
            expires=int(fields["e"]),
            reads=frozenset((str(b), str(k)) for b, k in fields["r"]),
            writes=frozenset((str(b), str(k)) for b, k in fields["w"]),
        )
        return payload, grant

    def authenticate(self, request: Received, region: str) -> Grant:
        """The grant of the credentials that signed ``request``, or `ArtifactDenied`."""
        # here: the signer is botocore's, which minting credentials for a job does not need
        from conveyor.auth.sigv4 import check_scope, check_time, read_authorization, verify

        try:
            auth = read_authorization(request)
            now = self._clock()
            try:
                stamp = check_time(request, auth, datetime.fromtimestamp(now, UTC))
            except InvalidSignatureException as error:
                raise ArtifactDenied("RequestTimeTooSkewed", error.message) from None
            check_scope(auth, region, SERVICE)
        except MissingAuthenticationTokenException:
            raise ArtifactDenied("AccessDenied", "Access Denied") from None
        except ConveyorError as error:
            raise _denied(error) from None
        tokens = request.header("x-amz-security-token")
        if len(tokens) != 1 or "x-amz-security-token" not in auth.signed_headers:
            raise ArtifactDenied(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records: the"
                " artifact endpoint takes a job's artifactCredentials, with its signed"
                " X-Amz-Security-Token.",
            )
        payload, grant = self._open(tokens[0])
        if not hmac.compare_digest(self._access_key(payload), auth.access_key):
            raise ArtifactDenied(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        if now >= grant.expires:
            raise ArtifactDenied("ExpiredToken", "The provided token has expired.", 400)
        if not request.header("x-amz-content-sha256"):
            raise ArtifactDenied(
                "InvalidRequest",
                "Missing required header for this request: x-amz-content-sha256",
                400,
            )
        try:
            verify(request, auth, self._secret(payload), stamp, s3=True)
        except ConveyorError as error:
            raise _denied(error) from None
        return grant


def _denied(error: ConveyorError) -> ArtifactDenied:
    if isinstance(error, IncompleteSignatureException):
        return ArtifactDenied("AuthorizationHeaderMalformed", error.message, 400)
    if isinstance(error, InvalidSignatureException):
        return ArtifactDenied("SignatureDoesNotMatch", error.message)
    return ArtifactDenied("AccessDenied", error.message)
