"""The SMS channel: numbers, texts, the gateway request and what its answers mean."""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import parse_qs

import httpx
import msgspec
import pytest
from pigeonhole.api import Notification, Recipient
from pigeonhole_sms import SmsConfig, SmsPlugin
from pigeonhole_sms.channel import classify, render
from pigeonhole_sms.phone import BadNumber, to_e164
from pigeonhole_sms.texts import TEXTS

#: Every event of the shared catalog has its own words.
CATALOG = [
    "package.ready", "package.reminder", "package.escalated", "package.expired", "package.removed",
    "package.at_counter", "package.code_replaced", "package.picked_up", "return.created",
    "return.deposited", "storage.reserved", "storage.ending", "storage.ended", "delivery.preadvised",
]  # fmt: skip
WITH_CODE = ["package.ready", "package.code_replaced", "return.created", "storage.reserved"]

# GSM 03.38's basic alphabet: a text outside it is cut to 70 characters per SMS.
GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

DATA = {
    "tenant_name": "Acme Corp",
    "package_id": "0b7e0c1e-0000-4000-8000-000000000001",
    "tracking_id": "1Z999AA10123456784",
    "carrier": "UPS",
    "bank_name": "Lobby",
    "location_name": "Head Office",
    "location_address": "1 Test Street, Testville",
    "timezone": "America/Los_Angeles",
    "compartment": 7,
    "code": "482913",
    "qr": "qr-token-should-never-be-texted",
    "expires_at": "2026-11-24T17:00:00-08:00",
    "reminder": 1,
    "reminders": 3,
    "hours_waiting": 48,
    "destination": "counter",
    "reason": "oversized",
    "starts_at": "2026-11-21T09:00:00-08:00",
    "ends_at": "2026-11-21T18:00:00-08:00",
    "minutes_left": 30,
    "why": "expired",
    "picked_up_at": "2026-11-22T10:05:00-08:00",
}


def note(event="package.ready", language="en", data=None, phone="+12065550100", **kw) -> Notification:
    return Notification(
        id="n-1", tenant="acme", event=event, language=language,
        recipient=Recipient(name="Ada", phone=phone, language=language), data=data or DATA, **kw,
    )  # fmt: skip


def config(**kw) -> SmsConfig:
    return msgspec.convert({"url": "https://sms.example.com/send", **kw}, SmsConfig)


@pytest.mark.parametrize(
    "raw, country, expected",
    [
        ("+1 (206) 555-0100", None, "+12065550100"),
        ("0033 6 12 34 56 78", None, "+33612345678"),
        ("06 12 34 56 78", "33", "+33612345678"),
        ("(206) 555-0100", "1", "+12065550100"),
        ("1-206-555-0100", "+1", "+12065550100"),
        ("+44 20 7946 0958", "1", "+442079460958"),
    ],
)
def test_numbers_are_sent_in_e164(raw, country, expected):
    assert to_e164(raw, country) == expected


@pytest.mark.parametrize(
    "raw, country, reason",
    [
        ("call me maybe", "1", "not a phone number"),
        ("+1 206 CALL-NOW", None, "only digits"),
        ("206 555 0100", None, "no country code"),
        ("+1 555", None, "8 to 15"),
        ("+0 206 555 0100", None, "never starts with 0"),
        ("+1234567890123456", None, "8 to 15"),
        ("", "1", "no phone number"),
    ],
)
def test_garbage_is_refused_with_the_reason(raw, country, reason):
    with pytest.raises(BadNumber, match=reason):
        to_e164(raw, country)


def test_every_event_of_the_catalog_has_short_gsm_texts_in_both_languages():
    for event in CATALOG:
        for language in ("en", "fr"):
            assert language in TEXTS[event], (event, language)
            text = render(note(event, language))
            assert text and "$" not in text, (event, language, text)
            assert len(text) <= 160, (event, language, len(text), text)
            assert set(text) <= GSM, (event, language, set(text) - GSM)
            assert DATA["qr"] not in text
            assert (DATA["code"] in text) == (event in WITH_CODE), (event, language, text)


def test_every_variant_is_written_in_the_gsm_alphabet():
    for event, by_language in TEXTS.items():
        for language, variants in by_language.items():
            for variant in variants:
                for segment in variant:
                    assert set(segment) <= GSM, (event, language, segment, set(segment) - GSM)


def test_a_text_drops_what_the_notification_does_not_carry():
    bare = {"tenant_name": "Acme", "bank_name": "Lobby", "code": "123456"}
    assert render(note(data=bare)) == "Acme: your package is ready in locker Lobby. Pickup code: 123456."
    several = {**DATA, "compartments": [3, 4]}
    assert "door 3, 4" in render(note(data=several))
    assert render(note(event="something.new", data={"tenant_name": "Acme", "tracking_id": "T1"})) == (
        "Acme: news about your package T1."
    )


