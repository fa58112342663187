"""Site agents: enrolment tokens, the exchange, and who is online (hardware #4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from pigeonhole.domain import agents, enrolment
from pigeonhole.domain.context import require_tenant, tenant_context
from pigeonhole.domain.errors import NotFound
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


class EnrolmentTokenIn(s.Strict):
    #: the agent's name, e.g. the site's
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    #: bind the agent to one bank; omitted: every bank of the tenant (a site)
    bank_id: UUID | None = None
    expires_in_minutes: Annotated[int, Meta(ge=1, le=enrolment.MAX_LIFETIME_MINUTES)] = 60


class EnrolmentTokenOut(msgspec.Struct):
    id: UUID
    name: str
    bank_id: UUID | None
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    state: str
    #: the token itself: in the answer that created it, never again
    token: str | None = None


class EnrolIn(s.Strict):
    #: the tenant's slug
    tenant: Annotated[str, Meta(min_length=1, max_length=200)]
    token: Annotated[str, Meta(min_length=1, max_length=200)]


class EnrolOut(msgspec.Struct):
    agent_id: UUID
    name: str
    tenant: str
    bank_id: UUID | None
    #: the agent's API key: shown once, kept by the agent in its credentials file
    key: str


class AgentOut(msgspec.Struct):
    id: UUID
    name: str
    bank_id: UUID | None
    api_key_id: UUID
    online: bool
    last_seen_at: datetime | None
    connected_at: datetime | None
    disconnected_at: datetime | None
    enrolled_at: datetime | None
    version: str
    banks: list[UUID]
    health: dict[str, Any]


async def _visible_agents(ctx, rows: list[dict]) -> list[dict]:
    if scopes.whole_tenant(ctx):
        return rows
    banks = await scopes.allowed_banks(ctx) or set()
    return [r for r in rows if r["bank_id"] in banks]


class AgentController(Controller):
    path = "/api/v1/t/{tenant:str}/agents"
    tags = ["agents"]

    @get("/", summary="Site agents, online or offline, with when each was last heard")
    async def list_agents(self, caller: NamedDependency[Caller]) -> list[AgentOut]:
        require(caller, "agents:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(AgentOut, await _visible_agents(ctx, await agents.list_agents(ctx)))

    @get("/{agent_id:uuid}")
    async def get_agent(self, caller: NamedDependency[Caller], agent_id: FromPath[UUID]) -> AgentOut:
        require(caller, "agents:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            row = await agents.get_agent(ctx, agent_id)
            if not await _visible_agents(ctx, [row]):
                raise NotFound("Agent", agent_id)
            return s.out(AgentOut, row)

    @post(
        "/enrolment-tokens",
        summary="A one-time token that enrols a site agent; the token is shown in this answer only",
    )
    async def create_token(
        self, caller: NamedDependency[Caller], data: JSONBody[EnrolmentTokenIn]
    ) -> EnrolmentTokenOut:
        require(caller, "agents:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            if data.bank_id is not None:
                await scopes.check_bank(ctx, data.bank_id)
            else:
                scopes.require_whole_tenant(ctx, "enrol an agent for every bank")
            row, token = await enrolment.create_token(ctx, data.name, data.bank_id, data.expires_in_minutes)
        return s.out(EnrolmentTokenOut, {**enrolment.token_out(row), "token": token})

    @get("/enrolment-tokens")
    async def list_tokens(self, caller: NamedDependency[Caller]) -> list[EnrolmentTokenOut]:
        require(caller, "agents:write")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await enrolment.list_tokens(ctx)
            if not scopes.whole_tenant(ctx):
                rows = await _visible_agents(ctx, rows)
            return s.out(EnrolmentTokenOut, rows)

    @delete("/enrolment-tokens/{token_id:uuid}", summary="Revoke a token not used yet")
    async def revoke_token(self, caller: NamedDependency[Caller], token_id: FromPath[UUID]) -> None:
        require(caller, "agents:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            rows = [r for r in await enrolment.list_tokens(ctx) if r["id"] == token_id]
            if rows and not await _visible_agents(ctx, rows) and not scopes.whole_tenant(ctx):
                raise NotFound("Enrolment token", token_id)
            await enrolment.revoke_token(ctx, token_id)


class EnrolController(Controller):
    """The exchange: no API key (the token is the credential), rate-limited per tenant.

    Outside the tenant prefix on purpose: nothing here is reached with a tenant's
    credential, and the tenant is named in the body beside its token.
    """

    path = "/api/v1/agents/enrol"
    tags = ["agents"]

    @post("/", summary="Trade a one-time enrolment token for the agent's own key", security=[])
    async def enrol(self, request: Request, data: JSONBody[EnrolIn]) -> EnrolOut:
        info = await require_tenant(data.tenant)
        client = request.client.host if request.client else ""
        return s.out(EnrolOut, await enrolment.exchange(info, data.token, client))
