"""Pickup at a bank by code, QR token or badge (F1, F2, F3, F6), and forgotten codes (F5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from pigeonhole.domain import pickup
from pigeonhole.domain.context import require_tenant, tenant_context
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


class PickupPackage(msgspec.Struct):
    package_id: UUID
    tracking_id: str
    #: a department's package collected by its key contact or a member (F3)
    department: bool = False


class PickupDoor(msgspec.Struct):
    door: int
    outcome: str
    packages: list[PickupPackage]


class PickupOut(msgspec.Struct):
    """The package whose code was presented (or the first one opened for a badge), and every door."""

    package_id: UUID
    tracking_id: str
    door: int
    outcome: str
    picked_up_at: datetime
    method: str
    person: str
    open_mode: str
    doors: list[PickupDoor]


class NewCodeOut(msgspec.Struct):
    package_id: UUID
    tracking_id: str
    methods: list[str]
    expires_at: datetime | None
    #: messages queued to the recipient with the new code
    messages: int


class RecipientNewCodeIn(s.Strict):
    tracking_id: Annotated[str, Meta(min_length=1, max_length=100)]
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None


class Message(msgspec.Struct):
    detail: str


class PickupController(Controller):
    path = "/api/v1/t/{tenant:str}/banks/{bank_id:uuid}/pickup"
    tags = ["pickup"]

    @post(
        "/",
        status_code=200,
        summary="Open every compartment of the person a code, QR token or badge belongs to",
        description=(
            "method 'pin' (default) or 'qr': the code opens its package and the holder's other ready "
            "packages at the bank (F2) and, per bank setting, their department's (F3); method 'badge': "
            "the Personnel ID opens every ready package of its holder. The answer lists every door with "
            "its outcome. 403 for a wrong, used or replaced code (with the attempts left), 429 with "
            "Retry-After when the kiosk or the bank pauses code entry after repeated wrong codes, 502 "
            "when no door opened."
        ),
    )
    async def pickup(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[s.PickupIn]
    ) -> PickupOut:
        require(caller, "pickup")
        if not scopes.whole_tenant(caller):
            async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
                await scopes.check_bank(ctx, bank_id)
        result = await pickup.pickup(
            caller.tenant, caller.actor, bank_id, data.code, method=data.method, package_id=data.package_id
        )
        return msgspec.convert(result, PickupOut)


class PackageCodeController(Controller):
    path = "/api/v1/t/{tenant:str}/packages/{package_id:uuid}/code"
    tags = ["pickup"]

    @post(
        "/",
        status_code=200,
        summary="A forgotten code: issue new pickup credentials, the old ones dead at once (F5)",
        description=(
            "The new code (and QR token) goes to the recipient in a package.code_replaced message; "
            "it is never shown here. 409 when the package is not waiting in a locker, or when no "
            "channel reaches its recipient (then nothing changes and the old code still works)."
        ),
    )
    async def new_code(self, caller: NamedDependency[Caller], package_id: FromPath[UUID]) -> NewCodeOut:
        require(caller, "packages:write")
        result = await pickup.operator_new_code(
            caller.tenant, caller.actor, package_id, check=scopes.check_package
        )
        return msgspec.convert(result, NewCodeOut)


class RecipientCodeController(Controller):
    """Public: the recipient app asks for a new code without signing in."""

    path = "/api/v1/t/{tenant:str}/recipient/new-code"
    tags = ["pickup"]

    @post(
        "/",
        status_code=202,
        summary="I forgot my code: a new one is sent to the address on file; the answer never says whether it matched",
        description=(
            "Give the tracking number and the email address or phone number the package was sent to. "
            "The answer is the same whether or not a package matched. 429 after too many requests from "
            "one address; a package gets at most a few new codes an hour."
        ),
    )
    async def new_code(self, request: Request, data: JSONBody[RecipientNewCodeIn]) -> Message:
        tenant = await require_tenant(request.path_params["tenant"])
        client = request.client
        detail = await pickup.self_service_new_code(
            tenant,
            data.tracking_id,
            email=data.email,
            phone=data.phone,
            ip=client.host if client else "unknown",
        )
        return Message(detail=detail)


CONTROLLERS = [PickupController, PackageCodeController, RecipientCodeController]
