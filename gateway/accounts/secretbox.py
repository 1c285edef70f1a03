"""Provider keys at rest (BYOK): Fernet under a key derived from the server secret.

The Fernet key is HKDF-SHA256 over ``accounts.secret`` with a random salt stored once in the
database (``settings.byok_salt``), so the same secret gives different keys on different
deployments. The secret must be at least 32 bytes (checked with the config). Values sealed by
older versions, under the bare ``sha256(secret)``, still open; they are sealed again under the
new key the next time the user stores that provider's key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_BYTES = 32
SALT_SETTING = "byok_salt"
_INFO = b"gateway byok fernet v2"


def new_salt() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()


def derive_key(secret: str, salt: str) -> bytes:
    """The Fernet key for ``secret`` and the deployment's ``salt``."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt.encode(), info=_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def _legacy_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


class SecretBox:
    """Seals with the derived key; opens what it or an older version sealed.

    The salt lives in the database, so the key is derived once the store is open: ``unlock``
    (``AccountServices.start``) or a ``salt`` given here.
    """

    def __init__(self, secret: str, salt: str | None = None) -> None:
        self._secret = secret
        self._fernet: MultiFernet | None = None
        if secret and salt is not None:
            self.unlock(salt)

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    def unlock(self, salt: str) -> None:
        """Derive the key from the secret and the deployment's ``salt``."""
        current = Fernet(derive_key(self._secret, salt))
        self._fernet = MultiFernet([current, Fernet(_legacy_key(self._secret))])

    def seal(self, plaintext: str) -> str:
        assert self._fernet is not None, "SecretBox.unlock first"
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str | None:
        if self._fernet is None:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
