"""Every channel (H1): a deposit reaches the recipient by email and SMS, and the mailroom's
Slack and Teams rooms; each channel's delivery is its own, retried with backoff.

Real SMTP on loopback; loopback HTTP servers stand in for the SMS gateway, Slack and Teams.
"""

from __future__ import annotations

import pytest

from tests.flows import close_door, new_email
from tests.support import channels
from tests.support.http_sink import HttpSink
from tests.support.smtp import body_text, pickup_code


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    # dramatiq's backoff starts at a second; a few hundred milliseconds keep the tests quick
    # while leaving time to see a failed attempt before the next one.
    monkeypatch.setenv("PIGEONHOLE_RETRY_MIN_BACKOFF_MS", "300")
    monkeypatch.setenv("PIGEONHOLE_RETRY_MAX_BACKOFF_MS", "1000")


@pytest.fixture
def sms_gateway():
    sink = HttpSink().start()
    yield sink
    sink.stop()


async def test_a_deposit_reaches_email_sms_slack_and_teams(make_tenant, api, smtp, sms_gateway, http_sink):
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, http_sink.url))
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    email = new_email()
    package = await channels.deposit(op, lobby, email=email, phone="(206) 555-0123")
    door = package["door"]["door"]
    await close_door(admin, lobby, door)

    [mail] = await smtp.wait_for(email)
    code = pickup_code(mail)
    assert package["tracking_id"] in body_text(mail)

    [sms] = await channels.wait_requests(sms_gateway, 1, "/v1/messages")
    assert sms.method == "POST"
    assert sms.header("Authorization") == channels.SMS_SECRET
    assert sms.header("Content-Type") == "application/json"
    body = sms.json()
    assert body["to"] == "+12065550123", "the number goes out in E.164"
    assert body["from"] == "AcmeMail"
    assert code in body["text"] and "Lobby" in body["text"] and f"door {door}" in body["text"]
    assert len(body["text"]) <= 160, body["text"]

    [slack] = await channels.wait_requests(http_sink, 1, "/slack/")
    posted = slack.json()
    assert package["tracking_id"] in posted["text"] and "Ada Lovelace" in posted["text"]
    assert [b["type"] for b in posted["blocks"]][:2] == ["header", "section"]
    assert posted["blocks"][0]["text"]["text"] == "Package ready for pickup"
    [teams] = await channels.wait_requests(http_sink, 1, "/teams/")
    card = teams.json()
    assert card["type"] == "message"
    [attachment] = card["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    facts = {f["title"]: f["value"] for f in attachment["content"]["body"][2]["facts"]}
    assert facts["Tracking"] == package["tracking_id"] and facts["Door"] == str(door)
    for room in (slack, teams):
        assert code.encode() not in room.body, "a room is shared: never the pickup code"

    rows = await channels.wait_rows(op, package["id"], lambda r: all(x["status"] == "sent" for x in r.values()))
    assert set(rows) == {"email", "sms", "slack", "teams"}, "one row per channel: each its own status"
    assert rows["sms"]["recipient"]["phone"] == "(206) 555-0123"
    assert rows["slack"]["recipient"]["name"] == "#mailroom"
    assert all(r["attempts"] == 1 and r["last_error"] is None for r in rows.values())


async def test_a_failing_sms_gateway_is_retried_with_backoff_and_never_holds_the_email(
    make_tenant, api, smtp, sms_gateway, http_sink
):
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, http_sink.url))
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    sms_gateway.fail(503, times=2, body=b'{"error": "gateway overloaded"}')
    email = new_email()
    package = await channels.deposit(op, lobby, email=email, phone="+1 206 555 0199")
    await close_door(admin, lobby, package["door"]["door"])

    # Between the failed attempts: the SMS waits with its error, the email is already out.
    rows = await channels.wait_rows(
        op, package["id"], lambda r: "sms" in r and r["sms"]["last_error"] and r["sms"]["status"] == "queued"
    )
    assert "503" in rows["sms"]["last_error"] and "gateway overloaded" in rows["sms"]["last_error"]
    await smtp.wait_for(email)
    rows = await channels.wait_rows(op, package["id"], lambda r: r["email"]["status"] == "sent")
    assert rows["email"]["attempts"] == 1

    rows = await channels.wait_rows(op, package["id"], lambda r: r["sms"]["status"] == "sent")
    assert rows["sms"]["attempts"] == 3 and rows["sms"]["last_error"] is None
    calls = sms_gateway.on("/v1/messages")
    assert len(calls) == 3
    assert len({c.body for c in calls}) == 1, "the same message each time"
    assert len({c.header("Idempotency-Key") for c in calls}) == 1, "one idempotency key across retries"
    assert all(r["status"] == "sent" and r["attempts"] == 1 for c, r in rows.items() if c != "sms")


