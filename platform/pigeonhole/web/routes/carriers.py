"""Carrier codes (E7): create, list and revoke them; a kiosk turns one into a carrier session."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from pigeonhole.domain import carriers
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


class CarrierCodeIn(s.Strict):
    carrier: Annotated[str, Meta(min_length=1, max_length=100)]
    bank_ids: Annotated[list[UUID], Meta(max_length=500)]
    name: Annotated[str, Meta(max_length=200)] = ""
    expires_at: datetime | None = None


class CarrierCodeOut(msgspec.Struct):
    id: UUID
    carrier: str
    name: str
    prefix: str
    bank_ids: list[UUID]
    status: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_bank_id: UUID | None
    #: only in the answer that creates it: the code, and its QR form (SVG) for the kiosk's scanner
    code: str | None = None
    qr_svg: str | None = None


class CarrierSessionIn(s.Strict):
    code: Annotated[str, Meta(min_length=1, max_length=64)]


class CarrierSessionOut(msgspec.Struct):
    token: str
    carrier: str
    carrier_code_id: UUID
    bank_id: UUID
    expires_at: datetime
    permissions: list[str]


class CarrierCodeController(Controller):
    path = "/api/v1/t/{tenant:str}/carrier-codes"
    tags = ["access"]

    @get("/", summary="Carrier codes (never the codes themselves)")
    async def list_codes(self, caller: NamedDependency[Caller]) -> list[CarrierCodeOut]:
        require(caller, "apikeys:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(CarrierCodeOut, await carriers.list_codes(ctx))

    @post("/", summary="Create a carrier code for some banks; the code and its QR form are shown in this answer only")
    async def create_code(self, caller: NamedDependency[Caller], data: JSONBody[CarrierCodeIn]) -> CarrierCodeOut:
        require(caller, "apikeys:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row, code = await carriers.create(
                ctx, data.carrier, data.bank_ids, name=data.name, expires_at=data.expires_at
            )
        return s.out(CarrierCodeOut, {**row, "code": code, "qr_svg": carriers.qr_svg(code)})

    @delete("/{carrier_code_id:uuid}", status_code=200, summary="Revoke a carrier code; its sessions end at once")
    async def revoke(self, caller: NamedDependency[Caller], carrier_code_id: FromPath[UUID]) -> CarrierCodeOut:
        require(caller, "apikeys:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return s.out(CarrierCodeOut, await carriers.revoke(ctx, carrier_code_id))


class CarrierSessionController(Controller):
    path = "/api/v1/t/{tenant:str}/banks/{bank_id:uuid}/carrier-sessions"
    tags = ["access"]

    @post(
        "/",
        status_code=201,
        summary="At the kiosk: a carrier code becomes a short-lived carrier credential for this bank",
        description=(
            "The token answers as 'Authorization: Bearer phcs_...' for the carrier role at this bank "
            "only (receive and deposit packages) until expires_at. 403 naming the bank when the code "
            "is not valid there (nothing changes); a wrong code counts like a wrong pickup code (403 "
            "with the attempts left, then 429)."
        ),
    )
    async def start(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[CarrierSessionIn]
    ) -> CarrierSessionOut:
        require(caller, "pickup")
        session = await carriers.start_session(
            caller.tenant, caller.actor, bank_id, data.code, check=scopes.check_bank
        )
        return msgspec.convert(session, CarrierSessionOut)


CONTROLLERS = [CarrierCodeController, CarrierSessionController]
