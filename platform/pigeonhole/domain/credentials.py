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
    """Issue one credential; return the secret in clear (never stored) and its expiry."""
    method = method_for(ctx, method_name)
    now = clock.now()
    lifetime = method.lifetime()
    expires = now + lifetime if lifetime else None
    if not_after is not None and (expires is None or not_after < expires):
        expires = not_after
    transaction = get_engine().current_transaction.get()
    for _ in range(20):
        secret = method.new_secret()
        savepoint = await transaction.savepoint()
        try:
            await ctx.scope.insert(
                Credential,
                dict(
                    id=uuid.uuid4(),
                    package_id=package_id,
                    bank_id=bank_id,
                    method=method_name,
                    digest=digest(ctx, bank_id, method_name, method.normalize(secret)),
                    status="active",
                    issued_at=now,
                    expires_at=expires,
                ),
            )
        except _UNIQUE:
            await savepoint.rollback_to()
            continue
        await savepoint.release()
        return secret, expires
    raise RuntimeError(f"could not find a free {method_name} secret for bank {bank_id}")


async def revoke_for_package(ctx: Ctx, package_id: UUID, status: str = "revoked") -> None:
    await ctx.scope.update(Credential, {Credential.status: status, Credential.used_at: clock.now()}).where(
        (Credential.package_id == package_id) & (Credential.status == "active")
    )
