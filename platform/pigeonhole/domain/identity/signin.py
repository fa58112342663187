"""The password sign-in flow: throttle, lockout, password, second factor, session.

Step one checks the password. Wrong passwords count per account; at the
tenant's ``lockout_attempts`` the account locks for ``lockout_minutes`` (or
until an administrator unlocks it) and every answer, even to the right
password, is exactly :data:`LOCKED`. Failures also count per client address,
across accounts, so one address cannot walk a list of accounts.

With a second factor on (or required for the user's role), step one answers
with a short-lived challenge token instead of a session; step two spends it
with a TOTP or recovery code. A trusted device token skips step two. Failure
counters are committed in their own transaction before the refusal is
raised: a refusal changes nothing else, but it must still count.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from pigeonhole.db.engine import Scope, tenant_tx
from pigeonhole.db.tables import AppUser, MfaChallenge, Role, UserCredential
from pigeonhole.domain import clock
from pigeonhole.domain.context import TenantInfo, tenant_context
from pigeonhole.domain.errors import DomainError, Forbidden, TooManyAttempts, Unauthenticated
from pigeonhole.domain.identity import audit, mfa, passwords, sessions, signin_settings, throttle, users
from pigeonhole.security.secrets import keyed_digest

log = logging.getLogger(__name__)

LOCKED = "This user account is locked. Too many unsuccessful login attempts."
WRONG = "The email address or the password is not correct."
CHALLENGE_PREFIX = "phc_"
CHALLENGE_LIFETIME = timedelta(minutes=5)
#: Wrong codes one challenge takes before it is spent; the user then signs in again.
CHALLENGE_ATTEMPTS = 5

#: Wrong TOTP / recovery codes per user across challenges: a guesser with the
#: password gets 10 tries per quarter hour, not a million.
TOTP_PER_USER = throttle.Rule(
    kind="totp-user",
    limit=10,
    window=timedelta(minutes=15),
    message="Too many wrong codes; wait before trying again.",
)


def ip_rule(tenant: TenantInfo) -> throttle.Rule:
    return throttle.Rule(
        kind="signin-ip",
        limit=signin_settings.of(tenant).signin_ip_max_failures,
        window=timedelta(minutes=15),
        message="Too many unsuccessful sign-ins from this address; try again later.",
    )


class AccountLocked(DomainError):
    """423 with exactly :data:`LOCKED`."""

    status_code = 423

    def __init__(self) -> None:
        super().__init__(LOCKED)


def _challenge_digest(token: str) -> str:
    return keyed_digest("mfa-challenge", token)


async def _user_by_email(scope: Scope, email: str) -> dict | None:
    return await users.find_by_email(scope, email)


async def _role_name(scope: Scope, role_id: UUID) -> str | None:
    row = await scope.select(Role.name).where(Role.id == role_id).first()
    return row["name"] if row else None


async def _password_allowed(scope: Scope, user: dict) -> bool:
    """Whether the tenant lets this user sign in with a password (SSO may be required)."""
    try:
        from pigeonhole.domain.identity import sso_settings
    except ImportError:  # single sign-on not part of this build
        return True
    return await sso_settings.password_signin_allowed(scope, user)


def _locked(cred: dict | None) -> bool:
    return bool(cred and cred["locked_until"] and cred["locked_until"] > clock.now())


async def _count_attempt(tenant: TenantInfo, user_id: UUID) -> int:
    """Count a password attempt on the account *before* checking it; returns the count.

    Counting first, with an atomic increment, bounds the guesses to the
    tenant's ``lockout_attempts`` even when a guesser sends them all at once:
    attempts beyond it are refused without checking the password. The count
    stays up while the account is locked; it starts again once the lock has
    passed, and a success or an administrator's unlock sets it to zero.
    """
    now = clock.now()
    async with tenant_tx(tenant.id) as scope:
        await mfa.ensure_credential(scope, user_id)
        await scope.update(
            UserCredential, {UserCredential.failed_attempts: 0, UserCredential.locked_until: None}
        ).where((UserCredential.user_id == user_id) & (UserCredential.locked_until <= now))
        [row] = await (
            scope.update(
                UserCredential,
                {
                    UserCredential.failed_attempts: UserCredential.failed_attempts + 1,
                    UserCredential.last_failure_at: now,
                },
            )
            .where(UserCredential.user_id == user_id)
            .returning(UserCredential.failed_attempts, UserCredential.locked_until)
        )
    if row["locked_until"] is not None and row["locked_until"] > now:
        raise AccountLocked()
    return row["failed_attempts"]


async def _lock(tenant: TenantInfo, user_id: UUID) -> None:
    settings = signin_settings.of(tenant)
    now = clock.now()
    async with tenant_tx(tenant.id) as scope:
        locked = await (
            scope.update(
                UserCredential,
                {UserCredential.locked_until: now + timedelta(minutes=settings.lockout_minutes)},
            )
            .where((UserCredential.user_id == user_id) & UserCredential.locked_until.is_null())
            .returning(UserCredential.id)
        )
    if locked:
        log.warning(
            "account locked after %d failed sign-ins: tenant=%s user=%s",
            settings.lockout_attempts,
            tenant.slug,
            user_id,
        )
        await _audit(tenant, "user.locked", user_id, {"failures": settings.lockout_attempts})


async def _address_failed(tenant: TenantInfo, ip: str) -> None:
    async with tenant_tx(tenant.id) as scope:
        await throttle.fail(scope, ip_rule(tenant), ip)


async def _audit(tenant: TenantInfo, action: str, user_id: UUID, data: dict | None = None) -> None:
    """Record a sign-in event nobody signed in performed (a lockout) in the tenant's audit log."""
    async with tenant_context(tenant) as ctx:
        await audit.record(ctx, action, target_type="user", target_id=user_id, data=data or {})


