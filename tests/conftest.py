"""Fixtures: every test of the platform runs on SQLite and on PostgreSQL.

The database is created fresh for the session (one per backend); each test
makes its own tenants with unique slugs, so tests share no data.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from pigeonhole.db.migrate import migrate
from pigeonhole.domain import clock
from pigeonhole.settings import Settings, _app_database_url, set_settings

from tests.support import databases, tenants
from tests.support.api import Api
from tests.support.smtp import SmtpSink

BACKENDS = ["sqlite", "postgres"]

# workflows (#5): no timer loop in the background; a test moves the clock and calls
# `await timers.tick()` itself, so what fires when is decided by the test alone.
os.environ.setdefault("PIGEONHOLE_TICK_SECONDS", "0")


@pytest.fixture(scope="session")
def smtp():
    sink = SmtpSink()
    sink.start()
    os.environ["PIGEONHOLE_SMTP_URL"] = sink.url
    yield sink
    sink.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def database(request, tmp_path_factory) -> str:
    """A migrated database URL, fresh for this session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "pigeonhole.sqlite3"
        url = f"sqlite:///{path}"
        asyncio.run(migrate(url, echo=lambda *_: None))
        yield url
        return
    name, url = asyncio.run(databases.create_pg_database())
    try:
        asyncio.run(migrate(url, echo=lambda *_: None))
        yield url
    finally:
        asyncio.run(databases.drop_pg_database(name))


@pytest.fixture
def backend(database) -> str:
    return "postgres" if database.startswith("postgres") else "sqlite"


@pytest.fixture
def settings(database, tmp_path, smtp) -> Settings:
    s = Settings(
        data_dir=tmp_path,
        database_url=database,
        app_database_url=_app_database_url(database),
        broker_url=None,
        smtp_url=smtp.url,
        secret_key="test-secret-key-not-for-production",
        embedded_agent=True,
        embedded_worker=True,
        outbox_redeliver_seconds=300,
    )
    set_settings(s)
    yield s
    set_settings(None)


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.reset()


@pytest.fixture
async def services(settings):
    """The platform's services, running on the test's own event loop."""
    from pigeonhole.services import Services

    running = Services(settings)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def client(settings, services):
    """An HTTP client talking to the app in-process, on the same loop as the test."""
    from pigeonhole.web.app import create_app

    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as c:
        yield c


@pytest.fixture
def make_tenant(client, tmp_path):
    """``await make_tenant()`` -> a fresh TestTenant (slug, keys, banks)."""

    async def make(prefix: str = "t", **kwargs) -> tenants.TestTenant:
        return await tenants.create(tmp_path / "tenants", prefix, **kwargs)

    return make


@pytest.fixture
def api(client):
    """``api(tenant, role)`` -> an Api bound to the tenant's URL prefix and key."""

    def bind(tenant: tenants.TestTenant, role: str = "operator") -> Api:
        return Api(client, tenant.slug, tenant.keys[role])

    return bind


def pytest_collection_modifyitems(items):
    """Tests that use the database run once per backend; mark them for -m selection."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and callspec.params.get("database") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def http_sink():
    """A loopback HTTP server recording requests (SMS gateway, Slack, Teams, partner webhooks)."""
    from tests.support.http_sink import HttpSink

    sink = HttpSink().start()
    yield sink
    sink.stop()
