"""Staff users of a tenant (A4): add, edit, delete, search.

Users carry custom field values (A5, screen ``users``) under ``custom``; the
list filters on them with query parameters ``custom.<key>=value``, as contacts do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.identity import users
from pigeonhole.web.auth import Caller, require
from pigeonhole.web.routes.directory import custom_filters
from pigeonhole.web.schemas import Name, Strict

Email = Annotated[str, Meta(min_length=3, max_length=254)]
EmployeeId = Annotated[str, Meta(max_length=64)]


class UserIn(Strict):
    email: Email
    name: Name
    employee_id: EmployeeId | None = None
    role_id: UUID | None = None
    role: str | None = None
    permissions: list[str] = []
    divisions: list[UUID] | None = None
    locations: list[UUID] | None = None
    custom: dict[str, Any] = {}


class UserPatch(Strict):
    name: Name | None = None
    employee_id: EmployeeId | None = None
    role_id: UUID | None = None
    permissions: list[str] | None = None
    divisions: list[UUID] | None = None
    locations: list[UUID] | None = None
    whole_tenant: bool = False
    custom: dict[str, Any] | None = None


class UserOut(msgspec.Struct):
    id: UUID
    email: str
    name: str
    employee_id: str | None
    role_id: UUID
    role: str | None
    permissions: list[str]
    effective_permissions: list[str] | None
    scope: dict[str, Any] | None
    status: str
    created_at: datetime
    updated_at: datetime
    custom: dict[str, Any] = {}


def _out(row: dict) -> UserOut:
    return msgspec.convert(row, UserOut)


class UserController(Controller):
    path = "/api/v1/t/{tenant:str}/users"
    tags = ["users"]

    @get(
        "/",
        summary="Search users by name, email or employee ID",
        description="q matches name, email or employee ID; role_id and custom.<key> narrow further.",
    )
    async def search(
        self,
        caller: NamedDependency[Caller],
        request: Request,
        q: FromQuery[str | None] = None,
        role_id: FromQuery[UUID | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
    ) -> list[UserOut]:
        require(caller, "users:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return [
                _out(r) for r in await users.search(ctx, q, role_id, limit, offset, custom_filters(request))
            ]

    @post("/", summary="Add a user; a welcome email carries a link to set the password")
    async def add(self, caller: NamedDependency[Caller], data: JSONBody[UserIn]) -> UserOut:
        require(caller, "users:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await users.create(
                ctx,
                email=data.email,
                name=data.name,
                employee_id=data.employee_id,
                role_id=data.role_id,
                role_name=data.role,
                extra_permissions=data.permissions,
                divisions=data.divisions,
                locations=data.locations,
                custom=data.custom,
            )
        return _out(row)

    @get("/{user_id:uuid}")
    async def show(self, caller: NamedDependency[Caller], user_id: FromPath[UUID]) -> UserOut:
        require(caller, "users:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return _out(await users.show(ctx, user_id))

    @patch("/{user_id:uuid}", summary="Edit name, employee ID, role, extra permissions or scope")
    async def edit(
        self, caller: NamedDependency[Caller], user_id: FromPath[UUID], data: JSONBody[UserPatch]
    ) -> UserOut:
        require(caller, "users:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await users.update(
                ctx,
                user_id,
                name=data.name,
                employee_id=data.employee_id,
                role_id=data.role_id,
                extra_permissions=data.permissions,
                divisions=data.divisions,
                locations=data.locations,
                whole_tenant=data.whole_tenant,
                custom=data.custom,
            )
        return _out(row)

    @delete("/{user_id:uuid}", summary="Delete a user (history keeps their name)")
    async def remove(self, caller: NamedDependency[Caller], user_id: FromPath[UUID]) -> None:
        require(caller, "users:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await users.delete(ctx, user_id)
