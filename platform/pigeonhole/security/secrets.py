"""Keyed digests and sealed payloads.

Pickup codes have six digits: a plain hash of one is reversed by trying a
million values. They are stored as HMAC-SHA256 digests under the server's
secret key, scoped to tenant and bank, so a copy of the database alone reveals
nothing, and a code can still be looked up in one indexed query (a salted
password hash could not be). API keys are long random strings: the same digest
suits them. The one place a code must exist in clear is the message that
carries it to the recipient; that text is sealed (Fernet) until sent and wiped
after. See docs/decisions/0006-codes-and-secrets.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets

from cryptography.fernet import Fernet, InvalidToken

from pigeonhole.settings import get_settings


def _key(purpose: str) -> bytes:
    return hmac.new(get_settings().secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def keyed_digest(*parts: object) -> str:
    message = "\x1f".join(str(p) for p in parts).encode()
    return hmac.new(_key("digest"), message, hashlib.sha256).hexdigest()


def new_api_key() -> str:
    return "ph_" + _secrets.token_urlsafe(32)


def seal(plaintext: str) -> str:
    return Fernet(base64.urlsafe_b64encode(_key("seal"))).encrypt(plaintext.encode()).decode()


def unseal(token: str) -> str | None:
    try:
        return Fernet(base64.urlsafe_b64encode(_key("seal"))).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
