"""The tenant's single sign-on policy: "require SSO for all staff" and its break-glass administrators.

When a tenant requires SSO, password sign-in is refused for everyone except
the break-glass administrators named here: the way back in when the identity
provider is down or misconfigured. Requiring SSO is refused while no provider
is enabled or no break-glass administrator is named, so a tenant cannot lock
itself out with one click. A break-glass administrator must be an active user
who holds ``sso:write`` (they must be able to fix SSO once in).

C2's password sign-in asks :func:`password_signin_allowed`.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import msgspec

from pigeonhole.db.tables import SsoProvider, SsoSetting
from pigeonhole.domain import clock
from pigeonhole.domain.errors import Invalid
from pigeonhole.domain.identity import audit, roles, scopes, users


async def current(scope) -> dict:
    row = await scope.select(SsoSetting).first()
    if row is None:
        return {"require_sso": False, "break_glass_user_ids": []}
    return {
        "require_sso": bool(row["require_sso"]),
        "break_glass_user_ids": [UUID(x) for x in msgspec.json.decode(row["break_glass"])],
    }


async def password_signin_allowed(scope, user_row: dict) -> bool:
    """False when the tenant requires SSO and this user is not a break-glass administrator."""
    policy = await current(scope)
    if not policy["require_sso"]:
        return True
    return user_row["id"] in policy["break_glass_user_ids"]


async def _check_break_glass(ctx, user_ids: list[UUID]) -> None:
    """Each must be an active user the caller can see (else 404) who holds ``sso:write``."""
    for user_id in user_ids:
        row = await users.get(ctx, user_id)
        if "sso:write" not in users.effective(row, await roles.get(ctx.scope, row["role_id"])):
            raise Invalid(
                f"Break-glass administrator {row['email']} must hold the permission 'sso:write' "
                "(to repair single sign-on once signed in)"
            )


async def update(ctx, *, require_sso: bool, break_glass_user_ids: list[UUID]) -> dict:
    ids = list(dict.fromkeys(break_glass_user_ids))
    await _check_break_glass(ctx, ids)
    scopes.require_whole_tenant(ctx, "change the single sign-on policy")
    if require_sso:
        enabled = await ctx.scope.count(SsoProvider).where(SsoProvider.enabled == True)  # noqa: E712
        if not enabled:
            raise Invalid("Set up and enable a SAML or OpenID Connect provider before requiring SSO")
        if not ids:
            raise Invalid(
                "Name at least one break-glass administrator before requiring SSO: "
                "they can still sign in with a password if the identity provider fails"
            )
    before = await current(ctx.scope)
    stored = msgspec.json.encode([str(i) for i in ids]).decode()
    now = clock.now()
    changed = await ctx.scope.update(
        SsoSetting,
        {SsoSetting.require_sso: require_sso, SsoSetting.break_glass: stored, SsoSetting.updated_at: now},
    ).returning(SsoSetting.id)
    if not changed:
        await ctx.scope.insert(
            SsoSetting, dict(id=uuid.uuid4(), require_sso=require_sso, break_glass=stored, updated_at=now)
        )
    after = {"require_sso": require_sso, "break_glass_user_ids": ids}
    await audit.record(
        ctx,
        "sso.settings.changed",
        target_type="sso",
        target_id="settings",
        data={
            "before": {**before, "break_glass_user_ids": [str(i) for i in before["break_glass_user_ids"]]},
            "after": {**after, "break_glass_user_ids": [str(i) for i in ids]},
        },
    )
    return after


async def overview(ctx) -> dict:
    """What the administrator's SSO page shows: the policy and each provider's state."""
    from pigeonhole.domain.identity import sso_oidc, sso_saml  # they import this module

    policy = await current(ctx.scope)
    rows = {r["protocol"]: r for r in await ctx.scope.select(SsoProvider)}
    return {
        **policy,
        "saml": sso_saml.describe(ctx.tenant, rows.get("saml")),
        "oidc": sso_oidc.describe(ctx.tenant, rows.get("oidc")),
    }
