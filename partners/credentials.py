"""Partner secrets: generation, hashing, encryption at rest, and constant-time checks."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@dataclass(frozen=True)
class Credentials:
    """Plain-text credentials: exist only in the response that creates or rotates them."""

    api_key: str
    hmac_key: str
    hmac_secret: str


def generate(hmac_secret: str | None = None) -> Credentials:
    return Credentials(
        api_key="lk_" + secrets.token_urlsafe(32),
        hmac_key="hk_" + secrets.token_hex(16),
        hmac_secret=hmac_secret or secrets.token_urlsafe(32),
    )


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def api_key_matches(api_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(api_key), stored_hash)


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def encrypt_secret(secret: str) -> str:
    return _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet(settings.FIELD_ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken as exc:  # wrong FIELD_ENCRYPTION_KEY: fail loudly, never silently
        raise RuntimeError("cannot decrypt a partner secret: check FIELD_ENCRYPTION_KEY") from exc