async def password_step(
    tenant: TenantInfo, email: str, password: str, *, meta: dict, device_token: str | None
) -> dict[str, Any]:
    """Step one. Returns ``{"status": "signed_in", "token", "session"}`` or a challenge."""
    ip = str(meta.get("ip") or "unknown")
    rule = ip_rule(tenant)
    async with tenant_tx(tenant.id, write=False) as scope:
        await throttle.check(scope, rule, ip)
        user = await _user_by_email(scope, email)
        cred = await mfa.credential(scope, user["id"]) if user else None
    if _locked(cred):
        log.warning("sign-in refused, account locked: tenant=%s user=%s", tenant.slug, user["id"])
        raise AccountLocked()
    limit = signin_settings.of(tenant).lockout_attempts
    attempt = await _count_attempt(tenant, user["id"]) if user else 0
    if attempt > limit:
        # Other attempts, running at the same time, used up the allowance.
        await _lock(tenant, user["id"])
        raise AccountLocked()
    ok = await passwords.verify(cred["password_hash"] if cred else None, password)
    if not ok:
        log.info("wrong password: tenant=%s user=%s ip=%s", tenant.slug, user["id"] if user else None, ip)
        await _address_failed(tenant, ip)
        if user is not None and attempt >= limit:
            await _lock(tenant, user["id"])
            raise AccountLocked()
        raise Unauthenticated(WRONG)
    assert user is not None and cred is not None
    rehashed = (
        await passwords.hash_password(password) if passwords.needs_rehash(cred["password_hash"]) else None
    )
    async with tenant_tx(tenant.id) as scope:
        if not await _password_allowed(scope, user):
            refused = True
            await scope.update(UserCredential, {UserCredential.failed_attempts: 0}).where(
                UserCredential.user_id == user["id"]
            )
        else:
            refused = False
            values: dict[Any, Any] = {UserCredential.failed_attempts: 0, UserCredential.locked_until: None}
            if rehashed is not None:
                values[UserCredential.password_hash] = rehashed
            await scope.update(UserCredential, values).where(UserCredential.user_id == user["id"])
            await throttle.clear(scope, rule, ip)
            role = await _role_name(scope, user["role_id"])
            required = role in signin_settings.of(tenant).mfa_required_roles
            challenge_kind = None
            if mfa.enabled(cred):
                if await mfa.trusted(scope, user["id"], device_token) is None:
                    challenge_kind = "verify"
            elif required:
                challenge_kind = "enrol"
            challenge = await _new_challenge(scope, user["id"], challenge_kind) if challenge_kind else None
    if refused:
        log.warning("password sign-in refused, SSO required: tenant=%s user=%s", tenant.slug, user["id"])
        raise Forbidden(
            "This organization signs in with single sign-on: use your organization's sign-in page."
        )
    if challenge is not None:
        token, expires = challenge
        return {
            "status": "mfa_required" if challenge_kind == "verify" else "mfa_enrolment_required",
            "challenge": token,
            "challenge_expires_at": expires,
        }
    token, info = await sessions.start(tenant, user["id"], method="password", request_meta=meta)
    return {"status": "signed_in", "token": token, "session": info}


