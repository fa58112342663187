"""The public post office's timeline (H3, K1, K2), as the recipient and the counter staff see it."""

from __future__ import annotations

import pytest

from tests.flows import compartment, deposit_and_close, new_email
from tests.support.smtp import body_text, pickup_code
from tests.support.timelines import USPS, at, events


async def _deposit(t, api, smtp, **kwargs):
    op, admin = api(t, "operator"), api(t, "admin")
    email = new_email()
    package = await deposit_and_close(op, admin, t.banks["Lobby"], email=email, **kwargs)
    [ready] = await smtp.wait_for(email)
    return package, email, pickup_code(ready)


async def test_the_whole_post_office_timeline(make_tenant, api, smtp):
    t = await make_tenant("po", plugins=USPS)
    op, kiosk = api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    package, email, code = await _deposit(t, api, smtp)
    pid, door = package["id"], package["door"]["door"]
    ready = await op.ok("GET", f"/packages/{pid}")
    steps = await op.ok("GET", f"/packages/{pid}/timeline")
    assert [(s["step"], s["status"]) for s in steps] == [
        ("reminder-1", "pending"),
        ("reminder-2", "pending"),
        ("reminder-3", "pending"),
        ("expire", "pending"),
    ]
    assert steps[-1]["due_at"] == ready["expires_at"], (
        "the expiry told in the ready mail is the one that fires"
    )

    # Three reminders, each at its hour and not a minute before.
    for n, hours in enumerate((24, 48, 96), start=1):
        await at(hours - 0.02)
        assert await events(op, pid) == ["package.ready"] + ["package.reminder"] * (n - 1), (
            f"reminder {n} early"
        )
        await at(hours)
        assert await events(op, pid) == ["package.ready"] + ["package.reminder"] * n
        mails = await smtp.wait_for(email, 1 + n)
        assert (
            package["tracking_id"] in body_text(mails[-1]) or package["tracking_id"] in mails[-1]["Subject"]
        )
    await at(120 - 0.02)
    assert (await op.ok("GET", f"/packages/{pid}"))["status"] == "ready"
    assert (
        await kiosk.post(f"/banks/{bank}/pickup", json={"code": "000000" if code != "000000" else "000001"})
    ).status_code == 403

    # Five days: the code dies, the parcel waits for the counter staff.
    await at(120)
    assert await events(op, pid) == ["package.ready"] + ["package.reminder"] * 3 + ["package.expired"]
    mails = await smtp.wait_for(email, 5)
    assert "expired" in (mails[-1]["Subject"] + body_text(mails[-1])).lower()
    expired = await op.ok("GET", f"/packages/{pid}")
    assert (expired["status"], expired["destination"]) == ("expired", "counter")
    assert (await compartment(op, bank, door))["status"] == "expired", "the parcel is still inside"
    [held] = [r for r in await op.ok("GET", f"/banks/{bank}/reservations") if r["package_id"] == pid]
    assert held["status"] == "expired"
    refused = await kiosk.post(f"/banks/{bank}/pickup", json={"code": code})
    assert refused.status_code == 403
    assert "expired" in refused.json()["detail"]
    assert (await compartment(op, bank, door))["status"] == "expired", "a dead code opens nothing"
    assert [s["status"] for s in await op.ok("GET", f"/packages/{pid}/timeline")] == ["fired"] * 4

    # The counter staff take it out.
    removal = await op.ok("POST", f"/banks/{bank}/expired/remove")
    assert [(r["package_id"], r["door"], r["status"]) for r in removal["removed"]] == [
        (pid, door, "at_counter")
    ]
    assert removal["failed"] == []
    done = await op.ok("GET", f"/packages/{pid}")
    assert (done["status"], done["compartment_id"]) == ("at_counter", None)
    assert (await compartment(op, bank, door))["status"] == "available"
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{pid}/events")]
    assert "package.expired" in kinds and "package.removed" in kinds
    assert (
        kinds.index("package.expired")
        < kinds.index("door.removal_requested")
        < kinds.index("package.removed")
    )
    assert (await events(op, pid))[-1] == "package.removed"
    # Much later: nothing more for this package.
    await at(24 * 30)
    assert (await events(op, pid))[-1] == "package.removed"
    assert (await kiosk.post(f"/banks/{bank}/pickup", json={"code": code})).status_code == 403


