"""Enterprise, divisions and locations (A2)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from pigeonhole.domain import hierarchy
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require
from pigeonhole.web.routes.directory import custom_filters

BASE = "/api/v1/t/{tenant:str}"


class EnterpriseController(Controller):
    path = BASE
    tags = ["hierarchy"]

    @get("/", summary="The tenant's enterprise (top of the hierarchy)")
    async def show(self, caller: NamedDependency[Caller]) -> s.Enterprise:
        require(caller, "hierarchy:read")
        t = caller.tenant
        return s.Enterprise(id=t.id, slug=t.slug, name=t.name, status=t.status)

    @put("/", summary="Rename the enterprise")
    async def rename(self, caller: NamedDependency[Caller], data: JSONBody[s.EnterpriseIn]) -> s.Enterprise:
        require(caller, "hierarchy:write")
        scopes.require_whole_tenant(caller, "rename the enterprise")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await hierarchy.rename_enterprise(ctx, data.name)
        t = caller.tenant
        return s.Enterprise(id=t.id, slug=t.slug, name=data.name.strip(), status=t.status)


class DivisionController(Controller):
    path = BASE + "/divisions"
    tags = ["hierarchy"]

    @get("/")
    async def list_divisions(self, caller: NamedDependency[Caller]) -> list[s.Division]:
        require(caller, "hierarchy:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await scopes.filter_rows(ctx, await hierarchy.list_divisions(ctx), "id", "division")
            return s.out(s.Division, rows)

    @post("/")
    async def create_division(
        self, caller: NamedDependency[Caller], data: JSONBody[s.DivisionIn]
    ) -> s.Division:
        require(caller, "hierarchy:write")
        scopes.require_whole_tenant(caller, "create a division")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return s.out(s.Division, await hierarchy.create_division(ctx, data.name))

    @get("/{division_id:uuid}")
    async def get_division(self, caller: NamedDependency[Caller], division_id: FromPath[UUID]) -> s.Division:
        require(caller, "hierarchy:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await scopes.check_division(ctx, division_id)
            return s.out(s.Division, await hierarchy.get_division(ctx, division_id))

    @patch("/{division_id:uuid}", summary="Rename a division")
    async def rename_division(
        self, caller: NamedDependency[Caller], division_id: FromPath[UUID], data: JSONBody[s.DivisionIn]
    ) -> s.Division:
        require(caller, "hierarchy:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_division(ctx, division_id, write=True)
            return s.out(s.Division, await hierarchy.rename_division(ctx, division_id, data.name))

    @delete("/{division_id:uuid}", summary="Delete a division (refused while it has locations)")
    async def delete_division(self, caller: NamedDependency[Caller], division_id: FromPath[UUID]) -> None:
        require(caller, "hierarchy:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_division(ctx, division_id, write=True)
            await hierarchy.delete_division(ctx, division_id)


class LocationController(Controller):
    path = BASE + "/locations"
    tags = ["hierarchy"]

    @get("/")
    async def list_locations(
        self, caller: NamedDependency[Caller], request: Request, division_id: FromQuery[UUID | None] = None
    ) -> list[s.Location]:
        """``custom.<key>=value`` filters by a custom field (#6)."""
        require(caller, "hierarchy:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await hierarchy.list_locations(ctx, division_id, custom_filters(request))
            rows = await scopes.filter_rows(ctx, rows, "id", "location")
            return s.out(s.Location, await hierarchy.with_custom(ctx, rows))

    @post("/")
    async def create_location(
        self, caller: NamedDependency[Caller], data: JSONBody[s.LocationIn]
    ) -> s.Location:
        require(caller, "hierarchy:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_division(ctx, data.division_id, write=True)
            row = await hierarchy.create_location(
                ctx, data.division_id, data.name, data.address, data.region, data.timezone, data.custom
            )
            return s.out(s.Location, (await hierarchy.with_custom(ctx, [row]))[0])

    @get("/{location_id:uuid}")
    async def get_location(self, caller: NamedDependency[Caller], location_id: FromPath[UUID]) -> s.Location:
        require(caller, "hierarchy:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await scopes.check_location(ctx, location_id)
            row = await hierarchy.get_location(ctx, location_id)
            return s.out(s.Location, (await hierarchy.with_custom(ctx, [row]))[0])

    @patch("/{location_id:uuid}", summary="Rename, move or edit a location")
    async def update_location(
        self, caller: NamedDependency[Caller], location_id: FromPath[UUID], data: JSONBody[s.LocationPatch]
    ) -> s.Location:
        require(caller, "hierarchy:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_location(ctx, location_id)
            if data.division_id is not None:
                await scopes.check_division(ctx, data.division_id, write=True)
            row = await hierarchy.update_location(
                ctx,
                location_id,
                name=data.name,
                division_id=data.division_id,
                address=data.address,
                region=data.region,
                timezone=data.timezone,
                custom=data.custom,
            )
            return s.out(s.Location, (await hierarchy.with_custom(ctx, [row]))[0])

    @delete("/{location_id:uuid}", summary="Delete a location (refused while it has banks)")
    async def delete_location(self, caller: NamedDependency[Caller], location_id: FromPath[UUID]) -> None:
        require(caller, "hierarchy:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_location(ctx, location_id)
            await hierarchy.delete_location(ctx, location_id)
