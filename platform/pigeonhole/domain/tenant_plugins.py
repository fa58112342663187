"""A tenant enables, configures and disables plugins (A8).

Every change validates the configuration against the plugin's Config struct
first (a bad field is refused by name, nothing stored) and bumps the tenant's
``plugins_version``, which every process compares on each request: the change
takes effect everywhere without a restart.

Secret fields (typed ``pigeonhole.api.Secret``) are stored sealed and never
answered: :func:`shown` and :func:`enable` give the placeholder in their place,
and a placeholder sent back keeps the stored value (decision 0031).
"""

from __future__ import annotations

import uuid

import msgspec

from pigeonhole.db.tables import Tenant, TenantPlugin
from pigeonhole.domain import clock, custody
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import DomainError, NotFound
from pigeonhole.runtime import config_secrets, registry
from pigeonhole.runtime import tenant_plugins as runtime


class BadConfig(DomainError):
    """A configuration that does not fit the plugin's Config: a bad request (400)."""

    status_code = 400


def _validated(name: str, config: dict | None, stored: dict | None = None) -> dict:
    try:
        config = config_secrets.keep_stored(name, config, stored)
    except config_secrets.PlaceholderWithoutSecret as exc:
        raise BadConfig(str(exc), plugin=name, field=exc.field) from None
    try:
        struct = registry.validate_config(name, config)
    except registry.UnknownPlugin as exc:
        raise NotFound("Plugin", name) from exc
    except registry.ConfigError as exc:
        raise BadConfig(str(exc), plugin=name, field=exc.field) from None
    # Through JSON, as the row holds it (tuples become lists): an unchanged config compares equal.
    return msgspec.json.decode(msgspec.json.encode(struct))


def _read(encoded: str) -> dict:
    return config_secrets.unsealed(msgspec.json.decode(encoded))


async def enabled(ctx: Ctx) -> dict[str, dict]:
    """The enabled plugins' configurations IN CLEAR, secrets included: never answer this."""
    rows = await ctx.scope.select(TenantPlugin).order_by(TenantPlugin.position)
    return {r["name"]: _read(r["config"]) for r in rows}


async def shown(ctx: Ctx) -> dict[str, dict]:
    """The enabled plugins' configurations as an answer shows them: secrets masked."""
    return {name: config_secrets.masked(name, config) for name, config in (await enabled(ctx)).items()}


async def _bump(ctx: Ctx) -> None:
    """Publish the change, and let its own event reach the plugins it leaves in force.

    The event of a change is observed after its commit, when the new set is the
    tenant's: a plugin just enabled sees its ``plugin.enabled``, a reconfigured
    one sees ``plugin.configured`` with its new config, and a disabled one is
    not called again. The set is built here without the cache, since this
    transaction may still roll back.
    """
    await Tenant.update({Tenant.plugins_version: Tenant.plugins_version + 1}).where(
        Tenant.id == ctx.tenant_id
    )
    row = await Tenant.select(Tenant.plugins_version).where(Tenant.id == ctx.tenant_id).first()
    now = [runtime.EnabledPlugin(name, config) for name, config in (await enabled(ctx)).items()]
    ctx.plugins = runtime.build(ctx.tenant_id, row["plugins_version"], now)


async def enable(ctx: Ctx, name: str, config: dict | None) -> dict:
    """Enable ``name`` with ``config`` (or replace its config).

    Returns the stored config as answers show it (secrets masked). A secret
    sent as the placeholder keeps the stored value; the others are sealed.
    """
    existing = await ctx.scope.select(TenantPlugin).where(TenantPlugin.name == name).first()
    before = _read(existing["config"]) if existing is not None else None
    stored = _validated(name, config, before)
    encoded = msgspec.json.encode(config_secrets.sealed(name, stored)).decode()
    if existing is not None:
        if before == stored:
            return config_secrets.masked(name, stored)
        await ctx.scope.update(
            TenantPlugin, {TenantPlugin.config: encoded, TenantPlugin.updated_at: clock.now()}
        ).where(TenantPlugin.id == existing["id"])
        kind = "plugin.configured"
    else:
        position = await ctx.scope.count(TenantPlugin)
        await ctx.scope.insert(
            TenantPlugin,
            dict(id=uuid.uuid4(), name=name, config=encoded, position=position, updated_at=clock.now()),
        )
        kind = "plugin.enabled"
    await _bump(ctx)
    await custody.append(ctx, kind, data={"plugin": name})
    return config_secrets.masked(name, stored)


async def disable(ctx: Ctx, name: str) -> None:
    deleted = await ctx.scope.delete(TenantPlugin).where(TenantPlugin.name == name).returning(TenantPlugin.id)
    if not deleted:
        raise NotFound("Enabled plugin", name)
    await _bump(ctx)
    await custody.append(ctx, "plugin.disabled", data={"plugin": name})
