"""TOTP second factor: enrolment, codes, recovery codes, trusted devices.

The TOTP secret is sealed at rest (it must be read back to check a code, so
it cannot be hashed) and becomes active only once the user proves, with a
code, that their authenticator app holds it. A code is accepted once: the
time step it belongs to is remembered, so a code read over a shoulder cannot
be replayed within its 30 seconds. Ten recovery codes are shown once and
stored as keyed digests; each works once.

"Do not challenge me on this device again" gives the browser a device token:
the device row's id and expiry, signed with the server's key. The signature
makes it unforgeable, the row makes it revocable (by the user, or an
administrator) and listable. See docs/decisions/0012-mfa-and-trusted-devices.md.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any
from uuid import UUID

import msgspec
import pyotp
import segno

from pigeonhole.db.engine import Scope
from pigeonhole.db.tables import MfaRecoveryCode, TrustedDevice, UserCredential
from pigeonhole.domain import clock
from pigeonhole.domain.context import TenantInfo
from pigeonhole.domain.errors import Conflict, Invalid, NotFound
from pigeonhole.security.secrets import keyed_digest, seal, unseal
from pigeonhole.settings import get_settings

log = logging.getLogger(__name__)

RECOVERY_CODES = 10
DEVICE_PREFIX = "phd_"
DEVICE_COOKIE = "ph_device"
DEVICE_HEADER = "x-device-token"
#: Codes of the previous and the next 30-second step are accepted too (clock drift).
VALID_WINDOW = 1


# --- credential row -----------------------------------------------------------------


async def credential(scope: Scope, user_id: UUID) -> dict | None:
    return await scope.select(UserCredential).where(UserCredential.user_id == user_id).first()


async def ensure_credential(scope: Scope, user_id: UUID) -> dict:
    """The user's credential row, created empty the first time it is needed."""
    row = await credential(scope, user_id)
    if row is None:
        await scope.insert(
            UserCredential, dict(id=uuid.uuid4(), user_id=user_id, updated_at=clock.now())
        ).on_conflict(target=(UserCredential.tenant_id, UserCredential.user_id), action="DO NOTHING")
        row = await credential(scope, user_id)
    assert row is not None
    return row


def enabled(cred: dict | None) -> bool:
    return bool(cred and cred["totp_secret"] and cred["totp_enabled_at"])


# --- TOTP ---------------------------------------------------------------------------------


def _totp(sealed: str) -> pyotp.TOTP:
    secret = unseal(sealed)
    if secret is None:
        raise RuntimeError("the TOTP secret cannot be unsealed: was PIGEONHOLE_SECRET_KEY changed?")
    return pyotp.TOTP(secret)


def _normalize_code(code: str) -> str:
    return "".join(code.split())


def matching_step(sealed: str, code: str, last_step: int | None) -> int | None:
    """The time step the code belongs to, if it is valid and not used before; else None."""
    code = _normalize_code(code)
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = _totp(sealed)
    now = clock.now()
    current = totp.timecode(now)
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        step = current + offset
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def begin_enrolment(scope: Scope, tenant: TenantInfo, user: dict) -> dict[str, Any]:
    """A fresh secret, pending until confirmed: the otpauth URI and its QR code (SVG data URI)."""
    cred = await ensure_credential(scope, user["id"])
    if enabled(cred):
        raise Conflict("Two-factor authentication is already on; turn it off first to enrol a new device.")
    secret = pyotp.random_base32()
    await scope.update(
        UserCredential, {UserCredential.totp_pending: seal(secret), UserCredential.updated_at: clock.now()}
    ).where(UserCredential.user_id == user["id"])
    uri = pyotp.TOTP(secret).provisioning_uri(name=user["email"], issuer_name=f"Pigeonhole {tenant.name}")
    return {
        "secret": secret,
        "otpauth_uri": uri,
        "qr_svg": segno.make(uri, error="m").svg_data_uri(scale=4, border=2),
    }


async def confirm_enrolment(scope: Scope, user_id: UUID, code: str) -> list[str]:
    """Turn TOTP on with the pending secret once a code from it checks; returns the recovery codes."""
    cred = await credential(scope, user_id)
    if cred is None or not cred["totp_pending"]:
        raise Conflict("There is no enrolment to confirm; start one first.")
    step = matching_step(cred["totp_pending"], code, None)
    if step is None:
        raise Invalid(
            "That code is not valid for this enrolment; check your authenticator app's clock.", field="code"
        )
    now = clock.now()
    await scope.update(
        UserCredential,
        {
            UserCredential.totp_secret: cred["totp_pending"],
            UserCredential.totp_pending: None,
            UserCredential.totp_enabled_at: now,
            UserCredential.totp_last_step: step,
            UserCredential.updated_at: now,
        },
    ).where(UserCredential.user_id == user_id)
    return await new_recovery_codes(scope, user_id)


async def disable(scope: Scope, user_id: UUID, *, by: str) -> None:
    """Turn TOTP off: secret, recovery codes and trusted devices go with it."""
    now = clock.now()
    await scope.update(
        UserCredential,
        {
            UserCredential.totp_secret: None,
            UserCredential.totp_pending: None,
            UserCredential.totp_enabled_at: None,
            UserCredential.totp_last_step: None,
            UserCredential.updated_at: now,
        },
    ).where(UserCredential.user_id == user_id)
    await scope.delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id)
    await scope.update(TrustedDevice, {TrustedDevice.revoked_at: now, TrustedDevice.revoked_by: by}).where(
        (TrustedDevice.user_id == user_id) & TrustedDevice.revoked_at.is_null()
    )


