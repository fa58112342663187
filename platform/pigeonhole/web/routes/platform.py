"""The platform operator's routes, above tenants: create, list, suspend and resume tenants.

Authenticated by a platform key (``pigeonhole platform-key create``), never
by a tenant's credential. See domain/identity/platform_ops.py.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from pigeonhole.domain.context import Actor
from pigeonhole.domain.errors import Unauthenticated
from pigeonhole.domain.identity import platform_ops
from pigeonhole.web.schemas import Name, Strict


class TenantIn(Strict):
    slug: Annotated[str, Meta(min_length=2, max_length=63)]
    name: Name


class TenantPatch(Strict):
    status: Literal["active", "suspended"]


class TenantOut(msgspec.Struct):
    id: UUID
    slug: str
    name: str
    status: str


async def platform_operator(request: Request) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(platform_ops.PREFIX):
        raise Unauthenticated("Missing credentials: send 'Authorization: Bearer <platform key>'")
    return await platform_ops.operator(key)


class PlatformTenantController(Controller):
    path = "/api/v1/platform/tenants"
    tags = ["platform"]
    dependencies = {"operator": Provide(platform_operator)}

    @get("/")
    async def list_tenants(
        self, operator: NamedDependency[Actor], status: FromQuery[str | None] = None
    ) -> list[TenantOut]:
        return [msgspec.convert(r, TenantOut) for r in await platform_ops.list_tenants(status)]

    @post("/", summary="Create a tenant (its built-in roles come with it)")
    async def create_tenant(self, operator: NamedDependency[Actor], data: JSONBody[TenantIn]) -> TenantOut:
        return msgspec.convert(await platform_ops.create_tenant(operator, data.slug, data.name), TenantOut)

    @get("/{slug:str}")
    async def get_tenant(self, operator: NamedDependency[Actor], slug: FromPath[str]) -> TenantOut:
        info = await platform_ops.get_tenant(slug)
        return TenantOut(id=info.id, slug=info.slug, name=info.name, status=info.status)

    @patch("/{slug:str}", summary="Suspend a tenant (its routes answer 403/404) or make it active again")
    async def set_status(
        self, operator: NamedDependency[Actor], slug: FromPath[str], data: JSONBody[TenantPatch]
    ) -> TenantOut:
        return msgspec.convert(await platform_ops.set_status(operator, slug, data.status), TenantOut)