async def _new_challenge(scope: Scope, user_id: UUID, kind: str) -> tuple[str, Any]:
    token = CHALLENGE_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    expires = now + CHALLENGE_LIFETIME
    await scope.insert(
        MfaChallenge,
        dict(
            id=uuid.uuid4(),
            user_id=user_id,
            digest=_challenge_digest(token),
            kind=kind,
            created_at=now,
            expires_at=expires,
        ),
    )
    return token, expires


async def _live_challenge(scope: Scope, token: str, kind: str) -> dict:
    row = None
    if token.startswith(CHALLENGE_PREFIX) and len(token) < 200:
        row = await scope.select(MfaChallenge).where(MfaChallenge.digest == _challenge_digest(token)).first()
    if row is None or row["kind"] != kind:
        log.warning("sign-in challenge refused (unknown): tenant=%s", scope.tenant_id)
        raise Unauthenticated("This sign-in step is not valid; sign in again with your password.")
    if row["used_at"] is not None:
        log.warning("sign-in challenge refused (used): tenant=%s user=%s", scope.tenant_id, row["user_id"])
        raise Unauthenticated("This sign-in step has already been used; sign in again with your password.")
    if row["expires_at"] <= clock.now():
        log.warning("sign-in challenge refused (expired): tenant=%s user=%s", scope.tenant_id, row["user_id"])
        raise Unauthenticated("This sign-in step has expired; sign in again with your password.")
    return row


async def _user(scope: Scope, user_id: UUID) -> dict:
    user = await scope.select(AppUser).where((AppUser.id == user_id) & (AppUser.status == "active")).first()
    if user is None:
        raise Unauthenticated("This account can no longer sign in.")
    return user


async def _count_wrong_code(tenant: TenantInfo, challenge: dict) -> TooManyAttempts | None:
    """Count a wrong code on the challenge and the user; a 429 to raise when either ran out."""
    async with tenant_tx(tenant.id) as scope:
        attempts = challenge["attempts"] + 1
        spent = attempts >= CHALLENGE_ATTEMPTS
        await scope.update(
            MfaChallenge,
            {MfaChallenge.attempts: attempts, MfaChallenge.used_at: clock.now() if spent else None},
        ).where(MfaChallenge.id == challenge["id"])
        blocked = await throttle.fail(scope, TOTP_PER_USER, str(challenge["user_id"]))
    log.warning("wrong second-factor code: tenant=%s user=%s", tenant.slug, challenge["user_id"])
    if blocked:
        return throttle.blocked_error(TOTP_PER_USER)
    if spent:
        return TooManyAttempts(
            "Too many wrong codes for this sign-in; sign in again with your password.", retry_after=1
        )
    return None


async def code_step(
    tenant: TenantInfo,
    challenge_token: str,
    *,
    code: str | None,
    recovery_code: str | None,
    remember_device: bool,
    meta: dict,
) -> dict[str, Any]:
    """Step two: a TOTP or recovery code spends the challenge and starts the session."""
    settings = signin_settings.of(tenant)
    async with tenant_tx(tenant.id, write=False) as scope:
        challenge = await _live_challenge(scope, challenge_token, "verify")
        await throttle.check(scope, TOTP_PER_USER, str(challenge["user_id"]))
    user_id = challenge["user_id"]
    device_token = None
    async with tenant_tx(tenant.id) as scope:
        await _user(scope, user_id)
        cred = await mfa.credential(scope, user_id)
        if recovery_code:
            ok = await mfa.use_recovery_code(scope, user_id, recovery_code)
        else:
            ok = await mfa.check_totp(scope, cred, code or "") if cred else False
        if ok:
            spent = await (
                scope.update(MfaChallenge, {MfaChallenge.used_at: clock.now()})
                .where((MfaChallenge.id == challenge["id"]) & MfaChallenge.used_at.is_null())
                .returning(MfaChallenge.id)
            )
            if not spent:
                raise Unauthenticated(
                    "This sign-in step has already been used; sign in again with your password."
                )
            await throttle.clear(scope, TOTP_PER_USER, str(user_id))
            if remember_device:
                label = str(meta.get("user_agent") or "")[:200]
                device_token = await mfa.remember_device(
                    scope, user_id, label=label, days=settings.mfa_remember_days
                )
    if not ok:
        error = await _count_wrong_code(tenant, challenge)
        if error is not None:
            raise error
        raise Unauthenticated(
            "That code is not correct." if not recovery_code else "That recovery code is not valid."
        )
    method = "password+recovery_code" if recovery_code else "password+totp"
    token, info = await sessions.start(tenant, user_id, method=method, request_meta=meta)
    out: dict[str, Any] = {"status": "signed_in", "token": token, "session": info}
    if device_token:
        out["device_token"] = device_token
    return out


