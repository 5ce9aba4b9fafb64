"""Sending one notification to one target: a Webhook's signed POST, a Slack message, an SNS
publish. Each send has a time-out; any answer but a 2xx, and any connection error or
time-out, is a failure that says why, and the outbox retries it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, urlsplit

from conveyor.notify import statuses
from conveyor.notify.messages import slack_message
from conveyor.notify.posting import Closed, Connection
from conveyor.notify.statuses import StatusHost

SIGNATURE_HEADER = "X-Conveyor-Signature-256"
USER_AGENT = "Conveyor-Notifications"


class SendFailed(Exception):
    """A notification that did not reach its target; the message says why."""


@dataclass(frozen=True, slots=True)
class Destination:
    type: str
    address: str
    secret: str | None = None
    # A commit status's: the host that takes it.
    host: StatusHost | None = None


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Connections(threading.local):
    """Each sending thread's open connections, by scheme and host: kept alive from one
    notification to the next (a new TCP connection per POST would cost more than the POST,
    on both sides)."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], Connection] = {}


_connections = _Connections()


def _connection(parts: SplitResult, timeout: float) -> Connection:
    kept = _connections.open.get((parts.scheme, parts.netloc))
    if kept is not None:
        return kept
    made = _connections.open[(parts.scheme, parts.netloc)] = Connection(parts, timeout)
    return made


def close_connections() -> None:
    """Close the calling thread's kept connections (a sender does, once its queue is sent)."""
    while _connections.open:
        _connections.open.popitem()[1].close()


def _forget(scheme: str, netloc: str) -> None:
    kept = _connections.open.pop((scheme, netloc), None)
    if kept is not None:
        kept.close()


def _proxied(scheme: str, host: str) -> bool:
    """Whether the environment sends requests to ``host`` through a proxy."""
    return scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host)


def _post_through_proxy(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    """A POST as urllib makes it, honouring ``HTTP(S)_PROXY`` (no connection kept)."""
    request = urllib.request.Request(url, body, headers, method="POST")
    # An opener of its own, whose proxies are read from the environment now (urlopen's
    # shared opener keeps those of its first call).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler())
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as error:
        raise SendFailed(f"HTTP {error.code} from {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise SendFailed(f"cannot reach {url}: {reason}") from None


@lru_cache(maxsize=4096)
def _split(url: str) -> tuple[SplitResult, str]:
    """A URL's parts, and the request target (path and query) a POST to it names."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts, target


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    parts, target = _split(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SendFailed(f"cannot reach {url}: not an http(s) URL")
    # The environment's proxies are looked at as a connection is opened (reading them costs
    # more than a POST on a kept connection): a kept one was opened without a proxy.
    kept = (parts.scheme, parts.netloc) in _connections.open
    if not kept and _proxied(parts.scheme, parts.hostname or ""):
        sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        _post_through_proxy(url, body, sent, timeout)
        return
    sent = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Content-Length": str(len(body)),
        **headers,
    }
    for attempt in (1, 2):
        reused = (parts.scheme, parts.netloc) in _connections.open
        try:
            status, over = _connection(parts, timeout).post(target, sent, body)
            if over:
                _forget(parts.scheme, parts.netloc)
        except (Closed, ConnectionResetError, BrokenPipeError) as error:
            _forget(parts.scheme, parts.netloc)
            if reused and attempt == 1:
                continue  # the receiver closed a kept connection: once more on a new one
            raise SendFailed(f"cannot reach {url}: {error}") from None
        except (OSError, ValueError) as error:
            _forget(parts.scheme, parts.netloc)
            raise SendFailed(f"cannot reach {url}: {error}") from None
        if not 200 <= status < 300:
            raise SendFailed(f"HTTP {status} from {url}")
        return


class Sender:
    def __init__(
        self,
        console_url: str,
        aws_endpoints: Mapping[str, str],
        region: str,
        timeout: float = 10.0,
    ) -> None:
        self._console = console_url
        self._endpoints = aws_endpoints
        self._region = region
        self._timeout = timeout

    def send(self, destination: Destination, note: dict[str, Any] | str) -> None:
        """Send ``note``: an object, or its JSON as the outbox keeps it (compact, what a
        Webhook sends as it is)."""
        if destination.type == "Webhook":
            text = note if isinstance(note, str) else json.dumps(note, separators=(",", ":"))
            body = text.encode()
            headers = {}
            if destination.secret:
                headers[SIGNATURE_HEADER] = signature(destination.secret, body)
            _post(destination.address, body, headers, self._timeout)
            return
        payload: dict[str, Any] = json.loads(note) if isinstance(note, str) else note
        if destination.type == "Slack":
            body = json.dumps(slack_message(payload, self._console)).encode()
            _post(destination.address, body, {}, self._timeout)
        elif destination.type == "SNS":
            self._publish(destination.address, payload)
        elif destination.type == "CommitStatus" and destination.host is not None:
            body = statuses.encoded(payload["body"])
            _post(destination.address, body, statuses.headers(destination.host), self._timeout)
        else:
            raise SendFailed(f"target type {destination.type} is not one Conveyor sends to")

    def _publish(self, topic: str, note: dict[str, Any]) -> None:
        endpoint = self._endpoints.get("sns")
        if endpoint is None:
            raise SendFailed("no SNS endpoint in the aws_endpoints setting")
        # Imported at the first publish: a deliverer that sends none starts without boto3.
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client: Any = boto3.session.Session().client(
            "sns",
            region_name=topic.split(":")[3] or self._region,
            endpoint_url=None if endpoint == "aws" else endpoint,
            config=Config(
                connect_timeout=self._timeout,
                read_timeout=self._timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )
        try:
            client.publish(TopicArn=topic, Message=json.dumps(note))
        except (ClientError, BotoCoreError) as error:
            raise SendFailed(f"SNS refused: {error}") from None
