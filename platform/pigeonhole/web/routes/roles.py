"""Roles (A3) and the permission catalog they are made of."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.identity import permissions, roles, scopes
from pigeonhole.web.auth import Caller, require
from pigeonhole.web.schemas import Strict

RoleName = Annotated[str, Meta(min_length=1, max_length=80)]


class RoleIn(Strict):
    name: RoleName
    permissions: list[str]
    description: Annotated[str, Meta(max_length=500)] = ""


class RolePatch(Strict):
    name: RoleName | None = None
    permissions: list[str] | None = None
    description: Annotated[str, Meta(max_length=500)] | None = None


class RoleOut(msgspec.Struct):
    id: UUID
    name: str
    description: str
    builtin: bool
    permissions: list[str]
    users: int | None = None


class PermissionOut(msgspec.Struct):
    name: str
    description: str


class RoleController(Controller):
    path = "/api/v1/t/{tenant:str}/roles"
    tags = ["users"]

    @get("/", summary="Built-in and custom roles, with how many users hold each")
    async def list_roles(self, caller: NamedDependency[Caller]) -> list[RoleOut]:
        require(caller, "roles:read")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await roles.ensure_builtin(ctx.scope)
            return [msgspec.convert(r, RoleOut) for r in await roles.list_roles(ctx)]

    @post("/", summary="Create a custom role: a named set of permissions")
    async def create_role(self, caller: NamedDependency[Caller], data: JSONBody[RoleIn]) -> RoleOut:
        require(caller, "roles:write")
        scopes.require_whole_tenant(caller, "create roles")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await roles.create(ctx, data.name, data.description, data.permissions)
        return msgspec.convert(row, RoleOut)

    @get("/{role_id:uuid}")
    async def get_role(self, caller: NamedDependency[Caller], role_id: FromPath[UUID]) -> RoleOut:
        require(caller, "roles:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            row = await roles.get(ctx.scope, role_id)
            return msgspec.convert(roles.out(row, await roles.holders(ctx.scope, role_id)), RoleOut)

    @patch("/{role_id:uuid}", summary="Rename a custom role or change its permissions")
    async def edit_role(
        self, caller: NamedDependency[Caller], role_id: FromPath[UUID], data: JSONBody[RolePatch]
    ) -> RoleOut:
        require(caller, "roles:write")
        scopes.require_whole_tenant(caller, "change roles")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await roles.update(
                ctx, role_id, name=data.name, description=data.description, perms=data.permissions
            )
        return msgspec.convert(row, RoleOut)

    @delete("/{role_id:uuid}", summary="Delete a custom role (refused while users hold it)")
    async def delete_role(self, caller: NamedDependency[Caller], role_id: FromPath[UUID]) -> None:
        require(caller, "roles:write")
        scopes.require_whole_tenant(caller, "delete roles")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await roles.delete(ctx, role_id)


class PermissionController(Controller):
    path = "/api/v1/t/{tenant:str}/permissions"
    tags = ["users"]

    @get("/", summary="The permission catalog: every permission a role can hold")
    async def catalog(self, caller: NamedDependency[Caller]) -> list[PermissionOut]:
        require(caller, "roles:read")
        return [PermissionOut(name=n, description=d) for n, d in permissions.CATALOG.items()]
