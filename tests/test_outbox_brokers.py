"""Notifications leave through the outbox, on every broker, and survive crashes.

The state change and its outbox row commit together; a relay moves the row to
the broker and an actor sends the mail. These tests run the processes a
deployment runs (``pigeonhole serve`` and ``pigeonhole worker``) against
Redis, RabbitMQ and the embedded broker, and kill them at the worst moment:
after the commit, right before the send. The mail must still arrive, once.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import httpx
import pika
import pytest
import redis

from tests.flows import close_door, deposit, new_email
from tests.support import tenants
from tests.support.api import Api
from tests.support.processes import SECRET_KEY, Deployment, Process, Server
from tests.support.smtp import body_text, pickup_code

pytestmark = pytest.mark.broker

BROKER_URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/%2F",
}
SCHEMES = {"redis": "redis", "rabbitmq": "amqp"}
# The process that crashes holds its claim only briefly, so the one that
# replaces it may take the notification over without a five-minute wait.
SHORT_LEASE = {"PIGEONHOLE_SEND_LEASE_SECONDS": "2"}
# The process that picks up after a crash republishes unfinished rows quickly.
QUICK_REDELIVERY = {"PIGEONHOLE_OUTBOX_REDELIVER_SECONDS": "1", "PIGEONHOLE_BROKER_HEARTBEAT_MS": "2000"}
FAILPOINT = {"PIGEONHOLE_FAILPOINTS": "notify.before_send=exit"}
FAILPOINT_EXIT_CODE = 137
# After the mail arrives, how long a duplicate has to show up before we say there is none:
# longer than the relay's redelivery period above, so a republished row would have been sent.
SETTLE_SECONDS = 1.5


def _purge_broker(kind: str, deployment: Deployment) -> None:
    """Delete what this deployment left on the broker (its names are unique to it)."""
    if kind == "redis":
        client = redis.Redis.from_url(BROKER_URLS["redis"])
        try:
            keys = list(client.scan_iter(match=f"{deployment.namespace}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    elif kind == "rabbitmq":
        connection = pika.BlockingConnection(pika.URLParameters(BROKER_URLS["rabbitmq"]))
        try:
            channel = connection.channel()
            for name in (deployment.queue, f"{deployment.queue}.DQ", f"{deployment.queue}.XQ"):
                channel.queue_delete(name)
        finally:
            connection.close()


@pytest.fixture
def deploy(database, smtp, tmp_path):
    """``deploy(broker)`` -> a Deployment on this test's database; killed and purged at teardown."""
    made: list[tuple[str | None, Deployment]] = []

    def make(kind: str | None = None) -> Deployment:
        deployment = Deployment(
            tmp_path / f"deployment{len(made)}",
            database_url=database,
            smtp_url=smtp.url,
            broker_url=BROKER_URLS[kind] if kind else None,
        )
        made.append((kind, deployment))
        return deployment

    yield make
    for kind, deployment in made:
        deployment.close()
        _purge_broker(kind, deployment)


async def new_tenant(deployment: Deployment) -> tenants.TestTenant:
    """A fresh tenant from a manifest, applied in this process under the deployment's secret key.

    Applying in-process spares a fourth interpreter start per test; the servers
    read tenants from the database at their first request, so they may boot meanwhile.
    """
    from pigeonhole.db import engine
    from pigeonhole.manifests.apply import apply
    from pigeonhole.settings import Settings, _app_database_url, set_settings

    slug = f"ob{uuid.uuid4().hex[:8]}"
    folder = tenants.write(deployment.workdir / "tenants", slug)
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
            await apply(folder)
        finally:
            await engine.disconnect()
    finally:
        set_settings(None)
    keys = {role: f"ph_test_{slug}_{role}" for role in ("admin", "operator", "kiosk", "kiosk2")}
    return tenants.TestTenant(slug=slug, folder=folder, keys=keys)


class Desk:
    """One tenant seen through one server's HTTP API."""

    def __init__(self, client: httpx.AsyncClient, tenant: tenants.TestTenant) -> None:
        self.op = Api(client, tenant.slug, tenant.keys["operator"])
        self.admin = Api(client, tenant.slug, tenant.keys["admin"])
        self.tenant = tenant

    async def lobby(self) -> str:
        banks = await self.op.ok("GET", "/banks")
        return next(b["id"] for b in banks if b["name"] == "Lobby")

    async def deposit_and_close(self, bank_id: str, email: str) -> dict:
        package = await deposit(self.op, bank_id, email=email)
        assert package["door"]["outcome"] == "opened"
        await close_door(self.admin, bank_id, package["door"]["door"])
        assert (await self.op.ok("GET", f"/packages/{package['id']}"))["status"] == "ready"
        return package

    async def notification(self, package_id: str) -> dict:
        [note] = await self.op.ok("GET", f"/packages/{package_id}/notifications")
        assert note["channel"] == "email" and note["event"] == "package.ready"
        return note

    async def wait_sent(self, package_id: str, timeout: float = 30.0) -> dict:
        """The notification once it says ``sent`` (the mark follows the SMTP send)."""
        deadline = time.monotonic() + timeout
        while True:
            note = await self.notification(package_id)
            if note["status"] == "sent":
                return note
            assert time.monotonic() < deadline, f"notification never marked sent: {note}"
            await asyncio.sleep(0.1)


