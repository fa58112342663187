"""Pickup credentials: issued through an access method, stored as keyed digests.

The host owns storage and uniqueness (one active secret per bank and method);
the access-method plugin owns the secret's form. A collision with an active
credential of the same bank is retried with a fresh secret under a savepoint,
so the surrounding deposit transaction survives it.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime
from uuid import UUID

import asyncpg

from pigeonhole.api import AccessMethod
from pigeonhole.db.engine import get_engine
from pigeonhole.db.tables import Credential
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import Invalid
from pigeonhole.security.secrets import keyed_digest

_UNIQUE = (sqlite3.IntegrityError, asyncpg.exceptions.UniqueViolationError)


def digest(ctx: Ctx, bank_id: UUID, method: str, secret: str) -> str:
    return keyed_digest("credential", ctx.tenant_id, bank_id, method, secret)


def method_for(ctx: Ctx, name: str) -> AccessMethod:
    methods = ctx.plugins.access_methods()
    if name not in methods:
        enabled = ", ".join(sorted(methods)) or "none"
        raise Invalid(f"Access method '{name}' is not enabled for this tenant (enabled: {enabled})")
    return methods[name]


async def issue(
    ctx: Ctx, package_id: UUID, bank_id: UUID, method_name: str, not_after: datetime | None
) -> tuple[str, datetime | None]:
    """Issue one credential; return the secret in clear (never stored) and its expiry.

    A method that identifies a person (a badge) issues nothing: the secret is None.
    """
    method = method_for(ctx, method_name)
    now = clock.now()
    if method.identifies_person:
        return None, None
    lifetime = method.lifetime()
    expires = now + lifetime if lifetime else None
    if not_after is not None and (expires is None or not_after < expires):
        expires = not_after
    secret = await _insert_unique(
        ctx, method, bank_id, dict(package_id=package_id, method=method_name, issued_at=now, expires_at=expires)
    )
    return secret, expires


async def _insert_unique(ctx: Ctx, method: AccessMethod, bank_id: UUID, values: dict) -> str:
    """Insert an active credential with a fresh secret; return the secret in clear.

    A collision with an active credential of the same bank is retried with a new
    secret under a savepoint, so the caller's transaction survives it.
    """
    transaction = get_engine().current_transaction.get()
    for _ in range(20):
        secret = method.new_secret()
        savepoint = await transaction.savepoint()
        try:
            await ctx.scope.insert(
                Credential,
                dict(
                    id=uuid.uuid4(),
                    bank_id=bank_id,
                    digest=digest(ctx, bank_id, values["method"], method.normalize(secret)),
                    status="active",
                    **values,
                ),
            )
        except _UNIQUE:
            await savepoint.rollback_to()
            continue
        await savepoint.release()
        return secret
    raise RuntimeError(f"could not find a free {values['method']} secret for bank {bank_id}")


async def revoke_for_package(ctx: Ctx, package_id: UUID, status: str = "revoked") -> None:
    await ctx.scope.update(Credential, {Credential.status: status, Credential.used_at: clock.now()}).where(
        (Credential.package_id == package_id) & (Credential.status == "active")
    )


# --- credentials that open a reservation (storage #5, G1-G3; migrations/0008) -------------


async def issue_for_reservation(
    ctx: Ctx,
    reservation_id: UUID,
    bank_id: UUID,
    method_name: str,
    *,
    purpose: str = "storage",
    not_after: datetime | None = None,
) -> str:
    """Issue a credential that opens a reservation's compartment; return the secret in clear.

    It lives until ``not_after`` (None: until the reservation ends and revokes
    it), whatever the method's own lifetime: a storage code must work for as
    long as the storage does.
    """
    method = method_for(ctx, method_name)
    values = dict(
        package_id=None,
        reservation_id=reservation_id,
        purpose=purpose,
        method=method_name,
        issued_at=clock.now(),
        expires_at=not_after,
    )
    return await _insert_unique(ctx, method, bank_id, values)


async def revoke_for_reservation(ctx: Ctx, reservation_id: UUID, status: str = "revoked") -> None:
    await ctx.scope.update(Credential, {Credential.status: status, Credential.used_at: clock.now()}).where(
        (Credential.reservation_id == reservation_id) & (Credential.status == "active")
    )