async def test_a_picked_up_package_gets_no_reminder(make_tenant, api, smtp):
    t = await make_tenant("po", plugins=USPS)
    op, kiosk = api(t, "operator"), api(t, "kiosk")
    package, email, code = await _deposit(t, api, smtp)
    await at(3)
    await kiosk.ok("POST", f"/banks/{t.banks['Lobby']}/pickup", {"code": code})
    for hours in (24, 48, 96, 120, 200):
        await at(hours)
    assert await events(op, package["id"]) == ["package.ready", "package.picked_up"]
    steps = await op.ok("GET", f"/packages/{package['id']}/timeline")
    assert [s["status"] for s in steps] == ["skipped"] * 4
    assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "picked_up"


async def test_the_schedule_does_not_move_when_the_config_changes(make_tenant, api, smtp):
    t = await make_tenant("po", plugins=USPS)
    op, admin = api(t, "operator"), api(t, "admin")
    package, email, _ = await _deposit(t, api, smtp)
    before = await op.ok("GET", f"/packages/{package['id']}/timeline")
    await admin.ok(
        "PUT", "/plugins/usps", {"config": {"hold_days": 2, "reminder_hours": [1], "pickup_methods": ["pin"]}}
    )
    await at(1)
    assert await events(op, package["id"]) == ["package.ready"], "the old package keeps its own schedule"
    await at(48)
    assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "ready"
    assert await op.ok("GET", f"/packages/{package['id']}/timeline") != before  # statuses moved on
    assert [s["due_at"] for s in await op.ok("GET", f"/packages/{package['id']}/timeline")] == [
        s["due_at"] for s in before
    ]
    # A package deposited now follows the new configuration.
    fresh, _, _ = await _deposit(t, api, smtp)
    assert [s["step"] for s in await op.ok("GET", f"/packages/{fresh['id']}/timeline")] == [
        "reminder-1",
        "expire",
    ]


async def test_a_recipient_nobody_can_reach_is_refused(make_tenant, api, smtp):
    """K2: the post office knows the public by email or phone only; without either, no code can go out."""
    t = await make_tenant("po", plugins=USPS)
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    before = await op.ok("GET", f"/banks/{bank}")
    listed = await op.ok("GET", "/packages")
    response = await op.post(
        "/packages",
        json={
            "tracking_id": "TRK-NOBODY",
            "carrier": "USPS",
            "size": "s",
            "recipient": {"name": "Walk In"},
            "bank_id": bank,
        },
    )
    assert response.status_code == 422, response.text  # the project's answer to a rule broken in the body
    assert "email address or phone number" in response.json()["detail"]
    assert await op.ok("GET", "/packages") == listed, "nothing was recorded"
    assert await op.ok("GET", f"/banks/{bank}") == before, "no compartment was reserved, no door opened"
    # A phone number is enough.
    phone = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "TRK-PHONE",
            "carrier": "USPS",
            "size": "s",
            "recipient": {"name": "Walk In", "phone": "+15551234567"},
        },
    )
    assert phone["status"] == "received"


@pytest.mark.parametrize(
    "config, words",
    [
        ({"reminder_hours": [48, 24]}, "increasing"),
        ({"reminder_hours": [24, 24]}, "increasing"),
        ({"hold_days": 2, "reminder_hours": [24, 48]}, "before the package expires"),
        ({"hold_days": 0}, "hold_days"),
        ({"expiry_destination": "bin"}, "expiry_destination"),
    ],
)
async def test_a_bad_post_office_config_is_refused(make_tenant, api, config, words):
    t = await make_tenant("po", plugins=USPS)
    admin = api(t, "admin")
    before = await admin.ok("GET", "/plugins")
    response = await admin.put("/plugins/usps", json={"config": config})
    assert response.status_code == 400, response.text
    assert words in response.text
    assert await admin.ok("GET", "/plugins") == before
