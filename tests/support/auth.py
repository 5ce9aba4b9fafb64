"""Helpers for access-control tests: users with keys, signed clients, botocore-signed raw
requests that can be taken apart after signing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conveyor.server import Running

TARGET = "CodePipeline_20150709"
REGION = "us-east-1"


def make_user(
    live: Running,
    name: str,
    *,
    managed: Iterable[str] = (),
    policies: Iterable[Mapping[str, Any]] = (),
) -> tuple[str, str]:
    """A user with these policies and a key: (access key id, secret)."""
    identities = live.application.access.identities
    documents = [(f"{name}-{i}", json.dumps(doc)) for i, doc in enumerate(policies)]
    identities.create("user", name, documents, list(managed))
    key = identities.create_key(name)
    return key.access_key_id, key.secret_access_key


def allow(*actions: str, resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": resource, **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def deny(*actions: str, resource: str | list[str] = "*") -> dict[str, Any]:
    statement = {"Effect": "Deny", "Action": list(actions), "Resource": resource}
    return {"Version": "2012-10-17", "Statement": [statement]}


def signed_client(live: Running, key: tuple[str, str], service: str = "codepipeline") -> Any:
    return boto3.client(
        service,
        endpoint_url=live.endpoint,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def signed_request(
    live: Running,
    operation: str,
    params: Mapping[str, Any],
    key: tuple[str, str],
    *,
    service: str = "codepipeline",
    region: str = REGION,
) -> AWSRequest:
    """A request signed by botocore's signer, as a client would send it."""
    request = AWSRequest(
        method="POST",
        url=live.endpoint + "/",
        data=json.dumps(params).encode(),
        headers={
            "X-Amz-Target": f"{TARGET}.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials(*key), service, region).add_auth(request)
    return request


def send(
    live: Running,
    request: AWSRequest,
    change: Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    """Send ``request`` (its headers changed by ``change``, its body replaced by ``body``)."""
    parts = urlsplit(live.endpoint)
    headers = [(k, str(v)) for k, v in request.headers.items()]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", parts.netloc))
    if change is not None:
        headers = change(headers)
    payload = request.body if body is None else body
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(payload or b"")))
        connection.endheaders(payload)
        response = connection.getresponse()
        text = response.read()
        try:
            data = json.loads(text)
        except ValueError:
            data = {"text": text.decode()}
        return response.status, data
    finally:
        connection.close()
