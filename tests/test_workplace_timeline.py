"""The workplace mailroom's timeline (H4): reminder 24 h, escalation 48 h, shelf storage at 72 h."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.flows import close_door, compartment, deposit_and_close, new_email
from tests.support.smtp import body_text
from tests.support.timelines import at, events, workplace


async def _notified(op, package_id: str, event: str) -> list[str]:
    rows = await op.ok("GET", f"/packages/{package_id}/notifications")
    return sorted(r["recipient"]["email"] for r in rows if r["event"] == event)


async def _mails_about(smtp, address: str, tracking_id: str, count: int = 1) -> list:
    """The mails to ``address`` that name the package, once ``count`` of them arrived."""
    for _ in range(400):
        found = [m for m in smtp.to(address) if tracking_id in m["Subject"] + body_text(m)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} mail(s) about {tracking_id} to {address}")


async def _department(admin) -> tuple[dict, dict, dict]:
    tag = uuid.uuid4().hex[:6]
    key = await admin.ok("POST", "/directory/contacts", {"name": f"Key {tag}", "email": new_email()})
    member = await admin.ok("POST", "/directory/contacts", {"name": f"Member {tag}", "email": new_email()})
    dept = await admin.ok(
        "POST",
        "/directory/departments",
        {"name": f"Finance {tag}", "key_contact_id": key["id"], "member_ids": [member["id"]]},
    )
    return key, member, dept


async def test_department_package_reminder_escalation_and_shelf(make_tenant, api, smtp):
    t = await make_tenant("wp", plugins=workplace())
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    key, member, dept = await _department(admin)
    package = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": f"TRK-{uuid.uuid4().hex[:8]}",
            "carrier": "UPS",
            "size": "s",
            "recipient_contact_id": member["id"],
            "department_id": dept["id"],
            "bank_id": bank,
        },
    )
    door = package["door"]["door"]
    await close_door(admin, bank, door)
    await smtp.wait_for(member["email"])
    pid = package["id"]

    await at(23.98)
    assert await events(op, pid) == ["package.ready"]
    await at(24)
    assert await _notified(op, pid, "package.reminder") == [member["email"]]
    await smtp.wait_for(member["email"], 2)

    await at(47.98)
    assert await _notified(op, pid, "package.escalated") == []
    await at(48)
    assert await _notified(op, pid, "package.escalated") == sorted([member["email"], key["email"]])
    [to_key] = await smtp.wait_for(key["email"])
    assert package["tracking_id"] in to_key["Subject"] + body_text(to_key)
    await smtp.wait_for(member["email"], 3)

    await at(71.98)
    assert (await op.ok("GET", f"/packages/{pid}"))["status"] == "ready"
    await at(72)
    expired = await op.ok("GET", f"/packages/{pid}")
    assert (expired["status"], expired["destination"]) == ("expired", "shelf")
    assert (await compartment(op, bank, door))["status"] == "expired"
    assert await _notified(op, pid, "package.expired") == [member["email"]]

    removed = await op.ok("POST", f"/packages/{pid}/remove")
    assert (removed["status"], removed["destination"], removed["compartment_id"]) == (
        "in_storage",
        "shelf",
        None,
    )
    assert (await compartment(op, bank, door))["status"] == "available"
    assert (await events(op, pid))[-1] == "package.removed"


async def test_escalation_without_a_department_goes_to_the_mailroom(make_tenant, api, smtp):
    t = await make_tenant("wp", plugins=workplace())
    op, admin = api(t, "operator"), api(t, "admin")
    operator_email, carrier_email = new_email(), new_email()
    await admin.ok(
        "POST", "/users", {"email": operator_email, "name": "Olga Operator", "role": "locker_operator"}
    )
    await admin.ok("POST", "/users", {"email": carrier_email, "name": "Carl Carrier", "role": "carrier"})
    email = new_email()
    package = await deposit_and_close(op, admin, t.banks["Lobby"], email=email)
    await smtp.wait_for(email)
    await at(48)
    assert await _notified(op, package["id"], "package.escalated") == sorted([email, operator_email])
    await smtp.wait_for(email, 3)
    mails = await _mails_about(smtp, operator_email, package["tracking_id"])
    assert len(mails) == 1, "the mailroom hears of it once"
    assert not [m for m in smtp.to(carrier_email) if package["tracking_id"] in m["Subject"] + body_text(m)], (
        "carriers deliver; they do not run the mailroom"
    )


async def test_steps_can_be_moved_or_left_out(make_tenant, api, smtp):
    t = await make_tenant("wp", plugins=workplace(hold_hours=10, reminder_hours=2, escalation_hours=0))
    op = api(t, "operator")
    email = new_email()
    package = await deposit_and_close(op, api(t, "admin"), t.banks["Lobby"], email=email)
    steps = await op.ok("GET", f"/packages/{package['id']}/timeline")
    assert [s["step"] for s in steps] == ["reminder", "expire"]
    await at(10)
    assert await events(op, package["id"]) == ["package.ready", "package.reminder", "package.expired"]


@pytest.mark.parametrize(
    "config, words",
    [
        (
            {"reminder_hours": 48, "escalation_hours": 24},
            "escalation_hours (24) must come after reminder_hours (48)",
        ),
        ({"reminder_hours": 24, "escalation_hours": 24}, "must come after reminder_hours"),
        ({"hold_hours": 48, "escalation_hours": 48}, "hold_hours (48) is when the package expires"),
        ({"hold_hours": 12, "reminder_hours": 24}, "must come after reminder_hours (24)"),
        ({"reminder_hours": -1}, "reminder_hours"),
    ],
)
async def test_a_timeline_out_of_order_is_refused(make_tenant, api, config, words):
    t = await make_tenant("wp", plugins=workplace())
    admin = api(t, "admin")
    before = await admin.ok("GET", "/plugins")
    response = await admin.put("/plugins/workplace", json={"config": config})
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]
    assert await admin.ok("GET", "/plugins") == before, "nothing changed"
