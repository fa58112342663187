"""Teams rooms: Adaptive Cards and MessageCards, what they carry, and never a code."""

from __future__ import annotations

import json

import msgspec
import pytest
from pigeonhole.api import MAILROOM, Notification, Recipient
from pigeonhole_teams import TeamsConfig, TeamsPlugin

DATA = {
    "tenant_name": "Acme",
    "tracking_id": "1Z999",
    "carrier": "UPS",
    "bank_name": "Lobby",
    "location_name": "Head Office",
    "compartments": [7, 8],
    "recipient_name": "Ada Lovelace",
    "code": "482913",
    "qr": "qr-secret-token",
}


def note(event="package.ready", data=None, **kw) -> Notification:
    return Notification(id="n-1", tenant="acme", event=event, language="en", recipient=MAILROOM,
                        data=data or DATA, **kw)  # fmt: skip


def channel(**kw):
    config = msgspec.convert({"webhook_url": "https://prod.logic.azure.com/workflows/x", **kw}, TeamsConfig)
    return TeamsPlugin(config).pigeonhole_channels()[0]


def test_an_adaptive_card_by_default():
    body = channel().payload(note())
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, text, facts, footer = card["body"]
    assert title["text"] == "Package ready for pickup" and "color" not in title
    assert text["text"] == "Package 1Z999 (UPS) for Ada Lovelace, locker Lobby, door 7, 8."
    assert {"title": "Door", "value": "7, 8"} in facts["facts"]
    assert footer["text"] == "Acme"


def test_a_message_card_for_legacy_connectors():
    body = channel(card="message_card", language="fr").payload(
        note("alert.door.left_open", {"tenant_name": "Acme", "message": "Door 3 stayed open.", "door": 3,
                                      "bank_name": "Lobby"})
    )  # fmt: skip
    assert body["@type"] == "MessageCard" and body["themeColor"] == "D13438"
    assert body["title"] == "Alerte : porte restée ouverte" and body["text"] == "Door 3 stayed open."
    assert {"name": "Casier", "value": "3"} in body["sections"][0]["facts"]


@pytest.mark.parametrize("card", ["adaptive", "message_card"])
def test_a_room_never_reads_a_code_or_a_qr_token(card):
    for wording in ({}, {"text": "Code 482913 / qr-secret-token"}):
        body = json.dumps(channel(card=card).payload(note(**wording)))
        assert "482913" not in body and "qr-secret-token" not in body


def test_the_room_carries_what_it_is_configured_for():
    teams = channel(events=["package.*"], alerts=True)
    assert teams.wants("package.expired") and teams.wants("alert.command.unknown_outcome")
    assert not teams.wants("storage.ended") and not channel().wants("package.ready"), "no events: none"
    assert teams.reaches(MAILROOM) and not teams.reaches(Recipient(name="Ada", phone="+12065550100"))


def test_bad_configuration_is_refused_naming_the_field():
    with pytest.raises(msgspec.ValidationError, match="card"):
        msgspec.convert({"webhook_url": "https://h/x", "card": "hero"}, TeamsConfig)
