"""Enterprise > divisions > locations.

The enterprise is the tenant itself. Deleting a division or a location is
refused while something still uses it, with a count in the message, so an
administrator knows what to move first.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from pigeonhole.db.tables import ApiKey, AppUser, Bank, Division, Location, Tenant
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import custom_fields
from pigeonhole.domain.errors import Conflict, Invalid, NotFound


def _clean_name(name: str, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid(f"A {what} needs a name")
    if len(name) > 200:
        raise Invalid(f"A {what} name has at most 200 characters")
    return name


async def rename_enterprise(ctx: Ctx, name: str) -> None:
    name = _clean_name(name, "enterprise")
    await Tenant.update({Tenant.name: name}).where(Tenant.id == ctx.tenant_id)


# --- divisions -------------------------------------------------------------


async def list_divisions(ctx: Ctx) -> list[dict]:
    return await ctx.scope.select(Division).order_by(Division.name)


async def get_division(ctx: Ctx, division_id: UUID) -> dict:
    row = await ctx.scope.select(Division).where(Division.id == division_id).first()
    if row is None:
        raise NotFound("Division", division_id)
    return row


async def _division_name_free(ctx: Ctx, name: str, except_id: UUID | None = None) -> None:
    query = ctx.scope.exists(Division).where(Division.name == name)
    if except_id is not None:
        query = query.where(Division.id != except_id)
    if await query:
        raise Conflict(f"A division named '{name}' already exists")


async def create_division(ctx: Ctx, name: str) -> dict:
    name = _clean_name(name, "division")
    await _division_name_free(ctx, name)
    row = dict(id=uuid.uuid4(), name=name, created_at=clock.now())
    await ctx.scope.insert(Division, row)
    return await get_division(ctx, row["id"])


async def rename_division(ctx: Ctx, division_id: UUID, name: str) -> dict:
    await get_division(ctx, division_id)
    name = _clean_name(name, "division")
    await _division_name_free(ctx, name, except_id=division_id)
    await ctx.scope.update(Division, {Division.name: name}).where(Division.id == division_id)
    return await get_division(ctx, division_id)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


async def _refuse_if_in_scopes(ctx: Ctx, what: str, row_id: UUID) -> None:
    """Users and API keys limited to a division or location keep its id in their scope (JSON).

    Deleting it would leave them with a scope naming nothing, so the delete is
    refused naming who still depends on it.
    """
    needle = f"%{row_id}%"
    users = await ctx.scope.count(AppUser).where(AppUser.scope.like(needle) & AppUser.deleted_at.is_null())
    keys = await ctx.scope.count(ApiKey).where(ApiKey.scope.like(needle) & ApiKey.revoked_at.is_null())
    if users or keys:
        holders = " and ".join(
            p for p in (users and _plural(users, "user"), keys and _plural(keys, "API key")) if p
        )
        raise Conflict(f"{what} is in the access scope of {holders}; change their scope first")


async def delete_division(ctx: Ctx, division_id: UUID) -> None:
    division = await get_division(ctx, division_id)
    used = await ctx.scope.count(Location).where(Location.division_id == division_id)
    if used:
        raise Conflict(
            f"Division '{division['name']}' still has {used} location{'s' if used > 1 else ''}; "
            "move or delete them first"
        )
    await _refuse_if_in_scopes(ctx, f"Division '{division['name']}'", division_id)
    await ctx.scope.delete(Division).where(Division.id == division_id)


# --- locations -------------------------------------------------------------


async def list_locations(ctx: Ctx, division_id: UUID | None = None, custom: dict | None = None) -> list[dict]:
    query = ctx.scope.select(Location).order_by(Location.name)
    if division_id is not None:
        query = query.where(Location.division_id == division_id)
    for sub in await custom_fields.matching(ctx, "locations", custom or {}):
        query = query.where(Location.id.is_in(sub))
    return await query


async def get_location(ctx: Ctx, location_id: UUID) -> dict:
    row = await ctx.scope.select(Location).where(Location.id == location_id).first()
    if row is None:
        raise NotFound("Location", location_id)
    return row


async def create_location(
    ctx: Ctx,
    division_id: UUID,
    name: str,
    address: str = "",
    region: str = "",
    timezone: str = "UTC",
    custom: dict | None = None,
) -> dict:
    await get_division(ctx, division_id)
    name = _clean_name(name, "location")
    custom = await custom_fields.validate(ctx, "locations", custom)
    if await ctx.scope.exists(Location).where(
        (Location.division_id == division_id) & (Location.name == name)
    ):
        raise Conflict(f"A location named '{name}' already exists in this division")
    row = dict(
        id=uuid.uuid4(),
        division_id=division_id,
        name=name,
        address=address,
        region=region,
        timezone=timezone,
        created_at=clock.now(),
    )
    await ctx.scope.insert(Location, row)
    await custom_fields.save(ctx, "locations", row["id"], custom)
    return await get_location(ctx, row["id"])


async def with_custom(ctx: Ctx, rows: list[dict]) -> list[dict]:
    """Locations with their custom field values, as the API shows them."""
    values = await custom_fields.load(ctx, "locations", [r["id"] for r in rows])
    return [{**r, "custom": values[r["id"]]} for r in rows]


async def update_location(ctx: Ctx, location_id: UUID, **changes) -> dict:
    location = await get_location(ctx, location_id)
    values = {}
    # A name is unique within a division: check it where the location ends up.
    division_id = changes.get("division_id") or location["division_id"]
    name = location["name"]
    if changes.get("name") is not None:
        name = _clean_name(changes["name"], "location")
        values[Location.name] = name
    if (name, division_id) != (location["name"], location["division_id"]) and await ctx.scope.exists(
        Location
    ).where((Location.division_id == division_id) & (Location.name == name) & (Location.id != location_id)):
        raise Conflict(f"A location named '{name}' already exists in this division")
    for field in ("address", "region", "timezone"):
        if changes.get(field) is not None:
            values[getattr(Location, field)] = changes[field]
    if changes.get("division_id") is not None:
        await get_division(ctx, changes["division_id"])
        values[Location.division_id] = changes["division_id"]
    # Every write checks the custom fields, so a field made required later is filled on the next edit.
    existing = (await custom_fields.load(ctx, "locations", [location_id]))[location_id]
    custom = await custom_fields.validate(ctx, "locations", changes.get("custom"), existing=existing)
    if values:
        await ctx.scope.update(Location, values).where(Location.id == location_id)
    await custom_fields.save(ctx, "locations", location_id, custom)
    return await get_location(ctx, location_id)


async def delete_location(ctx: Ctx, location_id: UUID) -> None:
    location = await get_location(ctx, location_id)
    used = await ctx.scope.count(Bank).where(Bank.location_id == location_id)
    if used:
        raise Conflict(
            f"Location '{location['name']}' still has {used} locker bank{'s' if used > 1 else ''}; "
            "move or delete them first"
        )
    await _refuse_if_in_scopes(ctx, f"Location '{location['name']}'", location_id)
    await custom_fields.delete_values(ctx, "locations", location_id)
    await ctx.scope.delete(Location).where(Location.id == location_id)
