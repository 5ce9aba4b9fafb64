"""Cross-site request forgery: every state-changing form carries a token that a page of
another site cannot know.

The token is a random nonce with its HMAC under the installation's key (the key that signs
API page tokens), kept in a ``SameSite=Strict`` cookie and repeated in a hidden field of
each form. A POST is accepted only when both are present, equal and signed by this
installation: another site can make a browser send the cookie, but can neither read it nor
forge a signed one, so it cannot fill in the field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "conveyor_csrf"
FIELD = "csrf"


class Tokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        nonce = secrets.token_hex(16)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` was issued by this installation."""
        nonce, _, signature = (token or "").partition(".")
        return bool(nonce) and hmac.compare_digest(signature, self._sign(nonce))

    def accepts(self, cookie: str | None, field: str | None) -> bool:
        """Whether a form's field matches its cookie and both are this installation's."""
        return self.valid(cookie) and field is not None and hmac.compare_digest(cookie or "", field)
