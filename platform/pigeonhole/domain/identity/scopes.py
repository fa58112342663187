"""Where a caller may act: the whole tenant, or some divisions and locations.

A role assignment (a user) or a key can be limited to divisions and/or
locations. A division in the scope brings all its locations, including ones
created later, so the scope is resolved to location ids at request time.
Outside the scope a resource answers 404, as if it did not exist (the same
answer as another tenant's row, so a scoped caller learns nothing); the
checks live here so every route applies the same rule:

- a location is in scope when listed or when its division is listed;
- a bank, its compartments, commands and reservations follow its location;
- a package follows its bank; a package not yet in a bank belongs to no
  location and is visible only to callers with the whole tenant;
- a division is visible when it holds a location in scope, and writable only
  when the division itself is in the scope;
- tenant-wide things (the enterprise, plugins, settings, SSO, roles) can be
  changed only by callers with the whole tenant (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import msgspec

from pigeonhole.db.tables import Bank, Division, Location, Package
from pigeonhole.domain.errors import Forbidden, Invalid, NotFound


@dataclass(frozen=True)
class AccessScope:
    divisions: frozenset[UUID] = frozenset()
    locations: frozenset[UUID] = frozenset()

    def to_json(self) -> str:
        return msgspec.json.encode(
            {"divisions": sorted(map(str, self.divisions)), "locations": sorted(map(str, self.locations))}
        ).decode()

    def as_dict(self) -> dict:
        return {"divisions": sorted(map(str, self.divisions)), "locations": sorted(map(str, self.locations))}


def parse(stored: str | None) -> AccessScope | None:
    """The scope as stored on a user or key row (``None``: the whole tenant)."""
    if not stored:
        return None
    data = msgspec.json.decode(stored)
    return AccessScope(
        divisions=frozenset(UUID(x) for x in data.get("divisions", [])),
        locations=frozenset(UUID(x) for x in data.get("locations", [])),
    )


async def validate(scope, divisions: list[UUID] | None, locations: list[UUID] | None) -> AccessScope | None:
    """A scope from request input; every id must be a division/location of the tenant."""
    if divisions is None and locations is None:
        return None
    divisions, locations = list(divisions or []), list(locations or [])
    if not divisions and not locations:
        raise Invalid("A scope needs at least one division or location (omit it for the whole tenant)")
    if divisions:
        found = {r["id"] for r in await scope.select(Division.id).where(Division.id.is_in(divisions))}
        for d in divisions:
            if d not in found:
                raise NotFound("Division", d)
    if locations:
        found = {r["id"] for r in await scope.select(Location.id).where(Location.id.is_in(locations))}
        for x in locations:
            if x not in found:
                raise NotFound("Location", x)
    return AccessScope(divisions=frozenset(divisions), locations=frozenset(locations))


async def location_ids(scope, access: AccessScope | None) -> set[UUID] | None:
    """Every location the scope reaches (``None``: all of them)."""
    if access is None:
        return None
    out = set(access.locations)
    if access.divisions:
        rows = await scope.select(Location.id).where(Location.division_id.is_in(list(access.divisions)))
        out |= {r["id"] for r in rows}
    return out


async def covers(scope, outer: AccessScope | None, inner: AccessScope | None) -> bool:
    """Whether everything ``inner`` reaches, ``outer`` reaches too (for delegation)."""
    if outer is None:
        return True
    if inner is None:
        return False
    if not inner.divisions <= outer.divisions:
        return False
    reach = await location_ids(scope, outer)
    return (await location_ids(scope, AccessScope(locations=inner.locations))) <= reach


def _access(ctx) -> AccessScope | None:
    return getattr(ctx.actor, "scope", None)


async def allowed_locations(ctx) -> set[UUID] | None:
    return await location_ids(ctx.scope, _access(ctx))


async def allowed_banks(ctx) -> set[UUID] | None:
    locations = await allowed_locations(ctx)
    if locations is None:
        return None
    if not locations:
        return set()
    rows = await ctx.scope.select(Bank.id).where(Bank.location_id.is_in(list(locations)))
    banks = {r["id"] for r in rows}
    # access (#5): a scoped credential bound to one bank (a carrier session) reaches that bank only.
    bound = getattr(ctx.actor, "bank_id", None)
    if bound is not None:
        banks &= {bound}
    return banks


async def allowed_divisions(ctx) -> set[UUID] | None:
    """Divisions the caller can see: listed ones and those holding a location in scope."""
    access = _access(ctx)
    if access is None:
        return None
    locations = await allowed_locations(ctx)
    out = set(access.divisions)
    if locations:
        rows = await ctx.scope.select(Location.division_id).where(Location.id.is_in(list(locations)))
        out |= {r["division_id"] for r in rows}
    return out


def whole_tenant(ctx_or_caller) -> bool:
    actor = getattr(ctx_or_caller, "actor", ctx_or_caller)
    return getattr(actor, "scope", None) is None


def require_whole_tenant(ctx_or_caller, what: str) -> None:
    """Tenant-wide changes: refused (403) to a caller limited to divisions or locations."""
    if not whole_tenant(ctx_or_caller):
        raise Forbidden(f"Only a user with access to the whole tenant can {what}")


async def check_location(ctx, location_id: UUID) -> None:
    locations = await allowed_locations(ctx)
    if locations is not None and location_id not in locations:
        raise NotFound("Location", location_id)


async def check_division(ctx, division_id: UUID, *, write: bool = False) -> None:
    access = _access(ctx)
    if access is None:
        return
    if write:
        if division_id not in access.divisions:
            if division_id in (await allowed_divisions(ctx) or set()):
                raise Forbidden("Your access is limited to some locations of this division")
            raise NotFound("Division", division_id)
        return
    if division_id not in (await allowed_divisions(ctx) or set()):
        raise NotFound("Division", division_id)


async def check_bank(ctx, bank_id: UUID) -> None:
    banks = await allowed_banks(ctx)
    if banks is not None and bank_id not in banks:
        raise NotFound("Locker bank", bank_id)


async def check_package(ctx, package_id: UUID) -> None:
    banks = await allowed_banks(ctx)
    if banks is None:
        return
    row = await ctx.scope.select(Package.bank_id).where(Package.id == package_id).first()
    if row is None or row["bank_id"] not in banks:
        raise NotFound("Package", package_id)


async def filter_rows(ctx, rows: list[dict], key: str, kind: str) -> list[dict]:
    """Keep the rows whose ``key`` column (a location/bank/division id) is in scope."""
    allowed = {
        "location": allowed_locations,
        "bank": allowed_banks,
        "division": allowed_divisions,
    }[kind]
    ids = await allowed(ctx)
    if ids is None:
        return rows
    return [r for r in rows if r.get(key) in ids]
