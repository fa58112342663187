"""The tenant's wording (Notification.subject/text) and the QR code image (H2, H3)."""

from __future__ import annotations

import email
import email.policy
import io

import segno
from pigeonhole.api import MessageWording, Notification, Recipient
from pigeonhole_email.channel import EmailChannel
from pigeonhole_email.config import EmailConfig
from pigeonhole_email.message import build_message
from pigeonhole_email.qr import QR_CID, qr_png
from pigeonhole_email.render import render

DATA = {
    "tenant_name": "Acme Corp", "tracking_id": "TRK-1", "carrier": "DHL", "bank_name": "North Lobby",
    "location_name": "Building A", "compartment": 7, "code": "123456",
}  # fmt: skip


def note(**kw) -> Notification:
    return Notification(
        id="n-9", tenant="acme", event=kw.pop("event", "package.ready"), language=kw.pop("language", "en"),
        recipient=Recipient(name="Ann", email="ann@example.com"), data={**DATA, **kw.pop("data", {})}, **kw,
    )  # fmt: skip


def parsed(notification: Notification):
    raw = build_message(notification, EmailConfig()).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_tenant_wording_is_sent_as_text_and_simple_html():
    msg = parsed(note(subject="Parcel TRK-1", text="Hi Ann <3\n\nCode: 123456\nDoor 7\n"))
    assert msg["Subject"] == "Parcel TRK-1"
    assert msg.get_body(("plain",)).get_content() == "Hi Ann <3\n\nCode: 123456\nDoor 7\n"
    html = msg.get_body(("html",)).get_content()
    assert "<p>Hi Ann &lt;3</p>" in html
    assert "<strong" in html and "123456</strong>" in html
    assert "Door 7</p>" in html, "only the code is set apart in free text"


def test_the_qr_image_is_the_tokens_and_referenced_by_the_html():
    token = "PHQABCDEFGHJKMNPQRSTVWXYZ23"
    msg = parsed(note(data={"qr": token}))
    [image] = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == f"<{QR_CID}>"
    assert image.get_content() == qr_png(token)
    out = io.BytesIO()
    segno.make(token, error="m", micro=False).save(out, kind="png", scale=8, border=4)
    assert qr_png(token) == out.getvalue()
    html = msg.get_body(("html",)).get_content()
    assert f'src="cid:{QR_CID}"' in html and token in html
    assert token in msg.get_body(("plain",)).get_content()


def test_no_token_no_image():
    rendered = render(note())
    assert rendered.qr_png is None and "cid:" not in rendered.html


def test_defaults_are_offered_in_wording_syntax():
    wording = EmailChannel().default_wording("package.ready", "fr")
    assert isinstance(wording, MessageWording)
    assert "Code de retrait\u00a0: $code" in wording.body.split("\n\n")
    assert EmailChannel().default_wording("package.unheard_of", "en") is None
    assert EmailChannel().default_wording("alert.door.forced", "en").subject.startswith("Alert")
