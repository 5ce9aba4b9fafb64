"""Checking an AWS Signature Version 4 on a received request, with botocore's own signer.

The request is rebuilt as botocore's ``AWSRequest`` from what arrived (method, path, query,
exactly the headers the client signed, the body) and botocore computes the signature the
client should have sent with the key's secret; the two are compared in constant time. Nothing
of SigV4's canonical form is written here: only reading the Authorization header and the
checks around it (scope, clock skew, payload hash), with AWS's codes and messages.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from conveyor.domain.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SKEW = timedelta(minutes=5)
_FORMAT = "%Y%m%dT%H%M%SZ"
_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_FIELD = re.compile(r"\s*([A-Za-z]+)=([^,]*)\s*")
_UNSIGNED = {"UNSIGNED-PAYLOAD"}


@dataclass(frozen=True, slots=True)
class Authorization:
    """What the Authorization header says."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True, slots=True)
class Received:
    """The request as it arrived."""

    method: str
    path: str
    query: str
    # Every header as (lower-case name, value), repeats included, in arrival order.
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


def read_authorization(request: Received) -> Authorization:
    """The Authorization header's parts, or the AWS error for a missing or malformed one."""
    values = request.header("authorization")
    if not values:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    if len(values) > 1:
        raise IncompleteSignatureException("The request has more than one Authorization header.")
    algorithm, _, rest = values[0].strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{algorithm}'; Conveyor accepts {ALGORITHM} only."
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        match = _FIELD.fullmatch(part)
        if match is None or match[1] in fields:
            raise IncompleteSignatureException(
                f"Authorization header requires each of Credential, SignedHeaders and Signature"
                f" once, as key=value pairs separated by commas; cannot read '{part.strip()}'."
            )
        fields[match[1]] = match[2]
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise IncompleteSignatureException(
                f"Authorization header requires '{name}' parameter. Authorization={values[0]}"
            )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise IncompleteSignatureException(
            f"Credential must have the form ACCESSKEY/DATE/REGION/SERVICE/aws4_request,"
            f" not '{fields['Credential']}'."
        )
    signed = tuple(fields["SignedHeaders"].split(";"))
    if len(set(signed)) != len(signed) or any(h != h.lower() or not h for h in signed):
        raise IncompleteSignatureException(
            f"SignedHeaders must name distinct lower-case headers, not '{fields['SignedHeaders']}'."
        )
    if "host" not in signed:
        raise IncompleteSignatureException(
            "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    if request.header("x-amz-target") and "x-amz-target" not in signed:
        # Else a request seen on the wire could be sent again as another operation.
        raise IncompleteSignatureException(
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
        )
    return Authorization(scope[0], scope[1], scope[2], scope[3], signed, fields["Signature"])


def check_time(request: Received, auth: Authorization, now: datetime) -> str:
    """The request's X-Amz-Date, once it is readable, agrees with the scope and is within
    five minutes of ``now``."""
    stamps = request.header("x-amz-date")
    if not stamps:
        raise IncompleteSignatureException(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date'"
            " header; Conveyor reads X-Amz-Date."
        )
    if len(stamps) > 1 or "x-amz-date" not in auth.signed_headers:
        raise IncompleteSignatureException(
            "X-Amz-Date must be given once and be one of the SignedHeaders."
        )
    stamp = stamps[0]
    match = _STAMP.fullmatch(stamp)
    try:
        if match is None:
            raise ValueError(stamp)
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{stamp}'."
        ) from None
    if auth.date != stamp[:8]:
        raise InvalidSignatureException(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date"
            f" from HTTP: '{auth.date}' != '{stamp[:8]}', from '{stamp}'."
        )
    shown = now.strftime(_FORMAT)
    if when < now - SKEW:
        raise InvalidSignatureException(
            f"Signature expired: {stamp} is now earlier than"
            f" {(now - SKEW).strftime(_FORMAT)} ({shown} - 5 min.)"
        )
    if when > now + SKEW:
        raise InvalidSignatureException(
            f"Signature not yet current: {stamp} is still later than"
            f" {(now + SKEW).strftime(_FORMAT)} ({shown} + 5 min.)"
        )
    return stamp


def check_scope(auth: Authorization, region: str, service: str) -> None:
    if auth.service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'."
        )
    if auth.region != region:
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region, not '{auth.region}': this server"
            f" is in '{region}'."
        )


def check_payload(request: Received) -> None:
    """A body that matches the hash the client declared in X-Amz-Content-SHA256."""
    declared = request.header("x-amz-content-sha256")
    if not declared:
        return
    actual = hashlib.sha256(request.body).hexdigest()
    if len(declared) > 1 or (declared[0] != actual and declared[0] not in _UNSIGNED):
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    if declared[0] in _UNSIGNED:
        raise InvalidSignatureException(
            "UNSIGNED-PAYLOAD is not accepted here: sign the body's SHA-256."
        )


class _Signer(SigV4Auth):
    """botocore's signer told which headers the client signed."""

    # S3 signs the path as sent; other services sign it normalized and encoded once more.
    raw_path = False

    def _normalize_url_path(self, path: str) -> str:
        return path if self.raw_path else str(super()._normalize_url_path(path))  # type: ignore[misc]

    def __init__(self, credentials: Credentials, service: str, region: str, signed: HTTPHeaders):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed


def expected_signature(
    request: Received, auth: Authorization, secret: str, stamp: str, *, s3: bool = False
) -> str:
    """The signature botocore computes for this request with ``secret``; ``s3`` signs the
    path as S3 does (``request.path`` is then the path as sent, still percent-encoded)."""
    headers = HTTPHeaders()
    for name in auth.signed_headers:
        values = request.header(name)
        if not values:
            raise InvalidSignatureException(
                f"The request signature names the header '{name}', which the request lacks."
            )
        for value in values:
            headers[name] = value
    host = request.header("host")[0]
    url = f"http://{host}{request.path}" + (f"?{request.query}" if request.query else "")
    aws = AWSRequest(method=request.method, url=url, data=request.body)
    # The payload's hash as botocore takes it from a request that declares it (a header not
    # signed unless the client signed it): botocore would otherwise prepare the whole request
    # to hash the body, which costs more than the rest of the check.
    aws.headers = HTTPHeaders()
    for name, value in headers.items():
        aws.headers[name] = value
    if "x-amz-content-sha256" not in headers:
        aws.headers["X-Amz-Content-SHA256"] = hashlib.sha256(request.body).hexdigest()
    aws.context["timestamp"] = stamp
    signer = _Signer(Credentials(auth.access_key, secret), auth.service, auth.region, headers)
    signer.raw_path = s3
    canonical = signer.canonical_request(aws)
    result: str = signer.signature(signer.string_to_sign(aws, canonical), aws)
    return result


def verify(
    request: Received, auth: Authorization, secret: str, stamp: str, *, s3: bool = False
) -> None:
    """Refuse with `InvalidSignatureException` unless the signature is the one expected."""
    expected = expected_signature(request, auth, secret, stamp, s3=s3)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode("utf-8", "replace")):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided."
            " Check your AWS Secret Access Key and signing method. Consult the service"
            " documentation for details."
        )