async def enrolment_begin(tenant: TenantInfo, challenge_token: str) -> dict[str, Any]:
    """For a user whose role requires MFA and who has none: a secret to scan, under the challenge."""
    async with tenant_tx(tenant.id) as scope:
        challenge = await _live_challenge(scope, challenge_token, "enrol")
        user = await _user(scope, challenge["user_id"])
        return await mfa.begin_enrolment(scope, tenant, user)


async def enrolment_finish(
    tenant: TenantInfo, challenge_token: str, code: str, *, meta: dict
) -> dict[str, Any]:
    """Confirm the enrolment with a code; the user is signed in and gets the recovery codes."""
    async with tenant_tx(tenant.id, write=False) as scope:
        challenge = await _live_challenge(scope, challenge_token, "enrol")
        await throttle.check(scope, TOTP_PER_USER, str(challenge["user_id"]))
    try:
        async with tenant_tx(tenant.id) as scope:
            await _user(scope, challenge["user_id"])
            codes = await mfa.confirm_enrolment(scope, challenge["user_id"], code)
            await scope.update(MfaChallenge, {MfaChallenge.used_at: clock.now()}).where(
                MfaChallenge.id == challenge["id"]
            )
    except DomainError as exc:
        if exc.status_code == 422:
            error = await _count_wrong_code(tenant, challenge)
            if error is not None:
                raise error from exc
        raise
    token, info = await sessions.start(
        tenant, challenge["user_id"], method="password+totp", request_meta=meta
    )
    return {"status": "signed_in", "token": token, "session": info, "recovery_codes": codes}


# --- administrators and the user themselves --------------------------------------------------


async def unlock(tenant: TenantInfo, user_id: UUID) -> bool:
    """Lift a lockout now; False when the account was not locked."""
    async with tenant_tx(tenant.id) as scope:
        was = await (
            scope.update(
                UserCredential, {UserCredential.locked_until: None, UserCredential.failed_attempts: 0}
            )
            .where((UserCredential.user_id == user_id) & (UserCredential.locked_until > clock.now()))
            .returning(UserCredential.id)
        )
        await scope.update(
            UserCredential, {UserCredential.failed_attempts: 0, UserCredential.locked_until: None}
        ).where(UserCredential.user_id == user_id)
    return bool(was)


async def status(scope: Scope, tenant: TenantInfo, user_id: UUID) -> dict[str, Any]:
    cred = await mfa.credential(scope, user_id)
    return {
        "user_id": user_id,
        "has_password": bool(cred and cred["password_hash"]),
        "password_set_at": cred["password_set_at"] if cred else None,
        "locked": _locked(cred),
        "locked_until": cred["locked_until"] if _locked(cred) else None,
        "failed_attempts": cred["failed_attempts"] if cred else 0,
        "mfa_enabled": mfa.enabled(cred),
        "recovery_codes_left": await mfa.recovery_codes_left(scope, user_id) if mfa.enabled(cred) else 0,
    }


async def change_password(
    tenant: TenantInfo, user_id: UUID, current: str, new: str, *, keep_session: UUID | None
) -> None:
    """A signed-in user changes their password; their other sessions end."""
    settings = signin_settings.of(tenant)
    async with tenant_tx(tenant.id, write=False) as scope:
        user = await _user(scope, user_id)
        cred = await mfa.credential(scope, user_id)
    if not await passwords.verify(cred["password_hash"] if cred else None, current):
        raise Forbidden("The current password is not correct; nothing was changed.")
    passwords.check_policy(new, email=user["email"], min_length=settings.password_min_length)
    hashed = await passwords.hash_password(new)
    async with tenant_tx(tenant.id) as scope:
        await scope.update(
            UserCredential,
            {
                UserCredential.password_hash: hashed,
                UserCredential.password_set_at: clock.now(),
                UserCredential.updated_at: clock.now(),
            },
        ).where(UserCredential.user_id == user_id)
    await sessions.end_all(tenant, user_id, reason="password changed", keep=keep_session)


async def check_password(tenant: TenantInfo, user_id: UUID, password: str) -> bool:
    async with tenant_tx(tenant.id, write=False) as scope:
        cred = await mfa.credential(scope, user_id)
    return await passwords.verify(cred["password_hash"] if cred else None, password)


async def user_by_email(tenant: TenantInfo, email: str) -> dict | None:
    async with tenant_tx(tenant.id, write=False) as scope:
        return await _user_by_email(scope, email)
