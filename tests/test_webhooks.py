"""Partner webhooks (J2): every state change a partner asked for, signed, retried, never another tenant's.

The partner here is a real HTTP server on loopback (``http_sink``). It checks
each call as a partner's code would, with code written here and not the
plugin's: recompute the HMAC over the raw body, compare in constant time,
refuse a stale timestamp.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import pytest

from tests.flows import close_door, deposit, deposit_and_close, new_email
from tests.support.partner import SECRET, enable_webhook, wait_deliveries

TOLERANCE = 300  # seconds a partner accepts between the signature's timestamp and its clock


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    """Dramatiq's backoff starts at 50 ms here instead of a second (read when the broker starts)."""
    monkeypatch.setenv("PIGEONHOLE_RETRY_MIN_BACKOFF_MS", "50")
    monkeypatch.setenv("PIGEONHOLE_RETRY_MAX_BACKOFF_MS", "200")


def verify(secret: str, header: str | None, body: bytes, now: float | None = None) -> bool:
    """What a partner runs on every call (Stripe's scheme)."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


async def test_signed_events_reach_the_partner(make_tenant, api, http_sink):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    await enable_webhook(admin, http_sink.url + "/hook", events=["package.*"])
    package = await deposit(op, t.banks["Lobby"])
    await close_door(admin, t.banks["Lobby"], package["door"]["door"])

    got = await asyncio.to_thread(http_sink.wait_for, 3, "/hook")
    by_kind = {r.json()["type"]: r for r in got}
    kinds = sorted(by_kind)
    assert kinds == ["package.assigned", "package.deposited", "package.received"], "only package.* events"
    assert len(got) == 3
    for request in got:
        assert verify(SECRET, request.header("Pigeonhole-Signature"), request.body)
        body = request.json()
        assert request.header("Pigeonhole-Event-Id") == body["id"]
        assert body["tenant"] == t.slug
        assert body["data"]["package_id"] == package["id"]
        assert body["data"]["tracking_id"] == package["tracking_id"]
        assert isinstance(body["created"], int)
    deposited = by_kind["package.deposited"].json()
    assert deposited["data"]["status"] == "ready"
    assert deposited["data"]["bank_id"] == t.banks["Lobby"]
    assert by_kind["package.received"].json()["data"]["status"] == "received", "as it was then"

    # A partner refuses a body changed on the way, a wrong secret and a replay of an old call.
    first = by_kind["package.received"]
    header = first.header("Pigeonhole-Signature")
    assert not verify(SECRET, header, first.body.replace(b"package.received", b"package.picked_up"))
    assert not verify("whsec_someone_else_0000", header, first.body)
    assert not verify(SECRET, header, first.body, now=time.time() + TOLERANCE + 60)

    sent = await wait_deliveries(admin, 3)
    assert len(sent) == 3
    assert {d["event_kind"] for d in sent} == set(kinds)
    assert all(d["attempts"] == 1 and d["response_code"] == 200 and d["last_error"] is None for d in sent)
    assert all(d["subscriber"] == f"webhook:{http_sink.url}/hook" for d in sent)
    assert await admin.ok("GET", "/webhook-deliveries?status=failed") == []


async def test_a_failing_endpoint_is_retried_then_delivered_once(make_tenant, api, http_sink):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    await enable_webhook(admin, http_sink.url + "/flaky", events=["package.received"])
    http_sink.fail(503, times=2)
    received = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "TRK-RETRY-1",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Ada", "email": new_email()},
        },
    )
    got = await asyncio.to_thread(http_sink.wait_for, 3, "/flaky")
    ids = {r.header("Pigeonhole-Event-Id") for r in got}
    assert len(ids) == 1, "every retry carries the same event id, for the partner to deduplicate"
    assert all(verify(SECRET, r.header("Pigeonhole-Signature"), r.body) for r in got)
    [sent] = await wait_deliveries(admin, 1)
    assert sent["attempts"] == 3 and sent["response_code"] == 200 and sent["package_id"] == received["id"]
    await asyncio.sleep(0.5)
    assert len(http_sink.on("/flaky")) == 3, "delivered once: no call after the success"


async def test_a_refusing_endpoint_is_not_retried(make_tenant, api, http_sink):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    await enable_webhook(admin, http_sink.url + "/gone", events=["package.received"])
    http_sink.fail(410, body=b'{"error": "endpoint removed"}')
    await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "TRK-GONE-1",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Ada", "email": new_email()},
        },
    )
    [failed] = await wait_deliveries(admin, 1, status="failed")
    assert failed["attempts"] == 1 and failed["response_code"] == 410
    assert "HTTP 410" in failed["last_error"] and "endpoint removed" in failed["last_error"]
    await asyncio.sleep(0.5)
    assert len(http_sink.on("/gone")) == 1, "a 4xx other than 408/429 is final"


async def test_another_tenants_events_never_reach_this_tenants_endpoint(make_tenant, api, http_sink, smtp):
    a, b = await make_tenant("a"), await make_tenant("b")
    await enable_webhook(api(a, "admin"), http_sink.url + "/a")
    await enable_webhook(api(b, "admin"), http_sink.url + "/b", events=["package.deposited"])
    pa = await deposit_and_close(api(a, "operator"), api(a, "admin"), a.banks["Lobby"])
    pb = await deposit_and_close(api(b, "operator"), api(b, "admin"), b.banks["Lobby"])
    [to_b] = await asyncio.to_thread(http_sink.wait_for, 1, "/b")
    await asyncio.to_thread(
        http_sink.wait_for, 5, "/a"
    )  # received, assigned, door opened, door closed, deposited
    assert to_b.json()["data"]["package_id"] == pb["id"] and to_b.json()["tenant"] == b.slug
    for request in http_sink.on("/a"):
        body = request.json()
        assert body["tenant"] == a.slug
        assert body["data"]["package_id"] in (pa["id"], None), body
    assert pb["id"] not in " ".join(r.body.decode() for r in http_sink.on("/a"))
    assert pa["id"] not in " ".join(r.body.decode() for r in http_sink.on("/b"))
    # Each tenant's API lists its own deliveries only.
    listed_b = await wait_deliveries(api(b, "admin"), 1)
    assert [d["package_id"] for d in listed_b] == [pb["id"]]


async def test_deliveries_list_refuses_bad_filters_and_kiosks(make_tenant, api):
    t = await make_tenant()
    assert await api(t, "admin").ok("GET", "/webhook-deliveries") == [], "no subscriber: no delivery"
    bad = await api(t, "admin").get("/webhook-deliveries?status=lost")
    assert bad.status_code == 422 and "Unknown delivery status 'lost'" in bad.json()["detail"]
    refused = await api(t, "kiosk").get("/webhook-deliveries")
    assert refused.status_code == 403 and "plugins:read" in refused.json()["detail"]


async def test_webhook_config_is_validated(make_tenant, api):
    t = await make_tenant()
    response = await api(t, "admin").put(
        "/plugins/webhook", json={"config": {"endpoints": [{"url": "http://x.test/h", "secret": "short"}]}}
    )
    assert response.status_code in (400, 422)
    assert "secret" in response.text
