"""The partner API (J2, K1, G4), the drop-off at a kiosk, and the webhook deliveries list.

Partners (shipping and retail software) call ``/partner/...`` with an API key
holding ``partner:write``; kiosks drop returns off with ``pickup``; carriers
collect returns with ``packages:write``; ``GET /webhook-deliveries`` shows
every event delivery to the tenant's subscribers (``plugins:read``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from pigeonhole.domain import packages, partner, returns
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.errors import Invalid
from pigeonhole.domain.identity import scopes
from pigeonhole.messaging import subscribers
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require

Text100 = Annotated[str, Meta(min_length=1, max_length=100)]
Size = Literal["xs", "s", "m", "l", "xl"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class PartnerRecipientIn(_Strict):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    language: Literal["en", "fr"] = "en"


class PreadviseIn(_Strict):
    tracking_id: Text100
    carrier: Text100
    size: Size = "m"
    recipient: PartnerRecipientIn | None = None
    recipient_contact_id: UUID | None = None
    department_id: UUID | None = None
    bank_id: UUID | None = None
    #: E3: hold a compartment at the bank for this delivery until it arrives (or ``hold_until``)
    hold_compartment: bool = False
    hold_until: datetime | None = None


class ArriveIn(_Strict):
    tracking_id: Text100
    #: Default: the bank named at pre-advice; none: the package is received and waits for a locker.
    bank_id: UUID | None = None
    compartment_id: UUID | None = None


class RedeliveryIn(_Strict):
    bank_id: UUID | None = None
    hold_compartment: bool = False


class ReturnIn(_Strict):
    bank_id: UUID
    carrier: Text100
    recipient: PartnerRecipientIn | None = None
    recipient_contact_id: UUID | None = None
    tracking_id: Text100 | None = None
    size: Size = "m"
    #: How long the drop-off code and the compartment are held
    days: int = 7


class ExchangeItemIn(_Strict):
    tracking_id: Text100 | None = None
    carrier: Text100 | None = None
    size: Size | None = None


class ExchangeIn(_Strict):
    bank_id: UUID
    delivery: ExchangeItemIn
    recipient: PartnerRecipientIn | None = None
    recipient_contact_id: UUID | None = None
    #: The return left in the same compartment (tracking id generated when omitted)
    back: ExchangeItemIn = msgspec.field(name="return", default_factory=ExchangeItemIn)
    days: int = 7


class PartnerPackage(s.Package):
    #: The compartment held for it (pre-advice with hold_compartment, redelivery with hold)
    reservation_id: UUID | None = None


class ReturnOut(msgspec.Struct):
    package: PartnerPackage
    reservation_id: UUID
    #: The drop-off code, also sent to the customer (return.created): show it, never store it.
    code: str
    door: int
    delivery: PartnerPackage | None = None


class DropoffIn(_Strict):
    code: Annotated[str, Meta(min_length=1, max_length=64)]


class DropoffOut(msgspec.Struct):
    package_id: UUID
    tracking_id: str
    door: int
    outcome: str
    kind: str
    delivery_package_id: UUID | None = None


class CollectIn(_Strict):
    #: One return; omitted: every return waiting for a carrier at the bank
    package_id: UUID | None = None


class CollectedOut(msgspec.Struct):
    package_id: UUID
    tracking_id: str
    door: int
    outcome: str


class WebhookDeliveryOut(msgspec.Struct):
    id: UUID
    subscriber: str
    event_id: UUID
    event_kind: str
    package_id: UUID | None
    status: str
    attempts: int
    last_error: str | None
    response_code: int | None
    created_at: datetime
    sent_at: datetime | None


def partner_package(row: dict, door: dict | None = None) -> PartnerPackage:
    reservation = row.get("_reservation")
    values: dict[str, Any] = {k: v for k, v in row.items() if not k.startswith("_")}
    values["reservation_id"] = reservation["id"] if reservation else None
    out = msgspec.convert(values, PartnerPackage)
    if door is not None:
        out.door = s.Door(door=door["door"], outcome=door["outcome"])
    return out


def _body(data: msgspec.Struct) -> dict[str, Any]:
    body = msgspec.to_builtins(data)
    for key in ("bank_id", "recipient_contact_id", "department_id", "compartment_id", "hold_until"):
        if hasattr(data, key):
            body[key] = getattr(data, key)
    return body


class PartnerController(Controller):
    path = "/api/v1/t/{tenant:str}/partner"
    tags = ["partner"]

    @post(
        "/deliveries",
        status_code=201,
        summary="Pre-advise a delivery: a package 'expected' before it arrives (J2)",
        description=(
            "A member of the public must be reachable: an email or a phone is required (422 otherwise). "
            "With hold_compartment, a compartment of the bank is held for it (E3)."
        ),
    )
    async def preadvise(self, caller: NamedDependency[Caller], data: JSONBody[PreadviseIn]) -> PartnerPackage:
        require(caller, "partner:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            if data.bank_id is not None:
                await scopes.check_bank(ctx, data.bank_id)
            else:
                scopes.require_whole_tenant(caller, "pre-advise a delivery without naming its bank")
            return partner_package(await partner.preadvise(ctx, _body(data)))

    @post(
        "/deliveries/arrive",
        status_code=200,
        summary="A pre-advised delivery arrives: it becomes the real package, deposited when a bank is known",
    )
    async def arrive(self, caller: NamedDependency[Caller], data: JSONBody[ArriveIn]) -> PartnerPackage:
        require(caller, "packages:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            if data.bank_id is not None:
                await scopes.check_bank(ctx, data.bank_id)
            expected = await partner.expected_by_tracking(ctx, data.tracking_id)
            bank_id = data.bank_id or expected["bank_id"]
            if bank_id is not None:
                await scopes.check_bank(ctx, bank_id)
            elif not scopes.whole_tenant(caller):
                raise Invalid(
                    "You act at some locations only: receive the delivery into a bank there (give bank_id)"
                )
            package, comp, command_id, bank = await partner.arrive(ctx, _body(data))
            if comp is None:
                return partner_package(package)
        door = await packages.open_for_deposit(
            caller.tenant, caller.actor, package["id"], bank, comp, command_id
        )
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return partner_package(await packages.get_package(ctx, package["id"]), door)

    @post(
        "/packages/{package_id:uuid}/redelivery",
        status_code=200,
        summary="Redeliver a package that expired or waits at the counter: back to 'received' for a bank (K1)",
    )
    async def redelivery(
        self, caller: NamedDependency[Caller], package_id: FromPath[UUID], data: JSONBody[RedeliveryIn]
    ) -> PartnerPackage:
        require(caller, "partner:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_package(ctx, package_id)
            if data.bank_id is not None:
                await scopes.check_bank(ctx, data.bank_id)
            return partner_package(await partner.redeliver(ctx, package_id, _body(data)))

    @post(
        "/returns",
        status_code=201,
        summary="Create a return: a compartment held and a drop-off code for the customer (K1, G4)",
    )
    async def create_return(self, caller: NamedDependency[Caller], data: JSONBody[ReturnIn]) -> ReturnOut:
        require(caller, "partner:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_bank(ctx, data.bank_id)
            made = await returns.create_return(ctx, _body(data))
        return ReturnOut(
            package=partner_package(made["package"]),
            reservation_id=made["reservation_id"],
            code=made["code"],
            door=made["door"],
        )

    @post(
        "/exchanges",
        status_code=201,
        summary="Create an exchange: a delivery and a return in one compartment, one visit (G4)",
    )
    async def create_exchange(self, caller: NamedDependency[Caller], data: JSONBody[ExchangeIn]) -> ReturnOut:
        require(caller, "partner:write")
        body = _body(data)
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_bank(ctx, data.bank_id)
            made = await returns.create_exchange(ctx, body)
        return ReturnOut(
            package=partner_package(made["package"]),
            delivery=partner_package(made["delivery"]),
            reservation_id=made["reservation_id"],
            code=made["code"],
            door=made["door"],
        )


class ReturnsAtBankController(Controller):
    path = "/api/v1/t/{tenant:str}/banks/{bank_id:uuid}"
    tags = ["returns"]

    @post(
        "/dropoff",
        status_code=200,
        summary="Open the compartment a drop-off (return or exchange) code holds",
        description=(
            "The same walls as pickup: 403 for a wrong code (naming why: used already, for another bank), "
            "429 when the kiosk or the bank pauses code entry, 502 when the door did not open."
        ),
    )
    async def dropoff(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[DropoffIn]
    ) -> DropoffOut:
        require(caller, "pickup")
        if not scopes.whole_tenant(caller):
            async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
                await scopes.check_bank(ctx, bank_id)
        return DropoffOut(**await returns.dropoff(caller.tenant, caller.actor, bank_id, data.code))

    @post(
        "/returns/collect",
        status_code=200,
        summary="A carrier collects the returns waiting at the bank (or one): their doors open",
    )
    async def collect(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[CollectIn]
    ) -> list[CollectedOut]:
        require(caller, "packages:write")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await scopes.check_bank(ctx, bank_id)
        done = await returns.collect(caller.tenant, caller.actor, bank_id, data.package_id)
        return [CollectedOut(**d) for d in done]


class WebhookDeliveryController(Controller):
    path = "/api/v1/t/{tenant:str}/webhook-deliveries"
    tags = ["partner"]

    @get("/", summary="Deliveries of custody events to the tenant's subscribers (partner webhooks)")
    async def list_deliveries(
        self,
        caller: NamedDependency[Caller],
        status: FromQuery[str | None] = None,
        subscriber: FromQuery[str | None] = None,
        package_id: FromQuery[UUID | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
    ) -> list[WebhookDeliveryOut]:
        """``status``: queued, sending, sent or failed (with ``last_error`` and ``response_code``)."""
        require(caller, "plugins:read")
        scopes.require_whole_tenant(caller, "see webhook deliveries")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await subscribers.list_deliveries(
                ctx, status=status, subscriber=subscriber, package_id=package_id, limit=limit, offset=offset
            )
        return [msgspec.convert(r, WebhookDeliveryOut) for r in rows]


PARTNER_CONTROLLERS = [PartnerController, ReturnsAtBankController, WebhookDeliveryController]
