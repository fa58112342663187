"""Welcome and password-reset links: single use, expiring, stored as digests.

A new user gets a welcome mail with a link to set a first password; "Forgot
your password?" mails a link to set a new one. Both carry a random token
(``phl_`` + 256 bits) whose keyed digest is all the database keeps, so the
mail is the only place the link exists. The link is sealed in the
notification row until the mail is sent, like a pickup code (0006).

"Forgot your password?" answers the same whether the address belongs to an
account or not, and mails at most a few links per account per hour so it
cannot be used to flood someone's inbox. Using a link spends it, ends every
session of the user, and lifts a lockout (whoever reads the mailbox owns the
account). A link that is unknown, spent or expired is refused with 410, the
refusal logged, nothing changed.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from pigeonhole.api import Recipient
from pigeonhole.db.engine import Scope
from pigeonhole.db.tables import AppUser, SigninLink, UserCredential
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx, TenantInfo, tenant_context
from pigeonhole.domain.errors import DomainError, NotFound
from pigeonhole.domain.identity import mfa, passwords, sessions, signin_settings, throttle, users
from pigeonhole.messaging import notify
from pigeonhole.security.secrets import keyed_digest
from pigeonhole.settings import get_settings

log = logging.getLogger(__name__)

PREFIX = "phl_"
WELCOME = "welcome"
RESET = "reset"
EVENTS = {WELCOME: "account.welcome", RESET: "account.password_reset"}

#: Reset mails per account per hour; more requests are answered the same and mail nothing.
MAILS_PER_ACCOUNT = throttle.Rule(
    kind="reset-mail-user", limit=3, window=timedelta(hours=1), message="Too many reset mails"
)
#: "Forgot your password?" requests per address: this one is told to wait.
FORGOT_PER_IP = throttle.Rule(
    kind="reset-ip",
    limit=20,
    window=timedelta(minutes=15),
    message="Too many password reset requests from this address; try again later.",
)

#: The one answer to "Forgot your password?", whatever the address.
FORGOT_ANSWER = (
    "If an account uses this address, we have sent it a link to choose a new password. "
    "The link works once and expires soon."
)


class LinkRefused(DomainError):
    """410: the link was never valid here, has been used, or has expired."""

    status_code = 410


def digest(token: str) -> str:
    return keyed_digest("signin-link", token)


def link_url(tenant: TenantInfo, token: str) -> str:
    """Where the mail points: the set-password endpoint (the admin front end will put its page here)."""
    settings = get_settings()
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    return f"{base}/api/v1/t/{tenant.slug}/auth/password/set?token={token}"


async def _issue(scope: Scope, user_id: UUID, purpose: str, lifetime: timedelta) -> str:
    """A new link for the user; earlier unused links of the same purpose stop working."""
    now = clock.now()
    await scope.update(SigninLink, {SigninLink.used_at: now}).where(
        (SigninLink.user_id == user_id) & (SigninLink.purpose == purpose) & SigninLink.used_at.is_null()
    )
    token = PREFIX + secrets.token_urlsafe(32)
    await scope.insert(
        SigninLink,
        dict(
            id=uuid.uuid4(),
            user_id=user_id,
            purpose=purpose,
            digest=digest(token),
            created_at=now,
            expires_at=now + lifetime,
        ),
    )
    return token


async def _mail(ctx: Ctx, user: dict, purpose: str, token: str, expires_at) -> list[UUID]:
    """Queue the mail in this transaction, on every channel that can reach the user's address."""
    recipient = Recipient(name=user["name"], email=user["email"], language=user.get("language") or "en")
    data = {
        "tenant_name": ctx.tenant.name,
        "email": user["email"],
        "expires_at": expires_at.isoformat(),
        "user_id": str(user["id"]),
    }
    queued = await notify.queue_to(
        ctx, EVENTS[purpose], recipient, data, secrets={"link": link_url(ctx.tenant, token)}
    )
    if not queued:
        log.warning("no channel reaches %s: the %s mail was not queued", user["email"], purpose)
    return queued


async def send_welcome(ctx: Ctx, user_row: dict) -> None:
    """Mail a new user a single-use link to set a first password (called when a user is added)."""
    settings = signin_settings.of(ctx.tenant)
    lifetime = timedelta(days=settings.welcome_link_days)
    token = await _issue(ctx.scope, user_row["id"], WELCOME, lifetime)
    await _mail(ctx, user_row, WELCOME, token, clock.now() + lifetime)


async def _active_user(scope: Scope, email: str) -> dict | None:
    return await users.find_by_email(scope, email)


