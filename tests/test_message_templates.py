"""A tenant's own wording of its messages (H2), and the QR code by email (H3)."""

from __future__ import annotations

import io
import uuid
from uuid import UUID

import segno
from pigeonhole.api import Recipient
from pigeonhole.domain.context import tenant_context
from pigeonhole.messaging import events, notify

from tests.flows import deposit_and_close, new_email
from tests.support.smtp import body_text

READY_EN = {
    "subject": "Parcel $tracking_id for $name",
    "body": "Hi $name, your parcel from $carrier is in door $compartment.\n\n"
    "Pickup code: $code\n\nQR token: $qr\n\nCollect it before $expires.\n\nNorthwind special wording",
}


def _html(mail) -> str:
    part = mail.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""


async def test_a_tenants_wording_replaces_the_default_for_that_tenant_only(make_tenant, api, smtp):
    a, b = await make_tenant("a"), await make_tenant("b")
    admin_a = api(a, "admin")
    saved = await admin_a.ok("PUT", "/message-templates/package.ready/en", READY_EN, status=201)
    assert saved["custom"] is True and saved["channel"] == "*" and saved["updated_by"].startswith("admin:")

    email_a, email_b = new_email(), new_email()
    package = await deposit_and_close(api(a, "operator"), admin_a, a.banks["Lobby"], email=email_a)
    await deposit_and_close(api(b, "operator"), api(b, "admin"), b.banks["Lobby"], email=email_b)
    [mail_a] = await smtp.wait_for(email_a)
    [mail_b] = await smtp.wait_for(email_b)

    assert mail_a["Subject"] == f"Parcel {package['tracking_id']} for Ada Lovelace"
    text = body_text(mail_a)
    assert text.startswith("Hi Ada Lovelace, your parcel from UPS is in door")
    assert "Northwind special wording" in text
    assert "QR token" not in text, "a paragraph naming a value the message lacks is left out"
    assert "$" not in text
    assert "Northwind special wording" in _html(mail_a)
    # The code rendered into the wording is the real one: it opens the door.
    code = text.split("Pickup code: ")[1].split()[0]
    picked = await api(a, "kiosk").ok("POST", f"/banks/{a.banks['Lobby']}/pickup", {"code": code})
    assert picked["package_id"] == package["id"]

    assert mail_b["Subject"].startswith("Your package is ready for pickup")
    assert "Northwind special wording" not in body_text(mail_b)
    # B does not see A's wording.
    listed = await api(b, "admin").ok("GET", "/message-templates?event=package.ready&language=en")
    assert listed[0]["custom"] == []
    assert (await api(b, "admin").get("/message-templates/package.ready/en")).json()["custom"] is False

    # Deleting it brings the default back, and the change is audited.
    await admin_a.ok("DELETE", "/message-templates/package.ready/en", status=204)
    email = new_email()
    await deposit_and_close(api(a, "operator"), admin_a, a.banks["Lobby"], email=email)
    [mail] = await smtp.wait_for(email)
    assert mail["Subject"].startswith("Your package is ready for pickup")
    actions = [e["action"] for e in await admin_a.ok("GET", "/audit?action=message_template.")]
    assert actions == ["message_template.deleted", "message_template.created"]


