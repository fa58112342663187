"""The lock agent as a separate process, linked to the server over a WebSocket (0008).

The server runs without its embedded agent (``PIGEONHOLE_AGENT=off``), so a
door opens only if ``pigeonhole agent`` is connected for its bank. The site's
simulated doors close themselves (``auto_close_after_ms``), so a deposit
completes only if that door event travels back over the link: the server
has no board of its own to close.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import msgspec
import pytest
from pigeonhole.api import UnlockOutcome
from pigeonhole.edge import protocol
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.flows import deposit, new_email
from tests.support import tenants
from tests.support.api import Api
from tests.support.processes import SECRET_KEY, Deployment, Process, Server
from tests.support.smtp import pickup_code

REMOTE_ONLY = {"PIGEONHOLE_AGENT": "off"}
# A lost agent comes back within a second or so, not after the default 30 s cap.
QUICK_RECONNECT = {"PIGEONHOLE_AGENT_MAX_BACKOFF": "1"}
# The simulated person closes a door this long after it opened: after the deposit's
# answer has left, in practice (either order completes the deposit).
AUTO_CLOSE_MS = 300

BANKS = f"""
    [[divisions.locations.banks]]
    name = "Lobby"
    driver = "simulator"
    driver_config = {{ auto_close_after_ms = {AUTO_CLOSE_MS} }}
    compartments = [ {{ size = "s", count = 2 }}, {{ size = "m", count = 4 }} ]

    [[divisions.locations.banks]]
    name = "Annex"
    driver = "simulator"
    driver_config = {{ auto_close_after_ms = {AUTO_CLOSE_MS} }}
    compartments = [ {{ size = "m", count = 2 }} ]
"""


def agent_keys(slug: str) -> str:
    return f"""
[[api_keys]]
name = "site-agent"
role = "agent"
key = "ph_test_{slug}_agent"

[[api_keys]]
name = "annex-agent"
role = "agent"
bank = "Annex"
key = "ph_test_{slug}_annexagent"
"""


@pytest.fixture
def deploy(database, smtp, tmp_path):
    """A Deployment on this test's database; its processes are killed at teardown, their logs shown."""
    made: list[Deployment] = []

    def make() -> Deployment:
        deployment = Deployment(tmp_path / f"deployment{len(made)}", database_url=database, smtp_url=smtp.url)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()
        print(deployment.logs())  # pytest shows it when the test failed


async def new_tenants(deployment: Deployment, count: int = 1) -> list[tenants.TestTenant]:
    """Fresh tenants with agent keys, applied in this process under the deployment's secret key."""
    from pigeonhole.db import engine
    from pigeonhole.manifests.apply import apply
    from pigeonhole.settings import Settings, _app_database_url, set_settings

    settings = Settings(
        data_dir=deployment.workdir / "data",
        database_url=deployment.database_url,
        app_database_url=_app_database_url(deployment.database_url),
        secret_key=SECRET_KEY,
    )
    made = []
    set_settings(settings)
    try:
        await engine.connect(settings, pool_size=2)
        try:
            for _ in range(count):
                slug = f"ag{uuid.uuid4().hex[:8]}"
                folder = tenants.write(
                    deployment.workdir / "tenants", slug, banks=BANKS, extra=agent_keys(slug)
                )
                await apply(folder)
                roles = ("admin", "operator", "kiosk", "agent", "annexagent")
                made.append(
                    tenants.TestTenant(
                        slug=slug, folder=folder, keys={r: f"ph_test_{slug}_{r}" for r in roles}
                    )
                )
        finally:
            await engine.disconnect()
    finally:
        set_settings(None)
    return made


async def start(deployment: Deployment) -> tuple[tenants.TestTenant, Server]:
    """A tenant, applied while a server without an embedded agent boots."""
    [tenant], server = await asyncio.gather(new_tenants(deployment), deployment.serve(**REMOTE_ONLY))
    return tenant, server