async def check_totp(scope: Scope, cred: dict, code: str) -> bool:
    """Accept a current TOTP code once; remembers its step so it cannot be replayed."""
    if not enabled(cred):
        return False
    step = matching_step(cred["totp_secret"], code, cred["totp_last_step"])
    if step is None:
        return False
    updated = await (
        scope.update(UserCredential, {UserCredential.totp_last_step: step})
        .where(
            (UserCredential.user_id == cred["user_id"])
            & (UserCredential.totp_last_step.is_null() | (UserCredential.totp_last_step < step))
        )
        .returning(UserCredential.id)
    )
    return bool(updated)


# --- recovery codes -------------------------------------------------------------------------


def _recovery_digest(user_id: UUID, code: str) -> str:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return keyed_digest("mfa-recovery", user_id, normalized)


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 16 chars, 80 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


async def new_recovery_codes(scope: Scope, user_id: UUID) -> list[str]:
    """Replace the user's recovery codes with ten new ones, returned in clear this once."""
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    now = clock.now()
    await scope.delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id)
    await scope.insert(
        MfaRecoveryCode,
        *(
            dict(id=uuid.uuid4(), user_id=user_id, digest=_recovery_digest(user_id, c), created_at=now)
            for c in codes
        ),
    )
    return codes


async def use_recovery_code(scope: Scope, user_id: UUID, code: str) -> bool:
    used = await (
        scope.update(MfaRecoveryCode, {MfaRecoveryCode.used_at: clock.now()})
        .where(
            (MfaRecoveryCode.user_id == user_id)
            & (MfaRecoveryCode.digest == _recovery_digest(user_id, code))
            & MfaRecoveryCode.used_at.is_null()
        )
        .returning(MfaRecoveryCode.id)
    )
    return bool(used)


async def recovery_codes_left(scope: Scope, user_id: UUID) -> int:
    return await scope.count(MfaRecoveryCode).where(
        (MfaRecoveryCode.user_id == user_id) & MfaRecoveryCode.used_at.is_null()
    )


# --- trusted devices -----------------------------------------------------------------------


def _device_key() -> bytes:
    return hmac.new(get_settings().secret_key.encode(), b"mfa-device-token", sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_device_token(tenant_id: UUID, user_id: UUID, device_id: UUID, expires_at: datetime) -> str:
    payload = _b64(
        msgspec.json.encode(
            {"t": str(tenant_id), "u": str(user_id), "d": str(device_id), "e": int(expires_at.timestamp())}
        )
    )
    signature = _b64(hmac.new(_device_key(), payload.encode(), sha256).digest())
    return f"{DEVICE_PREFIX}{payload}.{signature}"


def read_device_token(token: str) -> dict | None:
    """The signed claims of a device token, or None when forged, malformed or expired."""
    if not token or not token.startswith(DEVICE_PREFIX) or len(token) > 1000:
        return None
    payload, _, signature = token[len(DEVICE_PREFIX) :].partition(".")
    expected = _b64(hmac.new(_device_key(), payload.encode(), sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        claims = msgspec.json.decode(_unb64(payload))
        claims = {
            "t": UUID(claims["t"]),
            "u": UUID(claims["u"]),
            "d": UUID(claims["d"]),
            "e": int(claims["e"]),
        }
    except (ValueError, KeyError, TypeError, msgspec.DecodeError):
        return None
    if claims["e"] <= clock.now().timestamp():
        return None
    return claims


async def remember_device(scope: Scope, user_id: UUID, *, label: str, days: int) -> str:
    now = clock.now()
    device_id = uuid.uuid4()
    expires = now + timedelta(days=days)
    await scope.insert(
        TrustedDevice,
        dict(
            id=device_id,
            user_id=user_id,
            label=label[:200],
            created_at=now,
            expires_at=expires,
            last_used_at=now,
        ),
    )
    return sign_device_token(scope.tenant_id, user_id, device_id, expires)


async def trusted(scope: Scope, user_id: UUID, token: str | None) -> UUID | None:
    """The trusted device this token proves for this user, or None."""
    claims = read_device_token(token or "")
    if claims is None or claims["t"] != scope.tenant_id or claims["u"] != user_id:
        return None
    now = clock.now()
    updated = await (
        scope.update(TrustedDevice, {TrustedDevice.last_used_at: now})
        .where(
            (TrustedDevice.id == claims["d"])
            & (TrustedDevice.user_id == user_id)
            & TrustedDevice.revoked_at.is_null()
            & (TrustedDevice.expires_at > now)
        )
        .returning(TrustedDevice.id)
    )
    return claims["d"] if updated else None


def device_out(row: dict) -> dict:
    return {
        "id": row["id"],
        "label": row["label"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "last_used_at": row["last_used_at"],
    }


async def devices(scope: Scope, user_id: UUID) -> list[dict]:
    rows = (
        await scope.select(TrustedDevice)
        .where(
            (TrustedDevice.user_id == user_id)
            & TrustedDevice.revoked_at.is_null()
            & (TrustedDevice.expires_at > clock.now())
        )
        .order_by(TrustedDevice.created_at, ascending=False)
    )
    return [device_out(r) for r in rows]


async def revoke_device(scope: Scope, user_id: UUID, device_id: UUID, *, by: str) -> None:
    revoked = await (
        scope.update(TrustedDevice, {TrustedDevice.revoked_at: clock.now(), TrustedDevice.revoked_by: by})
        .where(
            (TrustedDevice.id == device_id)
            & (TrustedDevice.user_id == user_id)
            & TrustedDevice.revoked_at.is_null()
        )
        .returning(TrustedDevice.id)
    )
    if not revoked:
        raise NotFound("Trusted device", device_id)
    log.info("trusted device revoked: user=%s device=%s by=%s", user_id, device_id, by)
