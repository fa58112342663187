"""Shared steps of the access tests (#5): a tenant with QR and badge pickup, contacts, deposits."""

from __future__ import annotations

import re
import textwrap
import uuid

from tests.flows import close_door, new_email
from tests.support.smtp import body_text, pickup_code

__all__ = ["close_door"]

#: The test tenant's plugins with QR tokens issued on deposit and badges accepted.
PLUGINS = textwrap.dedent(
    """
    [plugins.workplace]
    hold_hours = 72
    pickup_methods = ["pin", "qr"]
    [plugins.pin]
    [plugins.qr]
    [plugins.badge]
    [plugins.email]
    from_address = "Mailroom <mailroom@example.test>"
    [plugins.simulator]
    """
)

QR_TOKEN = re.compile(r"\bPHQ[0-9A-Z]{26}\b")


def tag() -> str:
    return uuid.uuid4().hex[:8]


def qr_token(mail) -> str:
    match = QR_TOKEN.search(body_text(mail))
    assert match, "no QR token in the mail"
    return match.group(0)


async def contact(admin, name: str, **extra) -> dict:
    body = {"name": name, "email": new_email(), **extra}
    return await admin.ok("POST", "/directory/contacts", body)


async def free_compartment_ids(op, bank_id: str, count: int, size: str = "s") -> list[str]:
    bank = await op.ok("GET", f"/banks/{bank_id}")
    free = [c for c in bank["compartments"] if c["status"] == "available" and c["size"] == size]
    assert len(free) >= count, f"only {len(free)} free {size} compartments"
    return [c["id"] for c in free[:count]]


async def deposit_to(
    op,
    admin,
    bank_id: str,
    *,
    contact_id: str | None = None,
    department_id: str | None = None,
    recipient: dict | None = None,
    compartment_id: str | None = None,
    size: str = "s",
    close: bool = True,
) -> dict:
    """A package deposited and (by default) its door closed: ready, its mail on the way."""
    body = {"tracking_id": f"TRK-{tag().upper()}", "carrier": "UPS", "size": size, "bank_id": bank_id}
    if contact_id:
        body["recipient_contact_id"] = contact_id
    if department_id:
        body["department_id"] = department_id
    if recipient:
        body["recipient"] = recipient
    if compartment_id:
        body["compartment_id"] = compartment_id
    package = await op.ok("POST", "/packages", body)
    if close:
        await close_door(admin, bank_id, package["door"]["door"])
    return package


async def code_for(smtp, address: str, tracking_id: str) -> str:
    import asyncio
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for mail in smtp.to(address):
            text = body_text(mail)
            if tracking_id in text and ("Pickup code" in text or "Code de retrait" in text):
                return pickup_code(mail)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail with a code for {tracking_id} to {address}")


async def mail_for(smtp, address: str, tracking_id: str, subject_part: str = ""):
    import asyncio
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for mail in smtp.to(address):
            if tracking_id in body_text(mail) and subject_part in str(mail["Subject"]):
                return mail
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail '{subject_part}' for {tracking_id} to {address}")


async def events(op, package_id: str) -> list[dict]:
    return await op.ok("GET", f"/packages/{package_id}/events")


async def carrier_values(api, t) -> dict[str, list]:
    """A carrier code of tenant ``t`` valid at its Lobby, and a carrier session opened with it (E7).

    Returns the ids the isolation walk needs.
    """
    created = await api(t, "admin").ok(
        "POST", "/carrier-codes", {"carrier": f"Carrier {tag()}", "bank_ids": [t.banks["Lobby"]], "name": tag()}
    )
    await api(t, "kiosk").ok("POST", f"/banks/{t.banks['Lobby']}/carrier-sessions", {"code": created["code"]})
    return {"carrier_code_id": [created["id"]]}