async def test_a_gateway_refusal_fails_with_its_reason_and_is_not_retried(
    make_tenant, api, smtp, sms_gateway, http_sink
):
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, None))
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    sms_gateway.fail(400, times=1, body=b'{"message": "Number +12065550100 is on the do-not-text list"}')
    email = new_email()
    package = await channels.deposit(op, lobby, email=email, phone="206-555-0100")
    await close_door(admin, lobby, package["door"]["door"])

    rows = await channels.wait_rows(op, package["id"], lambda r: r.get("sms", {}).get("status") == "failed")
    assert rows["sms"]["attempts"] == 1
    assert "do-not-text list" in rows["sms"]["last_error"] and "400" in rows["sms"]["last_error"]
    assert channels.SMS_SECRET not in rows["sms"]["last_error"]
    await smtp.wait_for(email)
    rows = await channels.wait_rows(op, package["id"], lambda r: r["email"]["status"] == "sent")
    assert len(sms_gateway.on("/v1/messages")) == 1, "a refusal is final"


async def test_a_number_that_is_not_one_fails_at_once_without_calling_the_gateway(
    make_tenant, api, smtp, sms_gateway
):
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, None))
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    package = await channels.deposit(op, lobby, email=new_email(), phone="call me maybe")
    await close_door(admin, lobby, package["door"]["door"])
    rows = await channels.wait_rows(op, package["id"], lambda r: r.get("sms", {}).get("status") == "failed")
    assert rows["sms"]["attempts"] == 1
    assert "bad phone number" in rows["sms"]["last_error"] and "call me maybe" in rows["sms"]["last_error"]
    assert sms_gateway.requests == []
    rows = await channels.wait_rows(op, package["id"], lambda r: r["email"]["status"] == "sent")


async def test_channels_that_do_not_carry_an_event_or_are_not_enabled_get_no_row(
    make_tenant, api, smtp, sms_gateway, http_sink
):
    # Slack carries only pickups; Teams is not enabled; the recipient has no phone.
    t = await make_tenant(
        plugins=channels.plugins(sms_gateway.url, http_sink.url, slack_events='["package.picked_up"]', teams=False)
    )
    op, admin, kiosk = api(t, "operator"), api(t, "admin"), api(t, "kiosk")
    lobby = t.banks["Lobby"]
    email = new_email()
    package = await channels.deposit(op, lobby, email=email, phone=None)
    await close_door(admin, lobby, package["door"]["door"])
    [mail] = await smtp.wait_for(email)
    rows = await channels.wait_rows(op, package["id"], lambda r: r["email"]["status"] == "sent")
    assert set(rows) == {"email"}, "no SMS without a phone, no Slack for an event it does not carry"

    await kiosk.ok("POST", f"/banks/{lobby}/pickup", {"code": pickup_code(mail)})
    rows = await channels.wait_rows(
        op, package["id"], lambda r: r.get("slack", {}).get("status") == "sent", event="package.picked_up"
    )
    assert set(rows) == {"email", "slack"}
    [slack] = await channels.wait_requests(http_sink, 1, "/slack/")
    assert slack.json()["blocks"][0]["text"]["text"] == "Package picked up"
    assert http_sink.on("/teams/") == [] and sms_gateway.requests == []


async def test_a_contact_is_told_only_on_the_channels_they_chose(make_tenant, api, smtp, sms_gateway, http_sink):
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, http_sink.url, teams=False))
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    email = new_email()
    person = {"name": "Grace Hopper", "email": email, "phone": "+1 206 555 0177"}

    for bad, rule in (
        (["sms", "sms"], "twice"),
        (["Carrier Pigeon!"], "channel names"),
        ([], "at least one channel"),
        ("sms", "notify_channels"),
    ):
        refused = await admin.post("/directory/contacts", json={**person, "notify_channels": bad})
        assert refused.status_code in (400, 422), refused.text
        assert rule in refused.text, refused.text
    assert await admin.ok("GET", "/directory/contacts?q=Grace") == [], "nothing was created"

    contact = await admin.ok("POST", "/directory/contacts", {**person, "notify_channels": ["sms"]})
    assert contact["notify_channels"] == ["sms"]
    package = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": "TRK-CHOICE", "carrier": "UPS", "size": "s", "recipient_contact_id": contact["id"],
         "bank_id": lobby},
    )  # fmt: skip
    await close_door(admin, lobby, package["door"]["door"])
    rows = await channels.wait_rows(op, package["id"], lambda r: all(x["status"] == "sent" for x in r.values()) and r)
    assert set(rows) == {"sms", "slack"}, "SMS as chosen; the mailroom's room is not the person's to choose"
    assert smtp.to(email) == []

    # Every channel again (null), through the API.
    changed = await admin.ok("PATCH", f"/directory/contacts/{contact['id']}", {"notify_channels": None})
    assert changed["notify_channels"] is None
    again = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": "TRK-EVERY", "carrier": "UPS", "size": "s", "recipient_contact_id": contact["id"],
         "bank_id": lobby},
    )  # fmt: skip
    await close_door(admin, lobby, again["door"]["door"])
    rows = await channels.wait_rows(op, again["id"], lambda r: len(r) == 3 and all(x["status"] == "sent" for x in r.values()))
    assert set(rows) == {"email", "sms", "slack"}
