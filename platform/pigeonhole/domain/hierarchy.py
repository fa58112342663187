"""Enterprise > divisions > locations.

The enterprise is the tenant itself. Deleting a division or a location is
refused while something still uses it, with a count in the message, so an
administrator knows what to move first.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from pigeonhole.db.tables import Bank, Division, Location, Tenant
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
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


async def delete_division(ctx: Ctx, division_id: UUID) -> None:
    division = await get_division(ctx, division_id)
    used = await ctx.scope.count(Location).where(Location.division_id == division_id)
    if used:
        raise Conflict(
            f"Division '{division['name']}' still has {used} location{'s' if used > 1 else ''}; "
            "move or delete them first"
        )
    await ctx.scope.delete(Division).where(Division.id == division_id)


# --- locations -------------------------------------------------------------


async def list_locations(ctx: Ctx, division_id: UUID | None = None) -> list[dict]:
    query = ctx.scope.select(Location).order_by(Location.name)
    if division_id is not None:
        query = query.where(Location.division_id == division_id)
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
) -> dict:
    await get_division(ctx, division_id)
    name = _clean_name(name, "location")
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
    return await get_location(ctx, row["id"])


async def update_location(ctx: Ctx, location_id: UUID, **changes) -> dict:
    location = await get_location(ctx, location_id)
    values = {}
    if changes.get("name") is not None:
        name = _clean_name(changes["name"], "location")
        if name != location["name"] and await ctx.scope.exists(Location).where(
            (Location.division_id == location["division_id"]) & (Location.name == name)
        ):
            raise Conflict(f"A location named '{name}' already exists in this division")
        values[Location.name] = name
    for field in ("address", "region", "timezone"):
        if changes.get(field) is not None:
            values[getattr(Location, field)] = changes[field]
    if changes.get("division_id") is not None:
        await get_division(ctx, changes["division_id"])
        values[Location.division_id] = changes["division_id"]
    if values:
        await ctx.scope.update(Location, values).where(Location.id == location_id)
    return await get_location(ctx, location_id)


async def delete_location(ctx: Ctx, location_id: UUID) -> None:
    location = await get_location(ctx, location_id)
    used = await ctx.scope.count(Bank).where(Bank.location_id == location_id)
    if used:
        raise Conflict(
            f"Location '{location['name']}' still has {used} locker bank{'s' if used > 1 else ''}; "
            "move or delete them first"
        )
    await ctx.scope.delete(Location).where(Location.id == location_id)
