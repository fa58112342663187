"""Enrolment: a one-time token that a site agent trades for its own credential.

An administrator makes a token for a bank (or for every bank of the tenant: a
site) and gives it to whoever installs the agent. The token is shown once,
stored as a keyed digest, expires, and works once: the exchange creates an API
key of role ``agent`` bound like the token, which the agent keeps in a file of
its own. Nobody types a long-lived key into a config file and nobody sees the
agent's key but the agent.

The exchange is unauthenticated (the token is the credential), so failed
attempts are counted: after ``MAX_FAILURES`` refusals within ``WINDOW`` the
tenant's enrolment answers 429 until the window passes. Refusals are events in
the custody chain (``agent.enrol_refused``), so the count survives restarts and
is there to read.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from uuid import UUID

from pigeonhole.db.tables import EnrolmentToken, Event
from pigeonhole.domain import agents, apikeys, clock, custody, lockers
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.errors import Conflict, DomainError, Invalid, NotFound, TooManyAttempts
from pigeonhole.security.secrets import keyed_digest

PREFIX = "phe_"
MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)
MAX_LIFETIME_MINUTES = 7 * 24 * 60
try:  # identity (#3): a key may hold no more than its creator; the exchange may create agent keys
    from pigeonhole.domain.identity.permissions import BUILTIN as _BUILTIN

    ENROLMENT = Actor(name="enrolment", role="system", permissions=_BUILTIN["agent"])
except ImportError:  # pragma: no cover - before identity
    ENROLMENT = Actor(name="enrolment", role="system")


class BadToken(DomainError):
    status_code = 401


class Expired(DomainError):
    status_code = 410


def _digest(token: str) -> str:
    return keyed_digest("enrolment_token", token)


async def create_token(
    ctx: Ctx, name: str, bank_id: UUID | None = None, expires_in_minutes: int = 60
) -> tuple[dict, str]:
    name = (name or "").strip()
    if not name:
        raise Invalid("An enrolment token needs a name: the agent it enrols is called so")
    if not 1 <= expires_in_minutes <= MAX_LIFETIME_MINUTES:
        raise Invalid(
            f"expires_in_minutes must be between 1 and {MAX_LIFETIME_MINUTES} (got {expires_in_minutes})"
        )
    if bank_id is not None:
        await lockers.get_bank(ctx, bank_id)
    token = PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    row = dict(
        id=uuid.uuid4(),
        name=name,
        bank_id=bank_id,
        prefix=token[:10],
        digest=_digest(token),
        created_by=ctx.actor.label,
        created_at=now,
        expires_at=now + timedelta(minutes=expires_in_minutes),
        used_at=None,
        revoked_at=None,
        api_key_id=None,
    )
    await ctx.scope.insert(EnrolmentToken, row)
    await custody.append(
        ctx,
        "agent.enrolment_token_created",
        bank_id=bank_id,
        data={"token_id": str(row["id"]), "name": name, "expires_at": row["expires_at"].isoformat()},
    )
    return row, token


def token_out(row: dict) -> dict:
    now = clock.now()
    if row["used_at"] is not None:
        state = "used"
    elif row["revoked_at"] is not None:
        state = "revoked"
    elif row["expires_at"] <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": row["id"],
        "name": row["name"],
        "bank_id": row["bank_id"],
        "prefix": row["prefix"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "used_at": row["used_at"],
        "revoked_at": row["revoked_at"],
        "state": state,
    }


async def list_tokens(ctx: Ctx) -> list[dict]:
    rows = await ctx.scope.select(EnrolmentToken).order_by(EnrolmentToken.created_at, ascending=False)
    return [token_out(r) for r in rows]


async def revoke_token(ctx: Ctx, token_id: UUID) -> None:
    row = await ctx.scope.select(EnrolmentToken).where(EnrolmentToken.id == token_id).first()
    if row is None:
        raise NotFound("Enrolment token", token_id)
    if row["used_at"] is not None:
        raise Conflict("This enrolment token has already been used: revoke the agent's key instead")
    await ctx.scope.update(EnrolmentToken, {EnrolmentToken.revoked_at: clock.now()}).where(
        (EnrolmentToken.id == token_id) & EnrolmentToken.revoked_at.is_null()
    )


async def _recent_failures(ctx: Ctx) -> int:
    since = clock.now() - WINDOW
    return await ctx.scope.count(Event).where((Event.kind == "agent.enrol_refused") & (Event.at > since))


async def _refuse(tenant: TenantInfo, error: DomainError, token: str, client: str) -> DomainError:
    """Count the refusal (committed, whatever the caller does next) and return the error."""
    async with tenant_context(tenant, ENROLMENT) as ctx:
        await custody.append(
            ctx,
            "agent.enrol_refused",
            data={"reason": error.message, "token_prefix": token[:10], "client": client},
        )
    return error


async def exchange(tenant: TenantInfo, token: str, client: str = "") -> dict:
    """Trade a token for an agent key; returns the key (shown once) and the agent's record."""
    token = (token or "").strip()
    async with tenant_context(tenant, ENROLMENT, write=False) as ctx:
        failures = await _recent_failures(ctx)
    if failures >= MAX_FAILURES:
        raise TooManyAttempts(
            "Too many failed enrolments for this tenant. Try again in "
            f"{int(WINDOW.total_seconds() // 60)} minutes, with a new token from an administrator.",
            retry_after=int(WINDOW.total_seconds()),
        )
    if not token.startswith(PREFIX):
        raise await _refuse(
            tenant, BadToken(f"This is not an enrolment token: they start with '{PREFIX}'"), token, client
        )
    error: DomainError | None = None
    async with tenant_context(tenant, ENROLMENT) as ctx:
        row = await ctx.scope.select(EnrolmentToken).where(EnrolmentToken.digest == _digest(token)).first()
        now = clock.now()
        if row is None or row["revoked_at"] is not None:
            error = BadToken("Invalid enrolment token: ask an administrator for a new one")
        elif row["used_at"] is not None:
            error = Conflict(
                f"This enrolment token was already used at {row['used_at'].isoformat()}: "
                "each token enrols one agent; ask an administrator for a new one"
            )
        elif row["expires_at"] <= now:
            error = Expired(
                f"This enrolment token expired at {row['expires_at'].isoformat()}: "
                "ask an administrator for a new one"
            )
        else:
            claimed = (
                await ctx.scope.update(EnrolmentToken, {EnrolmentToken.used_at: now})
                .where((EnrolmentToken.id == row["id"]) & EnrolmentToken.used_at.is_null())
                .returning(EnrolmentToken.id)
            )
            if not claimed:
                error = Conflict("This enrolment token was just used by another agent")
            else:
                key_row, key = await apikeys.create(ctx, row["name"], "agent", row["bank_id"])
                await ctx.scope.update(EnrolmentToken, {EnrolmentToken.api_key_id: key_row["id"]}).where(
                    EnrolmentToken.id == row["id"]
                )
                agent = await agents.ensure(ctx, key_row["id"], row["name"], row["bank_id"], enrolled=True)
                await custody.append(
                    ctx,
                    "agent.enrolled",
                    bank_id=row["bank_id"],
                    data={
                        "token_id": str(row["id"]),
                        "agent_id": str(agent["id"]),
                        "name": row["name"],
                        "client": client,
                    },
                )
                return {
                    "agent_id": agent["id"],
                    "name": row["name"],
                    "tenant": tenant.slug,
                    "bank_id": row["bank_id"],
                    "key": key,
                }
    raise await _refuse(tenant, error, token, client)
