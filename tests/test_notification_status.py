"""Every message's delivery status through the API, and sending a failed one again (H5)."""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

from pigeonhole.api import Recipient
from pigeonhole.domain.context import tenant_context
from pigeonhole.messaging import events, notify

from tests.flows import deposit_and_close, new_email


async def _settled(admin, notification_id: str, timeout: float = 30.0) -> dict:
    """Wait (without a timed assertion) until the worker is done with the message."""
    deadline = time.monotonic() + timeout
    while True:
        note = await admin.ok("GET", f"/notifications/{notification_id}")
        if note["status"] in ("sent", "failed"):
            return note
        assert time.monotonic() < deadline, f"message still {note['status']}"
        await asyncio.sleep(0.05)


async def _reminder(slug: str, package_id: str, email: str) -> UUID:
    """A message without a secret (a reminder), queued as a workflow would."""
    data = {k: v for k, v in events.EVENTS["package.reminder"].sample.items()}
    async with tenant_context(slug) as ctx:
        [queued] = await notify.queue_to(
            ctx, "package.reminder", Recipient(name="Rita", email=email), data, package_id=UUID(package_id)
        )
    return queued


async def test_a_sent_message_shows_as_sent(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    email = new_email()
    package = await deposit_and_close(op, admin, t.banks["Lobby"], email=email)
    await smtp.wait_for(email)
    [note] = await op.ok("GET", f"/notifications?package_id={package['id']}")
    note = await _settled(op, note["id"])
    assert (note["status"], note["attempts"], note["event"], note["channel"]) == (
        "sent", 1, "package.ready", "email"
    )  # fmt: skip
    assert note["sent_at"] is not None and note["last_error"] is None
    assert note["recipient"]["email"] == email
    assert "code" not in str(note), "the status never shows the code"
    for query in (f"recipient={email}", "status=sent&event=package.ready", "channel=email", "event=package."):
        found = await op.ok("GET", f"/notifications?{query}")
        assert note["id"] in {n["id"] for n in found}, query
    assert await op.ok("GET", f"/notifications?status=failed&package_id={package['id']}") == []
    assert await op.ok("GET", "/notifications?since=2999-01-01T00:00:00Z") == []
    page = await op.ok("GET", "/notifications?limit=1")
    assert len(page) == 1

    for bad, words in (
        ("status=lost", "status must be one of"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
    ):
        response = await op.get(f"/notifications?{bad}")
        assert response.status_code == 400 and words in response.json()["detail"], bad


async def test_a_refused_message_shows_why_and_a_wiped_code_cannot_be_resent(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    email = new_email()
    smtp.refuse(email)
    package = await deposit_and_close(op, admin, t.banks["Lobby"], email=email)
    [note] = await op.ok("GET", f"/notifications?package_id={package['id']}")
    note = await _settled(op, note["id"])
    assert note["status"] == "failed" and note["attempts"] == 1, "a 550 is final: no retry"
    assert "550" in note["last_error"] and "recipient refused" in note["last_error"]
    assert note["secrets_wiped"] is True
    assert note["id"] in {n["id"] for n in await op.ok("GET", "/notifications?status=failed")}

    before = await op.ok("GET", "/notifications")
    refused = await op.post(f"/notifications/{note['id']}/resend")
    assert refused.status_code == 409
    assert "wiped" in refused.json()["detail"] and "replace the pickup code" in refused.json()["detail"]
    assert await op.ok("GET", "/notifications") == before, "nothing queued"


async def test_a_failed_message_is_sent_again(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    package = await deposit_and_close(op, admin, t.banks["Lobby"], email=new_email())
    email = new_email()
    smtp.refuse(email)
    first = str(await _reminder(t.slug, package["id"], email))
    failed = await _settled(op, first)
    assert failed["status"] == "failed" and failed["secrets_wiped"] is False

    sent_one = (await op.ok("GET", f"/notifications?package_id={package['id']}&event=package.ready"))[0]
    not_failed = await op.post(f"/notifications/{sent_one['id']}/resend")
    assert not_failed.status_code == 409 and "Only a failed message" in not_failed.json()["detail"]

    smtp.recorder.refused.discard(email)  # the mailbox exists now
    again = await op.ok("POST", f"/notifications/{first}/resend", status=201)
    assert again["resend_of"] == first and again["id"] != first
    [mail] = await smtp.wait_for(email)
    assert mail["Subject"].startswith("Reminder")
    assert (await _settled(op, again["id"]))["status"] == "sent"
    assert (await op.ok("GET", f"/notifications/{first}"))["status"] == "failed", "history is kept"
    twice = await op.post(f"/notifications/{first}/resend")
    assert twice.status_code == 409 and again["id"] in twice.json()["detail"]
    [entry] = await admin.ok("GET", "/audit?action=notification.resent")
    assert entry["target_id"] == first

    missing = await op.get("/notifications/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    # A kiosk sees no message status.
    assert (await api(t, "kiosk").get("/notifications")).status_code == 403
