"""The installation's secret key, and sealing secrets with it (Fernet: AES-128-CBC + HMAC).

The key is the ``secret_key`` setting when it is given (servers sharing one database must
share it), else the file ``secret.key`` in the home, made on first use, readable by its owner
only. Access keys' secrets are kept sealed; the server opens one to check a signature.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

KEY_FILE = "secret.key"


class CipherError(RuntimeError):
    """A key that cannot be used, or a secret sealed with another key."""


class Cipher:
    def __init__(self, key: bytes) -> None:
        from cryptography.fernet import Fernet

        try:
            self._fernet: Fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise CipherError(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from exc

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise CipherError(
                "a secret was sealed with another key: give every server and command of this"
                " database the same secret_key setting"
            ) from exc


def load_cipher(home: Path, key: str | None = None) -> Cipher:
    """The cipher of the key given, or of the home's key file (made when there is none)."""
    return Cipher(secret_key(home, key))


def secret_key(home: Path, key: str | None = None) -> bytes:
    """The key given, or the home's key file's (made when there is none), as bytes."""
    if key:
        return key.encode("ascii")
    path = home / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    # A Fernet key: 32 random bytes, url-safe base64 (what Fernet.generate_key makes).
    made = base64.urlsafe_b64encode(os.urandom(32))
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()  # another process made it first
    with os.fdopen(fd, "wb") as file:
        file.write(made + b"\n")
    return made


class LazyCipher:
    """The home's cipher, loaded (and its key file made) the first time it is used: most
    processes never seal or open anything, and the cryptography library takes a while to
    import."""

    def __init__(self, home: Path, key: str | None = None) -> None:
        self._home = home
        self._key = key
        self._cipher: Cipher | None = None
        self._lock = threading.Lock()

    def load(self) -> Cipher:
        """The cipher, or `CipherError` for a key that cannot be used."""
        if self._cipher is None:
            with self._lock:
                if self._cipher is None:
                    self._cipher = load_cipher(self._home, self._key)
        return self._cipher

    def secret(self) -> bytes:
        """The key itself, without loading the cipher: for keys derived from it
        (`conveyor.auth.artifactkeys`)."""
        return secret_key(self._home, self._key)

    def seal(self, text: str) -> str:
        return self.load().seal(text)

    def open(self, token: str) -> str:
        return self.load().open(token)
