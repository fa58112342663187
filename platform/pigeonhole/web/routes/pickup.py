"""Pickup at a bank by code (F1, F6)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from pigeonhole.domain import pickup
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


class PickupController(Controller):
    path = "/api/v1/t/{tenant:str}/banks/{bank_id:uuid}/pickup"
    tags = ["pickup"]

    @post(
        "/",
        status_code=200,
        summary="Open the compartment of the package a code belongs to",
        description=(
            "403 for a wrong code (with the attempts left), 429 with Retry-After when the kiosk or "
            "the bank pauses code entry after repeated wrong codes, 502 when the door did not open."
        ),
    )
    async def pickup(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[s.PickupIn]
    ) -> s.PickupOut:
        require(caller, "pickup")
        if not scopes.whole_tenant(caller):
            async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
                await scopes.check_bank(ctx, bank_id)
        result = await pickup.pickup(
            caller.tenant, caller.actor, bank_id, data.code, method=data.method, package_id=data.package_id
        )
        return s.PickupOut(**result)
