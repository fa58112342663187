"""The site agent through crashes and a bad network, against real processes (issue #4).

A real ``pigeonhole serve`` (no embedded agent) and a real ``pigeonhole agent``.
The simulated board writes a line to a file each time it fires a lock, before
it answers, so unlocks are counted at the board across agent restarts: "no
second unlock" is read there, not inferred. Between agent and server, where a
test needs it, a TCP proxy the test controls cuts or stalls the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from tests.support import tenants
from tests.support.processes import SECRET_KEY, Deployment
from tests.support.smtp import pickup_code
from tests.test_agent_process import QUICK_RECONNECT, REMOTE_ONLY, Desk, client_for, wait_for_count


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


#: long enough to kill a process between the lock firing and the board's answer
SLOW_BOARD_MS = 1500


async def tenant_with_board(
    deployment: Deployment, unlock_log: Path, delay_ms: int = 0
) -> tenants.TestTenant:
    from pigeonhole.db import engine
    from pigeonhole.manifests.apply import apply
    from pigeonhole.settings import Settings, _app_database_url, set_settings

    banks = f"""
    [[divisions.locations.banks]]
    name = "Lobby"
    driver = "simulator"
    driver_config = {{ auto_close_after_ms = 200, unlock_delay_ms = {delay_ms}, unlock_log = "{unlock_log}" }}
    compartments = [ {{ size = "m", count = 3 }} ]
"""
    slug = f"rc{uuid.uuid4().hex[:8]}"
    extra = f"""
[[api_keys]]
name = "site-agent"
role = "agent"
key = "ph_test_{slug}_agent"
"""
    settings = Settings(
        data_dir=deployment.workdir / "data",
        database_url=deployment.database_url,
        app_database_url=_app_database_url(deployment.database_url),
        secret_key=SECRET_KEY,
    )
    set_settings(settings)
    try:
        await engine.connect(settings, pool_size=2)
        try:
            folder = tenants.write(deployment.workdir / "tenants", slug, banks=banks, extra=extra)
            await apply(folder)
        finally:
            await engine.disconnect()
    finally:
        set_settings(None)
    roles = ("admin", "operator", "kiosk", "agent")
    return tenants.TestTenant(slug=slug, folder=folder, keys={r: f"ph_test_{slug}_{r}" for r in roles})


def fired(log: Path, door: int) -> int:
    """How many times the board fired this door's lock."""
    if not log.exists():
        return 0
    return log.read_text().split().count(str(door))