def deposit_body(bank_id: str) -> dict:
    return {
        "tracking_id": f"TRK-{uuid.uuid4().hex[:10].upper()}",
        "carrier": "UPS",
        "size": "m",
        "recipient": {"name": "Ada Lovelace", "email": new_email()},
        "bank_id": bank_id,
    }


class Desk:
    """One tenant seen through one server's HTTP API."""

    def __init__(self, client: httpx.AsyncClient, tenant: tenants.TestTenant) -> None:
        self.op = Api(client, tenant.slug, tenant.keys["operator"])
        self.kiosk = Api(client, tenant.slug, tenant.keys["kiosk"])
        self.admin = Api(client, tenant.slug, tenant.keys["admin"])

    async def bank(self, name: str) -> str:
        return next(b["id"] for b in await self.op.ok("GET", "/banks") if b["name"] == name)

    async def deposit_refused_offline(self, bank_id: str) -> None:
        body = deposit_body(bank_id)
        refused = await self.op.post("/packages", json=body)
        assert refused.status_code == 503, refused.text
        assert "offline" in refused.json()["detail"]
        found = await self.op.ok("GET", f"/packages?tracking_id={body['tracking_id']}")
        assert found == [], "a refusal records nothing"

    async def deposit_opens(self, bank_id: str, **kwargs) -> dict:
        package = await deposit(self.op, bank_id, **kwargs)
        assert package["door"]["outcome"] == "opened", package
        return package

    async def wait_status(self, package_id: str, status: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            package = await self.op.ok("GET", f"/packages/{package_id}")
            if package["status"] == status:
                return package
            assert time.monotonic() < deadline, f"package still {package['status']}, never {status}"
            await asyncio.sleep(0.05)


def client_for(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30)


def agent_url(server: Server, slug: str) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/t/{slug}/agent"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def wait_for_count(process: Process, text: str, count: int, timeout: float = 30.0) -> None:
    """Until ``text`` appears ``count`` times in the process's output."""
    deadline = time.monotonic() + timeout
    while process.log().count(text) < count:
        assert process.running, f"{process.name} exited\n{process.describe()}"
        assert time.monotonic() < deadline, f"{text!r} not {count} times\n{process.describe()}"
        await asyncio.sleep(0.05)


# --- the flow through a site agent --------------------------------------------------------------


async def test_deposit_to_pickup_through_a_site_agent(deploy, smtp):
    deployment = deploy()
    tenant, server = await start(deployment)
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        lobby = await desk.bank("Lobby")
        await desk.deposit_refused_offline(lobby)

        agent = await deployment.agent(server, tenant.slug, tenant.keys["agent"])
        assert "serving 2 bank(s): Annex (simulator, 2 doors), Lobby (simulator, 6 doors)" in agent.log()

        email = new_email()
        package = await desk.deposit_opens(lobby, email=email)
        door = package["door"]["door"]
        [sent] = await desk.op.ok("GET", f"/banks/{lobby}/commands")
        assert sent["acked_at"] is not None, "the agent acknowledged the command"
        assert sent["outcome"] == {str(door): "opened"}

        # The door closes at the site; its event completes the deposit on the server.
        await desk.wait_status(package["id"], "ready")
        gone = await desk.admin.get(f"/ext/simulator/banks/{lobby}/doors")
        assert gone.status_code == 404, "the board lives in the agent's process, not the server's"
        [mail] = await smtp.wait_for(email)
        code = pickup_code(mail)

        picked = await desk.kiosk.ok("POST", f"/banks/{lobby}/pickup", {"code": code})
        assert (picked["door"], picked["outcome"]) == (door, "opened")
        assert (await desk.op.ok("GET", f"/packages/{package['id']}"))["status"] == "picked_up"
        pickup, deposited = await desk.op.ok("GET", f"/banks/{lobby}/commands")
        assert deposited["id"] == sent["id"]
        assert pickup["acked_at"] is not None and pickup["outcome"] == {str(door): "opened"}
        kinds = [e["kind"] for e in await desk.op.ok("GET", f"/packages/{package['id']}/events")]
        assert {"door.opened", "door.closed", "package.deposited", "package.picked_up"} <= set(kinds)

    agent.stop()
    assert agent.returncode == 0, agent.describe()
    assert "agent stopped" in agent.log()


async def test_the_bank_is_offline_without_its_agent_and_back_with_it(deploy):
    deployment = deploy()
    tenant, server = await start(deployment)
    key = tenant.keys["agent"]
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        lobby = await desk.bank("Lobby")
        crashed = await deployment.agent(server, tenant.slug, key, **QUICK_RECONNECT)
        await desk.deposit_opens(lobby)

        crashed.kill()
        await wait_for_count(server, f"agent 'site-agent' of tenant {tenant.slug} disconnected", 1)
        await desk.deposit_refused_offline(lobby)

        agent = await deployment.agent(server, tenant.slug, key, **QUICK_RECONNECT)
        package = await desk.deposit_opens(lobby)
        await desk.wait_status(package["id"], "ready")

    server.stop()
    await agent.wait_for_output("lost the link")
    server = await deployment.serve_again(server, **REMOTE_ONLY)
    await wait_for_count(agent, "connected to", 2)
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        package = await desk.deposit_opens(lobby)
        await desk.wait_status(package["id"], "ready")
        commands = await desk.op.ok("GET", f"/banks/{lobby}/commands")
        assert len(commands) == 3
        assert all(c["acked_at"] is not None and "opened" in c["outcome"].values() for c in commands)


# --- who may connect, and what the link says ----------------------------------------------------


async def test_only_agent_keys_of_the_tenant_may_connect(deploy):
    deployment = deploy()
    (tenant, other), server = await asyncio.gather(
        new_tenants(deployment, 2), deployment.serve(**REMOTE_ONLY)
    )
    url = agent_url(server, tenant.slug)
    refusals = {
        "kiosk": (bearer(tenant.keys["kiosk"]), "role 'kiosk'"),
        "operator": (bearer(tenant.keys["operator"]), "role 'operator'"),
        "another tenant's agent": (bearer(other.keys["agent"]), "Invalid API key"),
        "a made-up key": (bearer("ph_not_a_key"), "Invalid API key"),
        "no key": ({}, "Missing credentials"),
    }
    for who, (headers, reason) in refusals.items():
        async with connect(url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None, who
        assert closed.value.rcvd.code == 1008, who
        assert reason in closed.value.rcvd.reason, (who, closed.value.rcvd.reason)

    refused = await deployment.agent(server, tenant.slug, tenant.keys["operator"], wait=None)
    assert await refused.wait_exit() == 1
    assert "the server refused this agent" in refused.log() and "role 'operator'" in refused.log()

    # A key bound to a bank serves that bank only.
    annex_agent = await deployment.agent(server, tenant.slug, tenant.keys["annexagent"])
    assert "serving 1 bank(s): Annex (simulator, 2 doors)" in annex_agent.log()
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        annex = await desk.bank("Annex")
        await desk.deposit_refused_offline(await desk.bank("Lobby"))
        await desk.deposit_opens(annex)

        # A bank that changes is sent again: the agent drives the new door at once.
        await desk.admin.ok(
            "POST", f"/banks/{annex}/compartments", {"compartments": [{"door": 3, "size": "l"}]}
        )
        await annex_agent.wait_for_output("banks changed: serving 1 bank(s): Annex (simulator, 3 doors)")
        package = await desk.deposit_opens(annex, size="l")
        assert package["door"]["door"] == 3


async def test_acknowledged_is_not_done_when_the_link_closes_mid_command(deploy):
    """Speak the protocol by hand: banks, serving, unlock, ack, then hang up before the result."""
    deployment = deploy()
    tenant, server = await start(deployment)
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        lobby = await desk.bank("Lobby")
        async with connect(
            agent_url(server, tenant.slug), additional_headers=bearer(tenant.keys["agent"])
        ) as ws:
            banks = protocol.server_decoder.decode(await ws.recv())
            assert isinstance(banks, protocol.Banks) and banks.tenant == tenant.slug
            offered = {str(b.id): b for b in banks.banks}
            assert set(offered) == {lobby, await desk.bank("Annex")}
            assert offered[lobby].driver == "simulator" and offered[lobby].doors == [1, 2, 3, 4, 5, 6]
            assert msgspec.json.decode(offered[lobby].driver_config)["auto_close_after_ms"] == AUTO_CLOSE_MS
            await ws.send(protocol.text(protocol.Serving(revision=banks.revision, banks=[offered[lobby].id])))

            depositing = asyncio.create_task(desk.op.post("/packages", json=deposit_body(lobby)))
            unlock = protocol.server_decoder.decode(await ws.recv())
            assert isinstance(unlock, protocol.Unlock) and str(unlock.bank_id) == lobby
            await ws.send(protocol.text(protocol.Ack(id=unlock.id)))
            # Hang up before the door's outcome: the server must not wait for a result.
        failed = await depositing
        assert failed.status_code == 502 and "no_answer" in failed.json()["detail"], failed.text
        [command] = await desk.op.ok("GET", f"/banks/{lobby}/commands")
        assert command["id"] == str(unlock.id)
        assert command["acked_at"] is not None, "the agent did acknowledge it"
        assert command["outcome"] == {str(unlock.doors[0]): "no_answer"}, "but nobody knows what the door did"
        await desk.deposit_refused_offline(lobby)


# --- the deadline, in-process ------------------------------------------------------------------


async def test_no_result_by_the_deadline_is_no_answer_and_is_not_sent_again(make_tenant, api, services):
    """An agent that acknowledges and then says nothing: the hub gives up at its deadline, once."""
    from pigeonhole.domain.context import Actor, require_tenant
    from pigeonhole.edge.remote import AgentLink
    from pigeonhole.web.auth import Caller

    t = await make_tenant()
    op = api(t, "operator")
    lobby = t.banks["Lobby"]
    services.hub.command_timeout = 0.5
    sent: list[protocol.Unlock] = []

    async def silent_after_ack(text: str) -> None:
        message = protocol.server_decoder.decode(text)
        if isinstance(message, protocol.Unlock):
            sent.append(message)
            link.receive(protocol.Ack(id=message.id))

    caller = Caller(tenant=await require_tenant(t.slug), actor=Actor(name="mute", role="agent"))
    link = AgentLink(services.hub, caller, silent_after_ack)
    await link.offer()  # now it, not the embedded agent, serves the tenant's banks

    failed = await op.post("/packages", json=deposit_body(lobby))
    assert failed.status_code == 502 and "no_answer" in failed.json()["detail"], failed.text
    [unlock] = sent  # sent once: the hub does not retry an unlock whose outcome is unknown
    [command] = await op.ok("GET", f"/banks/{lobby}/commands")
    assert command["id"] == str(unlock.id)
    assert command["acked_at"] is not None and command["outcome"] == {str(unlock.doors[0]): "no_answer"}

    link.receive(protocol.Result(id=unlock.id, outcomes={unlock.doors[0]: UnlockOutcome.OPENED}))
    # No door opens again and the record stands; a link that runs (this one does not) would add the
    # agent's late word beside it: tests/test_agent_reconcile.py::test_a_result_after_the_deadline...
    assert await op.ok("GET", f"/banks/{lobby}/commands") == [command], "a late result reopens nothing"


def test_reconnect_delays_double_up_to_their_cap_with_jitter():
    from pigeonhole.edge.site import Backoff

    shortest = Backoff(first=0.5, cap=4, rand=lambda: 0.0)
    longest = Backoff(first=0.5, cap=4, rand=lambda: 1.0)
    assert [shortest.next() for _ in range(6)] == [0.25, 0.5, 1, 2, 2, 2]
    assert [longest.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    longest.reset()
    assert longest.next() == 0.5, "a link that came up starts the count again"
