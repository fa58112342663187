"""Staff sessions: opaque tokens, stored as digests, ended by idleness, age or the user.

A session token (``phs_`` + 256 random bits) is shown once, when the session
starts, and stored only as a keyed digest: a copy of the database signs no one
in. The same token works as ``Authorization: Bearer`` and as the ``ph_session``
cookie. Cookies are sent by browsers on their own, so state-changing requests
that authenticate by cookie must also carry the session's CSRF token in
``X-CSRF-Token``; that token is derived from the session token with the
server's key (no second secret to store) and handed out with the session.

The idle period (tenant setting ``session_idle_minutes``, B5) is enforced
here, on the server: ``last_seen_at`` moves on each use, written at most once a
minute per session so a busy page does not turn every read into a write.
See docs/decisions/0011-sign-in-and-sessions.md.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import UserSession
from pigeonhole.domain import clock
from pigeonhole.domain.context import TenantInfo
from pigeonhole.domain.errors import DomainError, NotFound, Unauthenticated
from pigeonhole.domain.identity import signin_settings
from pigeonhole.security.secrets import constant_time_equal, keyed_digest

log = logging.getLogger(__name__)

PREFIX = "phs_"
COOKIE = "ph_session"
CSRF_HEADER = "x-csrf-token"
#: last_seen_at is written at most this often per session.
TOUCH_EVERY = timedelta(seconds=60)


class CsrfRejected(DomainError):
    """403: a cookie-authenticated request that changes state without the session's CSRF token."""

    status_code = 403


def digest(token: str) -> str:
    return keyed_digest("session", token)


def csrf_token(token: str) -> str:
    return keyed_digest("session-csrf", token)


def info(row: dict, *, idle_minutes: int, csrf: str | None = None) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "user_id": row["user_id"],
        "method": row["method"],
        "created_at": row["created_at"],
        "last_seen_at": row["last_seen_at"],
        "expires_at": row["expires_at"],
        "idle_minutes": idle_minutes,
        "ip": row["ip"],
        "user_agent": row["user_agent"],
    }
    if csrf is not None:
        out["csrf_token"] = csrf
    return out


async def start(
    tenant: TenantInfo, user_id: UUID, *, method: str, request_meta: dict
) -> tuple[str, dict[str, Any]]:
    """Open a session for a user who just proved who they are; returns (token, info with csrf_token)."""
    settings = signin_settings.of(tenant)
    token = PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    row = dict(
        id=uuid.uuid4(),
        user_id=user_id,
        digest=digest(token),
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_max_hours),
        ip=str(request_meta.get("ip") or "")[:64],
        user_agent=str(request_meta.get("user_agent") or "")[:300],
    )
    async with tenant_tx(tenant.id) as scope:
        await scope.insert(UserSession, row)
    log.info("session started: tenant=%s user=%s method=%s", tenant.slug, user_id, method)
    return token, info(row, idle_minutes=settings.session_idle_minutes, csrf=csrf_token(token))


async def find(tenant: TenantInfo, token: str) -> dict | None:
    """The session row behind a token, whatever its state (None when unknown)."""
    if not token.startswith(PREFIX):
        return None
    async with tenant_tx(tenant.id, write=False) as scope:
        return await scope.select(UserSession).where(UserSession.digest == digest(token)).first()


