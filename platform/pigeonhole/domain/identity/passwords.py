"""Password hashing (argon2id) and the password policy.

argon2id is memory-hard, so a stolen table costs an attacker real hardware per
guess. Hashing takes tens of milliseconds of CPU on purpose: it runs in a
worker thread so one sign-in never stalls the event loop that serves every
other request. The parameters live in the hash itself; when we raise them, a
successful sign-in rehashes the password with the new ones
(:func:`needs_rehash`).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pigeonhole.domain.errors import Invalid

#: argon2-cffi's defaults are RFC 9106's "low memory" profile of argon2id
#: (t=3, m=64 MiB, p=4): the hasher is built with them explicitly, so a
#: library upgrade that changes its defaults changes nothing without a decision.
HASHER = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16)

DEFAULT_MIN_LENGTH = 12
#: Long enough for any passphrase, short enough that hashing stays cheap to refuse.
MAX_LENGTH = 256

#: Verified when the account does not exist, so that answer takes as long as a wrong password.
_DUMMY_HASH = HASHER.hash("pigeonhole-dummy-password-for-timing")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify(stored: str | None, password: str) -> bool:
    """True when ``password`` matches; with no stored hash, spends the same time and says False."""
    if len(password) > MAX_LENGTH:
        return False
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def check_policy(password: str, *, email: str, min_length: int = DEFAULT_MIN_LENGTH) -> None:
    """Refuse a password a guesser would try first; the message says which rule it breaks."""
    if len(password) < min_length:
        raise Invalid(f"The password must have at least {min_length} characters.", field="password")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"The password must have at most {MAX_LENGTH} characters.", field="password")
    if not password.strip():
        raise Invalid("The password cannot be only spaces.", field="password")
    lowered = password.strip().lower()
    address = email.strip().lower()
    local = address.split("@", 1)[0]
    if lowered == local or (address and address in lowered):
        raise Invalid("The password cannot be your email address.", field="password")
    if len(set(lowered)) < 4:
        raise Invalid("The password is too simple: use more different characters.", field="password")