def test_the_tenants_wording_replaces_ours():
    text = render(note(text="Your parcel is in locker 7.\nCode 482913", subject="ignored by SMS"))
    assert text == "Your parcel is in locker 7. Code 482913"


def test_the_gateway_request_as_configured():
    channel = SmsPlugin(
        config(auth_header="X-API-Key", auth_value="k-123", sender="Acme", to_field="msisdn",
               from_field="originator", text_field="body", extra_fields={"route": "premium"})
    ).pigeonhole_channels()[0]  # fmt: skip
    request = channel.request(note())
    assert request.method == "POST" and str(request.url) == "https://sms.example.com/send"
    assert request.headers["X-API-Key"] == "k-123" and request.headers["Idempotency-Key"] == "n-1"
    body = json.loads(request.content)
    assert body["msisdn"] == "+12065550100" and body["originator"] == "Acme" and body["route"] == "premium"
    assert "482913" in body["body"]

    form = SmsPlugin(config(body_format="form")).pigeonhole_channels()[0].request(note())
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    fields = parse_qs(form.content.decode())
    assert fields["to"] == ["+12065550100"] and "from" not in fields, "no sender: the gateway's default"
    assert "Authorization" not in form.headers, "no secret configured, no header"

    get = SmsPlugin(config(method="GET", idempotency_header=None)).pigeonhole_channels()[0].request(note())
    assert get.url.params["to"] == "+12065550100" and "Idempotency-Key" not in get.headers


def test_wants_the_configured_events_only():
    channel = SmsPlugin(config(events=["package.ready"])).pigeonhole_channels()[0]
    assert channel.wants("package.ready") and not channel.wants("package.picked_up")
    assert SmsPlugin(config()).pigeonhole_channels()[0].wants("package.picked_up")
    assert channel.reaches(Recipient(name="A", phone=" 555 ")) and not channel.reaches(Recipient(name="A"))


def answer(status: int, body: str = "") -> httpx.Response:
    return httpx.Response(status, text=body)


@pytest.mark.parametrize(
    "status, body, ok, retry, said",
    [
        (200, '{"id": "msg-1"}', True, True, "msg-1"),
        (202, "", True, True, "202"),
        (400, '{"error": {"message": "Invalid destination"}}', False, False, "Invalid destination"),
        (401, '{"message": "bad credentials"}', False, False, "bad credentials"),
        (404, "no such route", False, False, "no such route"),
        (408, "", False, True, "408"),
        (429, '{"detail": "slow down"}', False, True, "slow down"),
        (500, "oops", False, True, "oops"),
        (503, '{"error": "unavailable"}', False, True, "unavailable"),
    ],
)
def test_answers_are_classified(status, body, ok, retry, said):
    result = classify(answer(status, body), [], "sms.example.com:443")
    assert (result.ok, result.retry) == (ok, retry)
    assert said in result.detail and str(status) in result.detail


def test_configured_success_statuses():
    assert classify(answer(201), [201], "gw").ok
    refused = classify(answer(200, "queued?"), [201], "gw")
    assert not refused.ok and not refused.retry and "not a success status" in refused.detail


def test_an_unreachable_gateway_is_retried_and_a_bad_number_is_not():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = SmsPlugin(config(url=f"http://127.0.0.1:{port}/send", auth_value="secret-1")).pigeonhole_channels()[0]
    down = asyncio.run(channel.send(note()))
    assert not down.ok and down.retry and "secret-1" not in down.detail
    bad = asyncio.run(channel.send(note(phone="not a number")))
    assert not bad.ok and not bad.retry and "bad phone number" in bad.detail


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"url": "ftp://x"}, "url"),
        ({"url": "https://x", "auth_header": "Bad Header"}, "auth_header"),
        ({"url": "https://x", "success_statuses": [302]}, "success_statuses"),
        ({"url": "https://x", "default_country_code": "+1234"}, "default_country_code"),
        ({"url": "https://x", "body_format": "xml"}, "body_format"),
    ],
)
def test_bad_configuration_is_refused_naming_the_field(raw, field):
    with pytest.raises(msgspec.ValidationError, match=field):
        msgspec.convert(raw, SmsConfig)


def test_our_words_are_offered_beside_the_tenants_wording():
    channel = SmsPlugin(config()).pigeonhole_channels()[0]
    wording = channel.default_wording("package.ready", "fr")
    assert "$code" in wording.body and "$compartment" in wording.body and "$doors" not in wording.body
    assert channel.default_wording("no.such.event", "en") is None