def client_for(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30)


async def assert_mailed_once(smtp, deployment: Deployment, *mails: tuple[str, dict]) -> None:
    """Exactly one mail per (address, package): each arrives, and no second one follows."""
    for address, _ in mails:
        try:
            await smtp.wait_for(address, timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{deployment.logs()}") from None
    await asyncio.sleep(SETTLE_SECONDS)
    for address, package in mails:
        received = smtp.to(address)
        assert len(received) == 1, f"{len(received)} mails to {address}, expected exactly one"
        assert package["tracking_id"] in body_text(received[0])
        assert len(pickup_code(received[0])) == 6, "the process that sent it opened the sealed code"


async def start(deployment: Deployment, **worker_env: str) -> tuple[tenants.TestTenant, Server, Process]:
    """Apply a tenant while the server and the worker boot: they need it only at the first request."""
    return await asyncio.gather(new_tenant(deployment), deployment.serve(), deployment.worker(**worker_env))


# --- the flow on each broker -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
async def test_ready_mail_goes_through_the_external_broker(deploy, smtp, kind):
    deployment = deploy(kind)
    tenant, server, _ = await start(deployment)
    async with client_for(server) as client:
        assert (await client.get("/health")).json()["broker"] == f"ok ({SCHEMES[kind]})"
        desk = Desk(client, tenant)
        email = new_email()
        package = await desk.deposit_and_close(await desk.lobby(), email)
        await assert_mailed_once(smtp, deployment, (email, package))
        note = await desk.wait_sent(package["id"])
        assert note["attempts"] == 1 and note["last_error"] is None


async def test_embedded_broker_needs_no_server(deploy, smtp):
    deployment = deploy(None)
    tenant, server = await asyncio.gather(new_tenant(deployment), deployment.serve())
    async with client_for(server) as client:
        health = (await client.get("/health")).json()
        assert health["broker"] == "ok (embedded)"
        desk = Desk(client, tenant)
        email = new_email()
        package = await desk.deposit_and_close(await desk.lobby(), email)
        await assert_mailed_once(smtp, deployment, (email, package))
        note = await desk.wait_sent(package["id"])
        assert note["attempts"] == 1


# --- crashes between commit and send -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
async def test_worker_dies_between_commit_and_send(deploy, smtp, kind):
    deployment = deploy(kind)
    tenant, server, doomed = await start(deployment, **FAILPOINT, **SHORT_LEASE)
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        email = new_email()
        package = await desk.deposit_and_close(await desk.lobby(), email)

        assert await doomed.wait_exit() == FAILPOINT_EXIT_CODE, doomed.describe()
        assert smtp.to(email) == [], "the worker died before sending"
        note = await desk.notification(package["id"])
        assert note["status"] == "sending" and note["attempts"] == 1, note

        await deployment.worker(**QUICK_REDELIVERY)
        await assert_mailed_once(smtp, deployment, (email, package))
        note = await desk.wait_sent(package["id"])
        assert note["attempts"] == 2, "one claim by the worker that died, one by the worker that sent"
        assert note["sent_at"] is not None


async def test_embedded_server_dies_between_commit_and_send(deploy, smtp):
    deployment = deploy(None)
    tenant, doomed = await asyncio.gather(
        new_tenant(deployment), deployment.serve(**FAILPOINT, **SHORT_LEASE)
    )
    email = new_email()
    async with client_for(doomed) as client:
        desk = Desk(client, tenant)
        bank_id = await desk.lobby()
        package = await deposit(desk.op, bank_id, email=email)
        try:
            await close_door(desk.admin, bank_id, package["door"]["door"])
        except httpx.TransportError:
            pass  # the in-process worker may kill the server before the response leaves
    assert await doomed.wait_exit() == FAILPOINT_EXIT_CODE, doomed.describe()
    assert smtp.to(email) == [], "the server died before sending"

    server = await deployment.serve(**QUICK_REDELIVERY)
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        ready = await desk.op.ok("GET", f"/packages/{package['id']}")
        assert ready["status"] == "ready", "the door close committed before the crash"
        await assert_mailed_once(smtp, deployment, (email, package))
        note = await desk.wait_sent(package["id"])
        assert note["attempts"] == 2, "one claim by the server that died, one by the server that sent"


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
async def test_mail_waits_for_a_worker_that_is_down(deploy, smtp, kind):
    deployment = deploy(kind)
    tenant, server, gone = await start(deployment)
    gone.kill()
    assert gone.returncode == -signal.SIGKILL
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        bank_id = await desk.lobby()
        emails = [new_email() for _ in range(3)]
        packages = [await desk.deposit_and_close(bank_id, email) for email in emails]
        for package in packages:
            note = await desk.notification(package["id"])
            assert note["status"] == "queued" and note["attempts"] == 0, note
        assert all(smtp.to(email) == [] for email in emails)

        await deployment.worker()
        await assert_mailed_once(smtp, deployment, *zip(emails, packages, strict=True))
        for package in packages:
            note = await desk.wait_sent(package["id"])
            assert note["attempts"] == 1