async def test_french_wording_for_a_french_recipient(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    await admin.ok(
        "PUT",
        "/message-templates/package.ready/fr",
        {
            "subject": "Colis $tracking_id",
            "body": "Bonjour $name,\n\nCode de retrait : $code\n\nÀ retirer avant le $expires.",
        },
    )
    fr_email, en_email = new_email(), new_email()
    await deposit_and_close(op, admin, t.banks["Lobby"], email=fr_email, language="fr")
    await deposit_and_close(op, admin, t.banks["Lobby"], email=en_email, language="en")
    [fr] = await smtp.wait_for(fr_email)
    [en] = await smtp.wait_for(en_email)
    assert fr["Subject"].startswith("Colis ")
    text = body_text(fr)
    assert "Code de retrait : " in text and "À retirer avant le " in text
    assert " à " in text.split("avant le ")[1], "the date is written out in French"
    # English recipients: no English wording, and French is not the tenant's default: the built-in text.
    assert en["Subject"].startswith("Your package is ready for pickup")


async def test_channel_specific_wording_wins_over_every_channel(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    await admin.ok(
        "PUT", "/message-templates/package.ready/en", {"subject": "Any channel", "body": "Any $code"}
    )
    await admin.ok(
        "PUT",
        "/message-templates/package.ready/en?channel=email",
        {"subject": "Email only", "body": "Mail $code"},
    )
    email = new_email()
    await deposit_and_close(op, admin, t.banks["Lobby"], email=email)
    [mail] = await smtp.wait_for(email)
    assert mail["Subject"] == "Email only"
    assert body_text(mail).startswith("Mail ")

    await admin.ok("DELETE", "/message-templates/package.ready/en?channel=email", status=204)
    email = new_email()
    await deposit_and_close(op, admin, t.banks["Lobby"], email=email)
    [mail] = await smtp.wait_for(email)
    assert mail["Subject"] == "Any channel"


async def test_bad_wording_is_refused_and_nothing_is_saved(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    cases = {
        "/message-templates/package.exploded/en": ({"subject": "x", "body": "y"}, "package.exploded"),
        "/message-templates/package.ready/de": ({"subject": "x", "body": "y"}, "'de'"),
        "/message-templates/package.ready/en?channel=pigeon": ({"subject": "x", "body": "y"}, "pigeon"),
        "/message-templates/package.ready/en": ({"subject": "x", "body": "Code $pin"}, "$pin"),
        "/message-templates/package.picked_up/en": ({"subject": "$code", "body": "y"}, "$code"),
        "/message-templates/storage.ending/en": ({"subject": "x", "body": "y" * 5001}, "too long"),
        "/message-templates/package.reminder/en": ({"subject": "x", "body": "Costs 5$ now"}, "$"),
        "/message-templates/package.reminder/fr": ({"subject": "x", "body": "  "}, "empty"),
    }
    for path, (body, words) in cases.items():
        response = await admin.put(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert words in response.json()["detail"], (path, response.text)
    listed = await admin.ok("GET", "/message-templates")
    assert all(entry["custom"] == [] for entry in listed)
    assert await admin.ok("GET", "/audit?action=message_template.") == []
    # Only administrators change wording; an operator key may not.
    refused = await api(t, "operator").put("/message-templates/package.ready/en", json={"body": "x"})
    assert refused.status_code == 403 and "messages:" in refused.json()["detail"]


async def test_list_get_and_preview(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    listed = await admin.ok("GET", "/message-templates")
    assert {(e["event"], e["language"]) for e in listed} == {
        (name, lang) for name in events.EVENTS for lang in events.LANGUAGES
    }
    ready_fr = next(e for e in listed if (e["event"], e["language"]) == ("package.ready", "fr"))
    assert "Code de retrait" in ready_fr["defaults"]["email"]["body"]
    # Every event has built-in email words, and they pass the rules a tenant's wording must pass.
    for entry in listed:
        default = entry["defaults"]["email"]
        response = await admin.post(
            "/message-templates/preview",
            json={"event": entry["event"], "language": entry["language"], "subject": default["subject"],
                  "body": default["body"]},
        )  # fmt: skip
        assert response.status_code == 200, (entry["event"], response.text)
        assert "$" not in response.json()["text"]

    catalog = {e["name"]: e for e in await admin.ok("GET", "/message-templates/events")}
    assert "expires" in catalog["package.ready"]["placeholders"]

    default = await admin.ok(
        "POST", "/message-templates/preview", {"event": "package.expired", "language": "en"}
    )
    assert default["source"] == "default"
    assert "retail counter" in default["text"]
    given = await admin.ok(
        "POST",
        "/message-templates/preview",
        {"event": "storage.ending", "language": "fr", "subject": "Fin dans $minutes_left min",
         "body": "Casier $compartment, fin le $ends"},
    )  # fmt: skip
    assert given["subject"] == "Fin dans 30 min"
    assert given["text"].startswith("Casier 12, fin le samedi 21 novembre 2026 à 18 h 00")
    bad = await admin.post(
        "/message-templates/preview", json={"event": "storage.ending", "language": "en", "body": "$nope"}
    )
    assert bad.status_code == 400 and "$nope" in bad.json()["detail"]

    await admin.ok("PUT", "/message-templates/storage.ended/en", {"subject": "Done", "body": "Ended: $why"})
    saved = await admin.ok("POST", "/message-templates/preview", {"event": "storage.ended", "language": "en"})
    assert (saved["source"], saved["text"]) == ("custom", "Ended: expired\n")
    got = await admin.ok("GET", "/message-templates/storage.ended/en")
    assert (got["custom"], got["body"]) == (True, "Ended: $why")
    replaced = await admin.ok(
        "PUT", "/message-templates/storage.ended/en", {"subject": "Done", "body": "Over"}
    )
    assert replaced["body"] == "Over"
    missing = await admin.delete("/message-templates/storage.ending/en")
    assert missing.status_code == 404


def _segno_png(token: str) -> bytes:
    out = io.BytesIO()
    segno.make(token, error="m", micro=False).save(out, kind="png", scale=8, border=4)
    return out.getvalue()


async def _queue(slug: str, event: str, email: str, language: str, secrets: dict, **extra) -> None:
    data = {k: v for k, v in events.EVENTS[event].sample.items() if k not in ("code", "qr")}
    data.update(extra)
    async with tenant_context(slug) as ctx:
        await notify.queue_to(
            ctx, event, Recipient(name="Quinn", email=email, language=language), data, secrets=secrets
        )


async def test_the_qr_code_travels_as_an_inline_image_of_the_token(make_tenant, api, smtp):
    t = await make_tenant()
    for event, language in (("package.ready", "en"), ("package.code_replaced", "fr"), ("return.created", "en"),
                            ("storage.reserved", "fr")):  # fmt: skip
        token = "PHQ" + uuid.uuid4().hex[:26].upper()
        email = new_email()
        await _queue(t.slug, event, email, language, {"code": "246810", "qr": token})
        [mail] = await smtp.wait_for(email)
        text = body_text(mail)
        assert "246810" in text and token in text, "the code, and the token for those who cannot scan"
        images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
        assert len(images) == 1, event
        cid = images[0]["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in _html(mail)
        assert images[0].get_content() == _segno_png(token), "the image is the QR code of the token"


async def test_no_qr_image_without_a_token_and_tenant_wording_keeps_the_qr(make_tenant, api, smtp):
    t = await make_tenant()
    email = new_email()
    await _queue(t.slug, "package.ready", email, "en", {"code": "135790"})
    [mail] = await smtp.wait_for(email)
    assert not [p for p in mail.walk() if p.get_content_type() == "image/png"]

    await api(t, "admin").ok(
        "PUT", "/message-templates/package.ready/en", {"subject": "Yours", "body": "Code $code"}
    )
    token = "PHQ" + uuid.uuid4().hex[:26].upper()
    email = new_email()
    await _queue(t.slug, "package.ready", email, "en", {"code": "135790", "qr": token})
    [mail] = await smtp.wait_for(email)
    assert body_text(mail).startswith("Code 135790")
    assert token in body_text(mail), "the wording left the token out: the mail adds it"
    [image] = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert image.get_content() == _segno_png(token)


async def test_expiry_and_counter_wording(make_tenant, api, smtp):
    t = await make_tenant()
    cases = [
        ("package.expired", "en", {"destination": "counter"}, "retail counter"),
        ("package.expired", "en", {"destination": "shelf"}, "moved to shelf storage"),
        ("package.expired", "fr", {"destination": "shelf"}, "étagères"),
        ("package.at_counter", "en", {"reason": "oversized"}, "not in a locker"),
        ("package.at_counter", "fr", {"reason": "hors format"}, "et non dans une consigne"),
    ]
    for event, language, extra, words in cases:
        email = new_email()
        await _queue(t.slug, event, email, language, {}, **extra)
        [mail] = await smtp.wait_for(email)
        assert words in body_text(mail), (event, extra, body_text(mail))
        assert "expired" not in event or ("expired" in body_text(mail) or "expiré" in body_text(mail))


async def test_the_catalog_and_uuid_ids(make_tenant, api):
    """Sample data covers every key; an emitter's package id is text."""
    for event in events.EVENTS.values():
        assert set(event.keys) <= set(event.sample), event.name
        if event.sample.get("package_id"):
            UUID(event.sample["package_id"])


async def test_the_tenants_default_language_comes_before_english(make_tenant, api, smtp):
    t = await make_tenant(extra='\n[settings]\ndefault_language = "fr"\n')
    admin = api(t, "admin")
    await admin.ok(
        "PUT", "/message-templates/package.ready/fr", {"subject": "Colis prêt", "body": "Code : $code"}
    )
    email = new_email()
    await deposit_and_close(api(t, "operator"), admin, t.banks["Lobby"], email=email, language="en")
    [mail] = await smtp.wait_for(email)
    assert mail["Subject"] == "Colis prêt", "no English wording: the tenant's default language before English"