async def resolve(tenant: TenantInfo, token: str, *, csrf: str | None, unsafe: bool) -> UUID:
    """The user behind a live session token, or 401 saying why not.

    ``unsafe`` is True for a request that changes state *and* authenticates
    by cookie: then ``csrf`` (the ``X-CSRF-Token`` header) must be this
    session's CSRF token, else 403. Bearer tokens are not sent by browsers on
    their own, so callers pass ``unsafe=False`` for them.
    """
    settings = signin_settings.of(tenant)
    row = await find(tenant, token)
    if row is None:
        raise Unauthenticated("This session is not valid; sign in again.")
    if row["ended_at"] is not None:
        reason = row["ended_reason"] or "signed out"
        raise Unauthenticated(f"This session has ended ({reason}); sign in again.")
    now = clock.now()
    ending = None
    if now >= row["expires_at"]:
        ending = ("expired", "This session has expired; sign in again.")
    elif now - row["last_seen_at"] > timedelta(minutes=settings.session_idle_minutes):
        ending = (
            "idle",
            f"You were signed out after {settings.session_idle_minutes} minutes without activity; "
            "sign in again.",
        )
    if ending is not None:
        async with tenant_tx(tenant.id) as scope:
            await scope.update(
                UserSession, {UserSession.ended_at: now, UserSession.ended_reason: ending[0]}
            ).where((UserSession.id == row["id"]) & UserSession.ended_at.is_null())
        log.info("session ended (%s): tenant=%s user=%s", ending[0], tenant.slug, row["user_id"])
        raise Unauthenticated(ending[1])
    if unsafe and not (csrf and constant_time_equal(csrf, csrf_token(token))):
        log.warning("CSRF token missing or wrong: tenant=%s user=%s", tenant.slug, row["user_id"])
        raise CsrfRejected(
            "This request needs the session's CSRF token in the X-CSRF-Token header; nothing was changed."
        )
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        async with tenant_tx(tenant.id) as scope:
            await scope.update(UserSession, {UserSession.last_seen_at: now}).where(
                (UserSession.id == row["id"]) & UserSession.ended_at.is_null()
            )
    return row["user_id"]


async def end(tenant: TenantInfo, token: str, *, reason: str = "signed out") -> bool:
    """End the session of this token (sign out); False when it was not live."""
    async with tenant_tx(tenant.id) as scope:
        ended = await (
            scope.update(UserSession, {UserSession.ended_at: clock.now(), UserSession.ended_reason: reason})
            .where((UserSession.digest == digest(token)) & UserSession.ended_at.is_null())
            .returning(UserSession.id)
        )
    return bool(ended)


async def end_all(
    tenant: TenantInfo, user_id: UUID, *, reason: str = "signed out everywhere", keep: UUID | None = None
) -> int:
    """End every live session of a user (all but ``keep``); returns how many ended."""
    where = (UserSession.user_id == user_id) & UserSession.ended_at.is_null()
    if keep is not None:
        where &= UserSession.id != keep
    async with tenant_tx(tenant.id) as scope:
        ended = await (
            scope.update(UserSession, {UserSession.ended_at: clock.now(), UserSession.ended_reason: reason})
            .where(where)
            .returning(UserSession.id)
        )
    log.info("sessions ended (%s): tenant=%s user=%s count=%d", reason, tenant.slug, user_id, len(ended))
    return len(ended)


async def end_one(tenant: TenantInfo, user_id: UUID, session_id: UUID, *, reason: str) -> None:
    """End one session of this user; 404 when the user has no such live session."""
    async with tenant_tx(tenant.id) as scope:
        ended = await (
            scope.update(UserSession, {UserSession.ended_at: clock.now(), UserSession.ended_reason: reason})
            .where(
                (UserSession.id == session_id)
                & (UserSession.user_id == user_id)
                & UserSession.ended_at.is_null()
            )
            .returning(UserSession.id)
        )
    if not ended:
        raise NotFound("Session", session_id)


async def live(tenant: TenantInfo, user_id: UUID) -> list[dict]:
    """The user's sessions that are still usable, newest first."""
    settings = signin_settings.of(tenant)
    now = clock.now()
    idle = timedelta(minutes=settings.session_idle_minutes)
    async with tenant_tx(tenant.id, write=False) as scope:
        rows = (
            await scope.select(UserSession)
            .where((UserSession.user_id == user_id) & UserSession.ended_at.is_null())
            .order_by(UserSession.created_at, ascending=False)
        )
    return [
        info(r, idle_minutes=settings.session_idle_minutes)
        for r in rows
        if r["expires_at"] > now and now - r["last_seen_at"] <= idle
    ]