async def forgot(tenant: TenantInfo, email: str, *, ip: str) -> str:
    """Mail a reset link if the address is an active account's; the answer never says which."""
    settings = signin_settings.of(tenant)
    async with tenant_context(tenant, write=False) as ctx:
        await throttle.check(ctx.scope, FORGOT_PER_IP, ip)
    async with tenant_context(tenant) as ctx:
        blocked = await throttle.fail(ctx.scope, FORGOT_PER_IP, ip)
        user = await _active_user(ctx.scope, email)
        if user is None:
            log.info("password reset asked for an unknown address: tenant=%s", tenant.slug)
        else:
            try:
                await throttle.check(ctx.scope, MAILS_PER_ACCOUNT, str(user["id"]))
            except DomainError:
                log.warning("password reset mail not sent, too many this hour: user=%s", user["id"])
            else:
                await throttle.fail(ctx.scope, MAILS_PER_ACCOUNT, str(user["id"]))
                lifetime = timedelta(minutes=settings.reset_link_minutes)
                token = await _issue(ctx.scope, user["id"], RESET, lifetime)
                await _mail(ctx, user, RESET, token, clock.now() + lifetime)
    if blocked:
        log.warning("password reset requests throttled: tenant=%s ip=%s", tenant.slug, ip)
    return FORGOT_ANSWER


async def _live_link(scope: Scope, tenant: TenantInfo, token: str) -> dict:
    row = None
    if token.startswith(PREFIX) and len(token) < 200:
        row = await scope.select(SigninLink).where(SigninLink.digest == digest(token)).first()
    if row is None:
        log.warning("set-password link refused (unknown): tenant=%s", tenant.slug)
        raise LinkRefused('This link is not valid. Ask for a new one with "Forgot your password?".')
    if row["used_at"] is not None:
        log.warning(
            "set-password link refused (already used): tenant=%s user=%s", tenant.slug, row["user_id"]
        )
        raise LinkRefused(
            "This link has already been used or replaced by a newer one. "
            'Ask for a new one with "Forgot your password?".'
        )
    if row["expires_at"] <= clock.now():
        log.warning("set-password link refused (expired): tenant=%s user=%s", tenant.slug, row["user_id"])
        raise LinkRefused('This link has expired. Ask for a new one with "Forgot your password?".')
    user = (
        await scope.select(AppUser)
        .where((AppUser.id == row["user_id"]) & (AppUser.status == "active"))
        .first()
    )
    if user is None:
        log.warning("set-password link refused (no active user): tenant=%s", tenant.slug)
        raise LinkRefused('This link is not valid. Ask for a new one with "Forgot your password?".')
    return {"link": row, "user": user}


async def describe(tenant: TenantInfo, token: str) -> dict[str, Any]:
    """What a link is for (shown before the user types a password); refuses dead links."""
    async with tenant_context(tenant, write=False) as ctx:
        found = await _live_link(ctx.scope, tenant, token)
    return {
        "purpose": found["link"]["purpose"],
        "email": found["user"]["email"],
        "expires_at": found["link"]["expires_at"],
        "password_min_length": signin_settings.of(tenant).password_min_length,
    }


async def set_password(tenant: TenantInfo, token: str, password: str) -> dict:
    """Spend a link: set the password, unlock, end every session. Returns the user."""
    settings = signin_settings.of(tenant)
    async with tenant_context(tenant, write=False) as ctx:
        found = await _live_link(ctx.scope, tenant, token)
    user = found["user"]
    passwords.check_policy(password, email=user["email"], min_length=settings.password_min_length)
    hashed = await passwords.hash_password(password)
    now = clock.now()
    async with tenant_context(tenant) as ctx:
        # Spend the link first: of two requests racing with one link, one wins.
        spent = await (
            ctx.scope.update(SigninLink, {SigninLink.used_at: now})
            .where((SigninLink.id == found["link"]["id"]) & SigninLink.used_at.is_null())
            .returning(SigninLink.id)
        )
        if not spent:
            raise LinkRefused(
                'This link has already been used. Ask for a new one with "Forgot your password?".'
            )
        await ctx.scope.update(SigninLink, {SigninLink.used_at: now}).where(
            (SigninLink.user_id == user["id"]) & SigninLink.used_at.is_null()
        )
        await mfa.ensure_credential(ctx.scope, user["id"])
        await ctx.scope.update(
            UserCredential,
            {
                UserCredential.password_hash: hashed,
                UserCredential.password_set_at: now,
                UserCredential.failed_attempts: 0,
                UserCredential.locked_until: None,
                UserCredential.updated_at: now,
            },
        ).where(UserCredential.user_id == user["id"])
    await sessions.end_all(tenant, user["id"], reason="password changed")
    log.info(
        "password set from a %s link: tenant=%s user=%s", found["link"]["purpose"], tenant.slug, user["id"]
    )
    return user


async def link_for_operator(tenant: TenantInfo, email: str) -> tuple[str, dict]:
    """A reset link handed over by a platform operator (CLI) instead of mailed; returns (link, user).

    For the first administrator of a tenant whose mail is not set up yet, or a
    user who can no longer receive mail. Spending it works like any reset link.
    """
    settings = signin_settings.of(tenant)
    async with tenant_context(tenant) as ctx:
        user = await _active_user(ctx.scope, email)
        if user is None:
            raise NotFound("User", email)
        token = await _issue(ctx.scope, user["id"], RESET, timedelta(minutes=settings.reset_link_minutes))
    log.warning("set-password link handed out by an operator: tenant=%s user=%s", tenant.slug, user["id"])
    return link_url(tenant, token), user
