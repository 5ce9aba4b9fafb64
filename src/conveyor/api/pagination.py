"""Opaque page tokens, signed and bound to the operation and query that issued them.

A token carries where the next page starts. It is valid only for the same operation with the
same filters (page size may change between pages); anything else, or a token we did not sign,
is an ``InvalidNextTokenException``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from conveyor.domain.errors import InvalidNextTokenException

_SIGNATURE_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, operation: str, query: Mapping[str, Any], body: bytes) -> bytes:
        bound = json.dumps([operation, query], sort_keys=True, separators=(",", ":")).encode()
        mac = hmac.new(self._key, bound + b"\0" + body, hashlib.sha256)
        return mac.digest()[:_SIGNATURE_BYTES]

    def issue(self, operation: str, query: Mapping[str, Any], position: Any) -> str:
        body = json.dumps(position, separators=(",", ":")).encode()
        return _b64(body) + "." + _b64(self._sign(operation, query, body))

    def read(self, operation: str, query: Mapping[str, Any], token: str | None) -> Any:
        """The position a token carries; None when there is no token."""
        if token is None:
            return None
        invalid = InvalidNextTokenException(
            f"The next token '{token}' was not issued by a previous {operation} call with "
            "the same parameters."
        )
        try:
            body_text, signature_text = token.split(".")
            body, signature = _unb64(body_text), _unb64(signature_text)
        except ValueError as exc:
            raise invalid from exc
        if not hmac.compare_digest(signature, self._sign(operation, query, body)):
            raise invalid
        try:
            return json.loads(body)
        except ValueError as exc:  # pragma: no cover - signed bodies are always JSON
            raise invalid from exc
