"""One failing channel never blocks another, and one tenant's rooms never hear another's (H1)."""

from __future__ import annotations

import pytest

from tests.flows import close_door, new_email
from tests.support import channels
from tests.support.http_sink import HttpSink
from tests.support.smtp import free_port, pickup_code


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("PIGEONHOLE_RETRY_MIN_BACKOFF_MS", "100")
    monkeypatch.setenv("PIGEONHOLE_RETRY_MAX_BACKOFF_MS", "400")


@pytest.fixture
def sms_gateway():
    sink = HttpSink().start()
    yield sink
    sink.stop()


async def test_slack_down_holds_back_neither_the_recipient_nor_the_other_room(
    make_tenant, api, smtp, sms_gateway, http_sink
):
    nobody = f"http://127.0.0.1:{free_port()}"  # connection refused, every time
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, http_sink.url, slack_url=nobody))
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    email = new_email()
    package = await channels.deposit(op, lobby, email=email, phone="+33 6 12 34 56 78", language="fr")
    await close_door(admin, lobby, package["door"]["door"])

    rows = await channels.wait_rows(
        op,
        package["id"],
        lambda r: all(r[c]["status"] == "sent" for c in ("email", "sms", "teams"))
        and r["slack"]["attempts"] >= 2,
    )
    assert rows["slack"]["status"] in ("queued", "sending")
    assert "ConnectError" in rows["slack"]["last_error"] and "secret" not in rows["slack"]["last_error"], (
        "the reason, never the webhook's secret path"
    )
    [mail] = await smtp.wait_for(email)
    [sms] = await channels.wait_requests(sms_gateway, 1, "/v1/messages")
    assert sms.json()["to"] == "+33612345678"
    assert pickup_code(mail) in sms.json()["text"] and "Code de retrait" in sms.json()["text"]
    [teams] = await channels.wait_requests(http_sink, 1, "/teams/")
    assert pickup_code(mail).encode() not in teams.body


async def test_a_tenants_rooms_and_gateway_hear_only_that_tenant(make_tenant, api, smtp, http_sink):
    other_rooms, other_gateway, gateway = HttpSink().start(), HttpSink().start(), HttpSink().start()
    try:
        a = await make_tenant(plugins=channels.plugins(gateway.url, http_sink.url))
        b = await make_tenant(plugins=channels.plugins(other_gateway.url, other_rooms.url))
        sent = {}
        for tenant in (a, b):
            op, admin = api(tenant, "operator"), api(tenant, "admin")
            lobby = tenant.banks["Lobby"]
            package = await channels.deposit(op, lobby, email=new_email(), phone="+1 206 555 0142")
            await close_door(admin, lobby, package["door"]["door"])
            sent[tenant.slug] = package["tracking_id"]
        for tenant, rooms, sms in ((a, http_sink, gateway), (b, other_rooms, other_gateway)):
            posts = await channels.wait_requests(rooms, 2, "/")
            await channels.wait_requests(sms, 1, "/")
            mine, theirs = sent[tenant.slug], sent[(b if tenant is a else a).slug]
            assert all(mine.encode() in p.body and theirs.encode() not in p.body for p in posts)
            assert all(f"Tenant {tenant.slug}".encode() in p.body for p in posts)
            assert len(sms.requests) == 1
    finally:
        for sink in (other_rooms, other_gateway, gateway):
            sink.stop()
