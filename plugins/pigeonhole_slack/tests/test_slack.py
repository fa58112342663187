"""Slack rooms: what the room reads, what it carries, and that a code never reaches it."""

from __future__ import annotations

import asyncio
import json
import socket

import msgspec
import pytest
from pigeonhole.api import MAILROOM, Notification, Recipient
from pigeonhole_slack import SlackConfig, SlackPlugin
from pigeonhole_slack.channel import payload

DATA = {
    "tenant_name": "Acme <Corp> & Co",
    "tracking_id": "1Z999",
    "carrier": "UPS",
    "bank_name": "Lobby",
    "location_name": "Head Office",
    "compartment": 7,
    "recipient_name": "Ada Lovelace",
    "expires_at": "2026-11-24T17:00:00-08:00",
    # Never sent to a room by the host; a room channel drops them anyway.
    "code": "482913",
    "qr": "qr-secret-token",
    "link": "https://example.test/set-password/secret",
}


def note(event="package.ready", data=None, **kw) -> Notification:
    return Notification(id="n-1", tenant="acme", event=event, language="en", recipient=MAILROOM,
                        data=data or DATA, **kw)  # fmt: skip


def plugin(**kw) -> SlackPlugin:
    return SlackPlugin(msgspec.convert({"webhook_url": "https://hooks.slack.com/services/T/B/x", **kw}, SlackConfig))


def test_a_room_never_reads_a_code_a_qr_token_or_a_link():
    for wording in ({}, {"subject": "Code 482913", "text": "Ada's code is 482913, QR qr-secret-token"}):
        body = json.dumps(payload(note(**wording), "en"))
        for secret in ("482913", "qr-secret-token", "set-password"):
            assert secret not in body, (wording, secret)


def test_the_post_has_text_and_blocks():
    body = payload(note(), "en")
    assert body["text"] == "Package ready for pickup: Package 1Z999 (UPS) for Ada Lovelace, locker Lobby, door 7."
    header, section, fields, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Package ready for pickup", "emoji": False}}
    assert section["text"]["type"] == "mrkdwn"
    assert {"type": "mrkdwn", "text": "*Door*\n7"} in fields["fields"]
    assert context["elements"][0]["text"] == "Acme &lt;Corp&gt; &amp; Co", "mrkdwn is escaped"


def test_alerts_and_french():
    alert = {"tenant_name": "Acme", "kind": "door.forced", "message": "Door 3 of bank 'Lobby' opened without a command.",
             "bank_name": "Lobby", "door": 3, "raised_at": "2026-11-21T09:00:00+00:00"}  # fmt: skip
    body = payload(note("alert.door.forced", alert), "fr")
    assert body["blocks"][0]["text"]["text"] == "Alerte : porte forcée"
    assert body["blocks"][1]["text"]["text"] == alert["message"]
    assert {"type": "mrkdwn", "text": "*Casier*\n3"} in body["blocks"][2]["fields"]


def test_the_room_carries_what_it_is_configured_for():
    [main, other] = plugin(
        events=["package.ready", "storage.*"], alerts=False,
        rooms=[{"name": "security", "webhook_url": "https://hooks.slack.com/services/T/B/y", "alerts": True}],
    ).pigeonhole_channels()  # fmt: skip
    assert (main.name, other.name) == ("slack", "slack.security")
    assert main.wants("package.ready") and main.wants("storage.ending") and not main.wants("package.picked_up")
    assert not main.wants("alert.door.forced") and other.wants("alert.door.forced")
    assert not other.wants("package.ready")
    assert plugin(events=["*"]).pigeonhole_channels()[0].wants("return.created")
    assert main.reaches(MAILROOM) and not main.reaches(Recipient(name="Ada", email="ada@example.test"))


def test_an_unreachable_webhook_is_retried_without_showing_its_secret():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = SlackPlugin(
        msgspec.convert({"webhook_url": f"http://127.0.0.1:{port}/services/T/B/secret"}, SlackConfig)
    ).pigeonhole_channels()[0]
    result = asyncio.run(channel.send(note()))
    assert not result.ok and result.retry and "secret" not in result.detail


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"webhook_url": "hooks.slack.com/x"}, "webhook_url"),
        ({"webhook_url": "https://h/x", "rooms": [{"name": "Bad Name", "webhook_url": "https://h/y"}]}, "rooms"),
        ({"webhook_url": "https://h/x", "language": "de"}, "language"),
        ({}, "webhook_url"),
    ],
)
def test_bad_configuration_is_refused_naming_the_field(raw, field):
    with pytest.raises(msgspec.ValidationError, match=field):
        msgspec.convert(raw, SlackConfig)
