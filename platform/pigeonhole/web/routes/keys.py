"""API keys for integrations, kiosks and agents."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from pigeonhole.domain import apikeys
from pigeonhole.domain.context import tenant_context
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


class ApiKeyController(Controller):
    path = "/api/v1/t/{tenant:str}/api-keys"
    tags = ["access"]

    @get("/")
    async def list_keys(self, caller: NamedDependency[Caller]) -> list[s.ApiKeyOut]:
        require(caller, "apikeys:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(s.ApiKeyOut, await apikeys.list_keys(ctx))

    @post("/", summary="Create a key; the key itself is shown in this answer only")
    async def create_key(self, caller: NamedDependency[Caller], data: JSONBody[s.ApiKeyIn]) -> s.ApiKeyOut:
        require(caller, "apikeys:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row, key = await apikeys.create(
                ctx,
                data.name,
                data.role,
                data.bank_id,
                perms=data.permissions,
                divisions=data.divisions,
                locations=data.locations,
            )
        return s.out(s.ApiKeyOut, {**row, "key": key})

    @delete("/{key_id:uuid}", summary="Revoke a key")
    async def revoke(self, caller: NamedDependency[Caller], key_id: FromPath[UUID]) -> None:
        require(caller, "apikeys:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await apikeys.revoke(ctx, key_id)