async def until(what: str, check, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(step)


async def ready_package(desk: Desk, smtp, lobby: str) -> tuple[dict, str]:
    from tests.flows import deposit, new_email

    email = new_email()
    package = await deposit(desk.op, lobby, email=email)
    await desk.wait_status(package["id"], "ready")
    [mail] = await smtp.wait_for(email)
    return package, pickup_code(mail)


async def command_of(desk: Desk, lobby: str, door: int, after: set[str]) -> dict | None:
    for c in await desk.op.ok("GET", f"/banks/{lobby}/commands"):
        if c["id"] not in after and c["doors"] == [door]:
            return c
    return None


async def test_agent_killed_mid_command_never_fires_twice_and_the_outcome_is_reconciled(
    deploy, smtp, tmp_path
):
    deployment = deploy()
    log = tmp_path / "unlocks.log"
    tenant, server = await asyncio.gather(
        tenant_with_board(deployment, log, delay_ms=SLOW_BOARD_MS), deployment.serve(**REMOTE_ONLY)
    )
    key = tenant.keys["agent"]
    agent = await deployment.agent(server, tenant.slug, key, **QUICK_RECONNECT)
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        lobby = await desk.bank("Lobby")
        package, code = await ready_package(desk, smtp, lobby)
        door = package["door"]["door"]
        before = {c["id"] for c in await desk.op.ok("GET", f"/banks/{lobby}/commands")}
        assert fired(log, door) == 1, "the deposit fired it once"

        picking = asyncio.create_task(desk.kiosk.post(f"/banks/{lobby}/pickup", json={"code": code}))
        await until("the pickup fires the lock", lambda: _true(fired(log, door) == 2))
        agent.kill()  # after the lock fired, before the board answered
        failed = await picking
        assert failed.status_code == 502 and "no_answer" in failed.json()["detail"], failed.text
        assert (await desk.op.ok("GET", f"/packages/{package['id']}"))["status"] == "ready", "not stranded"
        command = await command_of(desk, lobby, door, before)
        assert command["state"] == "unknown" and command["outcome"] == {str(door): "no_answer"}

        again = await deployment.agent(server, tenant.slug, key, **QUICK_RECONNECT)
        assert "reporting 1 command(s) the server has not settled (1 with an unknown outcome)" in again.log()
        reconciled = await until(
            "the server takes the agent's word",
            lambda: _reconciled(desk, lobby, door, before),
        )
        assert reconciled["reconciled_outcome"] == "unknown" and reconciled["reconciled_by"] == "agent"
        assert reconciled["acked_at"] is not None, "acknowledged, then nobody knew"
        [alert] = await desk.op.ok("GET", "/alerts")
        assert alert["kind"] == "command.unknown_outcome" and alert["command_id"] == command["id"]
        assert "nobody knows whether it opened" in alert["message"]
        assert fired(log, door) == 2, "the restarted agent did not fire the command again"

        # Settled: a third life does not report it again, and the code still works.
        again.kill()
        third = await deployment.agent(server, tenant.slug, key, **QUICK_RECONNECT)
        assert "reporting" not in third.log()
        picked = await desk.kiosk.ok("POST", f"/banks/{lobby}/pickup", {"code": code})
        assert picked["outcome"] == "opened" and fired(log, door) == 3, "a new command, a new unlock"


async def _true(value: bool) -> bool:
    return value


async def _reconciled(desk: Desk, lobby: str, door: int, before: set[str]) -> dict | None:
    command = await command_of(desk, lobby, door, before)
    return command if command and command["state"] == "reconciled" else None


async def test_server_killed_mid_command_finishes_the_pickup_from_the_agents_word(deploy, smtp, tmp_path):
    deployment = deploy()
    log = tmp_path / "unlocks.log"
    tenant, server = await asyncio.gather(
        tenant_with_board(deployment, log, delay_ms=SLOW_BOARD_MS), deployment.serve(**REMOTE_ONLY)
    )
    agent = await deployment.agent(server, tenant.slug, tenant.keys["agent"], **QUICK_RECONNECT)
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        lobby = await desk.bank("Lobby")
        package, code = await ready_package(desk, smtp, lobby)
        door = package["door"]["door"]
        before = {c["id"] for c in await desk.op.ok("GET", f"/banks/{lobby}/commands")}

        picking = asyncio.create_task(desk.kiosk.post(f"/banks/{lobby}/pickup", json={"code": code}))
        await until("the pickup fires the lock", lambda: _true(fired(log, door) == 2))
        server.kill()
        with pytest.raises(httpx.TransportError):
            await picking
    await agent.wait_for_output("lost the link")
    await agent.wait_for_output("result of command", timeout=10)  # the board answered; the link was gone

    server = await deployment.serve_again(server, **REMOTE_ONLY)
    await wait_for_count(agent, "connected to", 2)
    assert "reporting 1 command(s) the server has not settled" in agent.log()
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        done = await desk.wait_status(package["id"], "picked_up")
        assert done["picked_up_by"] == "Ada Lovelace"
        command = await _reconciled(desk, lobby, door, before)
        assert command["outcome"] == {str(door): "opened"}
        assert command["reconciled_outcome"] == {str(door): "opened"} and command["reconciled_by"] == "agent"
        comp = next(
            c for c in (await desk.op.ok("GET", f"/banks/{lobby}"))["compartments"] if c["door"] == door
        )
        assert comp["status"] == "available"
        kinds = [e["kind"] for e in await desk.op.ok("GET", f"/packages/{package['id']}/events")]
        assert "package.picked_up" in kinds and "door.command_reconciled" in kinds
        assert await desk.op.ok("GET", "/alerts") == [], "the outcome is known: nothing to look at"
        assert fired(log, door) == 2, "one unlock for the deposit, one for the pickup"


class Proxy:
    """A TCP relay between agent and server that the test can cut, stall and restore."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        self._tasks.add(asyncio.current_task())
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()  # stalled: hold the bytes, as a congested link would
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def cut(self) -> None:
        """The cable is pulled: every connection drops and new ones fail."""
        self.refusing = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.refusing = False
        self.flowing.set()

    def stall(self) -> None:
        """Packets stop flowing but nothing closes: only silence tells."""
        self.flowing.clear()

    async def close(self) -> None:
        self.cut()
        self.flowing.set()
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def agent_online(desk: Desk) -> bool | None:
    agents = await desk.op.ok("GET", "/agents")
    return agents[0]["online"] if agents else None


async def test_network_cut_and_restored_and_a_silent_link_goes_offline(deploy, tmp_path):
    deployment = deploy()
    log = tmp_path / "unlocks.log"
    fast = {"PIGEONHOLE_AGENT_HEARTBEAT_SECONDS": "0.2", "PIGEONHOLE_AGENT_OFFLINE_AFTER": "1.0"}
    tenant, server = await asyncio.gather(
        tenant_with_board(deployment, log), deployment.serve(**REMOTE_ONLY, **fast)
    )
    proxy = Proxy(server.port)
    await proxy.start()
    try:
        agent = await deployment.agent(
            server, tenant.slug, tenant.keys["agent"], PIGEONHOLE_URL=proxy.url, **QUICK_RECONNECT
        )
        async with client_for(server) as client:
            desk = Desk(client, tenant)
            lobby = await desk.bank("Lobby")
            await desk.deposit_opens(lobby)
            [shown] = await desk.op.ok("GET", "/agents")
            assert shown["online"] is True and shown["name"] == "site-agent" and shown["banks"] == [lobby]
            health = await until("a heartbeat brings the driver's health", lambda: _health(desk, lobby))
            assert health == {"ok": True, "detail": "simulated board, 3 doors"}

            proxy.cut()
            await agent.wait_for_output("lost the link")
            await until("the agent shows offline", lambda: _false(agent_online(desk)))
            await desk.deposit_refused_offline(lobby)

            proxy.restore()
            await wait_for_count(agent, "connected to", 2)
            await until("the agent shows online", lambda: agent_online(desk))
            await asyncio.sleep(2.5)  # idle for longer than offline_after: heartbeats keep it online
            assert await agent_online(desk) is True
            await desk.deposit_opens(lobby)

            # No close, no error: the link just goes quiet. Heartbeats stop; the bank goes offline.
            seen = (await desk.op.ok("GET", "/agents"))[0]["last_seen_at"]
            proxy.stall()
            await until("the silent agent shows offline", lambda: _false(agent_online(desk)))
            await desk.deposit_refused_offline(lobby)
            proxy.restore()
            await until("heartbeats come through again", lambda: agent_online(desk))
            await until("last seen moves on", lambda: _seen_after(desk, seen))
            await desk.deposit_opens(lobby)
            assert agent.log().count("connected to") == 2, "the stalled link came back without reconnecting"
            assert fired(log, 1) + fired(log, 2) + fired(log, 3) == 3, "three deposits, three unlocks"
    finally:
        await proxy.close()


async def _seen_after(desk: Desk, seen: str) -> bool:
    return (await desk.op.ok("GET", "/agents"))[0]["last_seen_at"] > seen


async def _health(desk: Desk, bank_id: str) -> dict | None:
    return (await desk.op.ok("GET", "/agents"))[0]["health"].get(bank_id)


async def _false(awaitable) -> bool:
    return (await awaitable) is False


# --- the journal itself, in-process ------------------------------------------------------------


class _Listener:
    def __init__(self) -> None:
        self.tenant_id = uuid.uuid4()
        self.bank_id = uuid.uuid4()


async def test_the_journal_keeps_a_restarted_agent_from_firing_a_command_again(tmp_path):
    from pigeonhole.edge.agent import Agent
    from pigeonhole.edge.journal import Journal
    from pigeonhole.edge.messages import UnlockCommand
    from pigeonhole_simulator import SimulatorConfig, SimulatorDriver

    log = tmp_path / "unlocks.log"
    path = tmp_path / "journal.jsonl"
    tenant_id, bank_id = uuid.uuid4(), uuid.uuid4()

    async def nothing(*_):
        return None

    async def agent_with(journal: Journal) -> Agent:
        agent = Agent(report=nothing, journal=journal)
        await agent.configure_bank(
            tenant_id, bank_id, SimulatorDriver, SimulatorConfig(unlock_log=str(log)), [1, 2]
        )
        return agent

    first = await agent_with(Journal(path))
    done = UnlockCommand(id=uuid.uuid4(), tenant_id=tenant_id, bank_id=bank_id, doors=[1])
    result = await first.execute(done)
    assert result.outcomes == {1: "opened"} and fired(log, 1) == 1
    # A crash between "started" and the board's answer: only the first line is on disk.
    cut_short = UnlockCommand(id=uuid.uuid4(), tenant_id=tenant_id, bank_id=bank_id, doors=[2])
    first.journal.started(cut_short.id, bank_id, [2])
    await first.stop()
    first.journal.close()

    journal = Journal(path)
    assert {e.id: e.outcomes for e in journal.unsettled()} == {done.id: {1: "opened"}, cut_short.id: None}
    second = await agent_with(journal)
    assert (await second.execute(done)).outcomes == {1: "opened"}, "the first answer, from disk"
    assert (await second.execute(cut_short)).outcomes == {2: "no_answer"}, "unknown: not fired"
    assert fired(log, 1) == 1 and fired(log, 2) == 0

    journal.settle([done.id, cut_short.id])
    journal.close()
    reopened = Journal(path)
    assert reopened.unsettled() == [] and reopened.get(done.id).outcomes == {1: "opened"}
    # A torn last line (a crash while writing) costs that line only.
    with open(path, "ab") as f:
        f.write(b'{"id": "' + str(UUID(int=5)).encode())
    reopened.close()
    assert Journal(path).get(done.id) is not None
    await second.stop()


# --- a server that died with its embedded agent; an operator's word -------------------------


async def _claim_and_die(t, code: str, bank_id: str) -> tuple[str, str]:
    """The first step of a pickup commits, then the process dies: nobody runs the rest."""
    from pigeonhole.domain import pickup
    from pigeonhole.domain.context import Actor, require_tenant, tenant_context

    info = await require_tenant(t.slug)
    async with tenant_context(info, Actor(name="kiosk-lobby", role="kiosk")) as ctx:
        error, session = await pickup._claim(ctx, UUID(bank_id), "pin", code, None)
    assert error is None
    return str(session.primary_id), str(session.command_id)


async def _ready_in_process(op, admin, smtp, bank_id: str) -> tuple[dict, str]:
    from tests.flows import deposit_and_close, new_email

    email = new_email()
    package = await deposit_and_close(op, admin, bank_id, email=email, size="s")
    [mail] = await smtp.wait_for(email)
    return package, pickup_code(mail)


async def test_a_restarted_server_settles_what_its_embedded_agent_left_open(make_tenant, api, smtp, services):
    from pigeonhole.domain import clock

    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    package, code = await _ready_in_process(op, admin, smtp, lobby)
    package_id, command_id = await _claim_and_die(t, code, lobby)
    assert (await op.ok("GET", f"/packages/{package_id}"))["status"] == "collecting"
    assert (await op.ok("GET", f"/commands/{command_id}"))["state"] == "pending"
    assert [c["id"] for c in await op.ok("GET", "/commands?status=pending")] == [command_id]

    services.hub.started_at = clock.now()  # a new process: everything before it is an orphan
    assert await services.hub.reconcile_embedded_orphans() >= 1
    assert (await op.ok("GET", f"/packages/{package_id}"))["status"] == "ready", "not stranded"
    command = await op.ok("GET", f"/commands/{command_id}")
    assert command["state"] == "reconciled" and command["reconciled_outcome"] == "unknown"
    assert command["reconciled_by"] == "restart" and command["outcome"] == {
        str(package["door"]["door"]): "no_answer"
    }
    [alert] = await op.ok("GET", "/alerts")
    assert alert["kind"] == "command.unknown_outcome" and alert["package_id"] == package_id
    picked = await api(t, "kiosk").ok("POST", f"/banks/{lobby}/pickup", {"code": code})
    assert picked["package_id"] == package_id, "the code still works"


async def test_an_operator_settles_a_command_no_agent_will_report(make_tenant, api, smtp):
    t = await make_tenant()
    op, admin, kiosk = api(t, "operator"), api(t, "admin"), api(t, "kiosk")
    lobby = t.banks["Lobby"]
    package, code = await _ready_in_process(op, admin, smtp, lobby)
    package_id, command_id = await _claim_and_die(t, code, lobby)
    from pigeonhole.domain import commands

    commands._in_flight.pop(UUID(command_id), None)  # the process that sent it is gone

    refused = await kiosk.post(f"/commands/{command_id}/resolve", json={"door_opened": True, "note": "x"})
    assert refused.status_code == 403 and "doors:open" in refused.json()["detail"]
    no_note = await op.post(f"/commands/{command_id}/resolve", json={"door_opened": True})
    assert no_note.status_code == 400 and "note" in no_note.text

    resolved = await op.ok(
        "POST", f"/commands/{command_id}/resolve", {"door_opened": True, "note": "CCTV: Ada took it"}
    )
    assert resolved["state"] == "reconciled" and resolved["reconciled_by"] == "operator:operator"
    assert resolved["outcome"] == {str(package["door"]["door"]): "opened"}
    done = await op.ok("GET", f"/packages/{package_id}")
    assert done["status"] == "picked_up", "the pickup finished from the operator's word"
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{package_id}/events")]
    assert "package.picked_up" in kinds and "door.command_reconciled" in kinds
    again = await op.post(f"/commands/{command_id}/resolve", json={"door_opened": False, "note": "oops"})
    assert again.status_code == 409 and "nothing to resolve" in again.json()["detail"]
    assert await op.ok("GET", "/alerts") == []


async def _assign_and_die(t, bank_id: str) -> tuple[str, str, int]:
    """The first step of a deposit commits, then the process dies before the door's answer."""
    from pigeonhole.domain import packages
    from pigeonhole.domain.context import Actor, require_tenant, tenant_context

    info = await require_tenant(t.slug)
    body = {
        "tracking_id": f"TRK-{uuid.uuid4().hex[:8]}",
        "carrier": "UPS",
        "size": "s",
        "recipient": {"name": "Ada Lovelace"},
        "bank_id": UUID(bank_id),
    }
    async with tenant_context(info, Actor(name="operator", role="operator")) as ctx:
        package, comp, command_id, _ = await packages.receive(ctx, body)
    return str(package["id"]), str(command_id), comp["door"]


async def test_an_orphan_deposit_goes_on_or_back_as_the_agent_says(make_tenant, api):
    from pigeonhole.domain import commands
    from pigeonhole.domain.context import require_tenant

    from tests.flows import close_door, compartment

    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    info = await require_tenant(t.slug)

    opened_id, command_id, door = await _assign_and_die(t, lobby)
    done = await commands.reconcile(info, UUID(command_id), {door: "opened"}, by="agent")
    assert done == "deposit opened"
    assert (await op.ok("GET", f"/packages/{opened_id}"))["status"] == "depositing"
    # The board here never saw that command: make its door open as the agent's did, then close it.
    await admin.ok("POST", f"/ext/simulator/banks/{lobby}/doors/{door}/force-open")
    await close_door(admin, lobby, door)  # the door the agent opened closes: the deposit completes
    assert (await op.ok("GET", f"/packages/{opened_id}"))["status"] == "ready"

    jammed_id, command_id, jammed_door = await _assign_and_die(t, lobby)
    assert await commands.reconcile(info, UUID(command_id), {jammed_door: "jammed"}, by="agent") == (
        "deposit undone"
    )
    assert (await op.ok("GET", f"/packages/{jammed_id}"))["status"] == "received", "back to the shelf"
    comp = await compartment(op, lobby, jammed_door)
    assert comp["status"] == "out_of_service" and "jammed" in comp["status_note"]
    again = await commands.reconcile(info, UUID(command_id), {jammed_door: "opened"}, by="agent")
    assert again == "already reconciled", "a report settles a command once"
    assert await op.ok("GET", "/alerts") == []


async def test_a_result_after_the_deadline_is_taken_beside_the_record(deploy, tmp_path):
    """The board answers after the server gave up: no_answer stays recorded, the agent's word is added."""
    deployment = deploy()
    log = tmp_path / "unlocks.log"
    tenant, server = await asyncio.gather(
        tenant_with_board(deployment, log, delay_ms=5800), deployment.serve(**REMOTE_ONLY)
    )
    await deployment.agent(server, tenant.slug, tenant.keys["agent"])
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        lobby = await desk.bank("Lobby")
        from tests.test_agent_process import deposit_body

        failed = await desk.op.post("/packages", json=deposit_body(lobby))
        assert failed.status_code == 502 and "no_answer" in failed.json()["detail"], failed.text
        door = failed.json()["door"]
        command = await until("the late result is taken", lambda: _reconciled(desk, lobby, door, set()))
        assert command["outcome"] == {str(door): "no_answer"}, "the record stands"
        assert command["reconciled_outcome"] == {str(door): "opened"}
        [alert] = await desk.op.ok("GET", "/alerts")
        assert alert["kind"] == "command.outcome_differs" and alert["command_id"] == command["id"]
        assert f"door {door} opened (recorded: no_answer)" in alert["message"]
        assert fired(log, door) == 1
