"""Storage of belongings (G1-G3) and compartments kept for deliveries (D6), through the API.

Every mode's timeline runs under the controllable clock (clock.advance, then
a timer tick); codes come from the storage.reserved mail the real SMTP sink
received; refusals name their rule and change nothing.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from datetime import datetime, timedelta

from pigeonhole.domain import clock, timers

from tests.flows import close_door, deposit, new_email
from tests.support.api import Api
from tests.support.smtp import body_text

PLUGINS = textwrap.dedent("""
    [plugins.workplace]
    hold_hours = 72
    [plugins.pin]
    [plugins.email]
    from_address = "Mailroom <mailroom@example.test>"
    [plugins.simulator]
    [plugins.storage]
    modes = {modes}
    fixed_hours = 4
    max_hours = 8
    max_advance_hours = 48
    reminder_minutes = 30
    sizes = ["s", "m", "l"]
    keep_for_deliveries = {{ s = 2, m = 1 }}
    """)


def plugins(modes: str = '["fixed", "flexible", "open"]') -> str:
    return PLUGINS.format(modes=modes)


def storage_code(mail) -> str:
    match = re.search(r"\bCode\W*(\d{4,12})", body_text(mail))
    assert match, f"no code in the storage mail:\n{body_text(mail)}"
    return match.group(1)


def event_of(mail) -> str:
    return str(mail["X-Pigeonhole-Event"])


async def mails(smtp, email: str, event: str, count: int = 1) -> list:
    """Wait until ``count`` mails of ``event`` reached ``email``."""
    import asyncio
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [m for m in smtp.to(email) if event_of(m) == event]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    got = [event_of(m) for m in smtp.to(email)]
    raise AssertionError(f"expected {count} {event} mail(s) to {email}, got {got}")


async def person(admin: Api, name: str = "Stella Store") -> dict:
    return await admin.ok(
        "POST", "/directory/contacts", {"name": f"{name} {uuid.uuid4().hex[:6]}", "email": new_email()}
    )


async def world(make_tenant, api, modes: str | None = None):
    t = await make_tenant("st", plugins=plugins(modes) if modes else plugins())
    return t, api(t, "admin"), api(t, "operator"), api(t, "kiosk")


async def reserve(op: Api, t, contact: dict | None = None, **body) -> dict:
    payload = {"bank_id": t.banks["Lobby"], "size": "m", "mode": "fixed", **body}
    if contact is not None:
        payload["contact_id"] = contact["id"]
    return await op.ok("POST", "/storage/reservations", payload)


async def comp_status(op: Api, t, door: int) -> str:
    bank = await op.ok("GET", f"/banks/{t.banks['Lobby']}")
    return next(c["status"] for c in bank["compartments"] if c["door"] == door)


async def state(op: Api, t) -> dict:
    """What a refusal must leave as it was: reservations, compartments, timers' effects."""
    bank = await op.ok("GET", f"/banks/{t.banks['Lobby']}")
    return {
        "reservations": await op.ok("GET", "/reservations"),
        "compartments": [(c["door"], c["status"]) for c in bank["compartments"]],
    }


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def tick_after(delta: timedelta) -> None:
    clock.advance(delta)
    await timers.tick()


# --- G1: each mode's timeline ---------------------------------------------------------------


async def test_fixed_storage_timeline_reminds_expires_and_is_cleared(make_tenant, api, smtp):
    t, admin, op, kiosk = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    made = await reserve(op, t, contact)
    assert (made["kind"], made["status"], made["mode"], made["size"]) == ("storage", "active", "fixed", "m")
    assert at(made["ends_at"]) - at(made["starts_at"]) == timedelta(hours=4)
    assert made["contact_id"] == contact["id"]
    assert "code" not in made, "the code reaches people only in the message"
    door = made["door"]
    assert await comp_status(op, t, door) == "reserved"

    [mail] = await mails(smtp, contact["email"], "storage.reserved")
    code = storage_code(mail)
    assert f"Door: {door}" in body_text(mail)

    opened = await kiosk.ok("POST", f"/banks/{lobby}/storage/open", {"code": code})
    assert (opened["door"], opened["outcome"]) == (door, "opened")
    assert await comp_status(op, t, door) == "occupied"

    # 3 h 29 min: nothing yet; 3 h 31 min: the reminder, 30 minutes before the end.
    await tick_after(timedelta(hours=3, minutes=29))
    assert [event_of(m) for m in smtp.to(contact["email"])] == ["storage.reserved"]
    await tick_after(timedelta(minutes=2))
    [ending] = await mails(smtp, contact["email"], "storage.ending")
    assert "30 minutes" in ending["Subject"]

    # Past the end: expired; something may be inside (it was opened), so the compartment waits for staff.
    await tick_after(timedelta(minutes=30))
    [ended] = await mails(smtp, contact["email"], "storage.ended")
    assert "expired" in ended["Subject"].lower()
    row = await op.ok("GET", f"/storage/reservations/{made['id']}")
    assert (row["status"], row["compartment_status"]) == ("expired", "expired")
    dead = await kiosk.post(f"/banks/{lobby}/storage/open", json={"code": code})
    assert dead.status_code == 403
    # A second tick sends nothing twice.
    await tick_after(timedelta(hours=1))
    assert len([m for m in smtp.to(contact["email"]) if event_of(m) == "storage.ended"]) == 1

    cleared = await op.ok("POST", f"/storage/reservations/{made['id']}/clear", {})
    assert (cleared["door"], cleared["compartment_status"]) == (door, "available")
    assert await comp_status(op, t, door) == "available"
    again = await op.post(f"/storage/reservations/{made['id']}/clear", json={})
    assert again.status_code == 409


async def test_expiry_of_a_never_opened_storage_frees_the_compartment(make_tenant, api, smtp):
    t, admin, op, _ = await world(make_tenant, api)
    contact = await person(admin)
    made = await reserve(op, t, contact)
    await tick_after(timedelta(hours=4, minutes=1))
    await mails(smtp, contact["email"], "storage.ended")
    row = await op.ok("GET", f"/storage/reservations/{made['id']}")
    assert (row["status"], row["compartment_status"]) == ("expired", "available")


async def test_flexible_storage_extends_up_to_its_maximum_then_ends(make_tenant, api, smtp):
    t, admin, op, kiosk = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    made = await reserve(op, t, contact, mode="flexible", hours=2)
    start = at(made["starts_at"])
    assert at(made["ends_at"]) == start + timedelta(hours=2)
    assert at(made["max_ends_at"]) == start + timedelta(hours=8)
    code = storage_code((await mails(smtp, contact["email"], "storage.reserved"))[0])
    await kiosk.ok("POST", f"/banks/{lobby}/storage/open", {"code": code})

    longer = await op.ok("POST", f"/storage/reservations/{made['id']}/extend", {"hours": 3})
    assert at(longer["ends_at"]) == start + timedelta(hours=5)

    before = await state(op, t)
    past = await op.post(f"/storage/reservations/{made['id']}/extend", json={"hours": 4})
    assert past.status_code == 422
    assert "at most 8 hours" in past.json()["detail"]
    assert await state(op, t) == before, "a refused extension changes nothing"

    # The first end (2 h) no longer expires it: its timers moved with the extension.
    await tick_after(timedelta(hours=2, minutes=1))
    assert (await op.ok("GET", f"/storage/reservations/{made['id']}"))["status"] == "active"
    await kiosk.ok("POST", f"/banks/{lobby}/storage/open", {"code": code})

    ended = await op.ok("POST", f"/storage/reservations/{made['id']}/end", {})
    assert (ended["status"], ended["compartment_status"], ended["door"]) == (
        "fulfilled",
        "available",
        made["door"],
    )
    assert await comp_status(op, t, made["door"]) == "available"
    [mail] = await mails(smtp, contact["email"], "storage.ended")
    assert "no longer works" in body_text(mail)
    assert (await kiosk.post(f"/banks/{lobby}/storage/open", json={"code": code})).status_code == 403
    # Nothing fires after the end.
    await tick_after(timedelta(hours=9))
    assert [event_of(m) for m in smtp.to(contact["email"])].count("storage.ended") == 1
    assert (await op.post(f"/storage/reservations/{made['id']}/extend", json={"hours": 1})).status_code == 409


async def test_open_storage_has_no_end_until_someone_ends_it(make_tenant, api, smtp):
    t, admin, op, _ = await world(make_tenant, api)
    contact = await person(admin)
    made = await reserve(op, t, contact, mode="open")
    assert (made["mode"], made["ends_at"], made["max_ends_at"]) == ("open", None, None)
    await tick_after(timedelta(days=30))
    assert (await op.ok("GET", f"/storage/reservations/{made['id']}"))["status"] == "active"
    not_flexible = await op.post(f"/storage/reservations/{made['id']}/extend", json={"hours": 1})
    assert not_flexible.status_code == 422 and "Only a flexible" in not_flexible.json()["detail"]
    # Never opened: nothing inside, it ends without moving the door.
    ended = await op.ok("POST", f"/reservations/{made['id']}/end", {})
    assert (ended["status"], ended["compartment_status"], ended["door"]) == ("fulfilled", "available", None)
    await mails(smtp, contact["email"], "storage.ended")


# --- G2: reserving ahead ---------------------------------------------------------------------


async def test_storage_reserved_ahead_holds_the_compartment_and_opens_from_its_start(make_tenant, api, smtp):
    t, admin, op, kiosk = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    starts = clock.now() + timedelta(hours=10)
    made = await reserve(op, t, contact, mode="flexible", hours=3, starts_at=starts.isoformat())
    assert at(made["starts_at"]) == starts
    assert await comp_status(op, t, made["door"]) == "reserved", "held from its creation"
    code = storage_code((await mails(smtp, contact["email"], "storage.reserved"))[0])

    early = await kiosk.post(f"/banks/{lobby}/storage/open", json={"code": code})
    assert early.status_code == 403 and "starts at" in early.json()["detail"]
    await tick_after(timedelta(hours=10))
    opened = await kiosk.ok("POST", f"/banks/{lobby}/storage/open", {"code": code})
    assert opened["door"] == made["door"]
    await tick_after(timedelta(hours=3, minutes=1))
    assert (await op.ok("GET", f"/storage/reservations/{made['id']}"))["status"] == "expired"


async def test_ending_before_the_start_cancels_without_opening(make_tenant, api, smtp):
    t, admin, op, _ = await world(make_tenant, api)
    contact = await person(admin)
    made = await reserve(op, t, contact, starts_at=(clock.now() + timedelta(hours=5)).isoformat())
    ended = await op.ok("POST", f"/storage/reservations/{made['id']}/end", {})
    assert (ended["status"], ended["compartment_status"], ended["door"]) == ("cancelled", "available", None)


# --- G3: department storage --------------------------------------------------------------------


async def test_department_storage_is_shared_by_its_members(make_tenant, api, smtp):
    t, admin, op, kiosk = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    ann, bob, eve = await person(admin, "Ann"), await person(admin, "Bob"), await person(admin, "Eve")
    team = await admin.ok(
        "POST",
        "/directory/departments",
        {"name": f"Team {uuid.uuid4().hex[:6]}", "member_ids": [ann["id"], bob["id"]]},
    )
    made = await op.ok(
        "POST",
        "/storage/reservations",
        {"bank_id": lobby, "size": "l", "mode": "flexible", "hours": 6, "department_id": team["id"]},
    )
    assert (made["department_id"], made["contact_id"]) == (team["id"], None)
    ann_code = storage_code((await mails(smtp, ann["email"], "storage.reserved"))[0])
    bob_code = storage_code((await mails(smtp, bob["email"], "storage.reserved"))[0])
    assert ann_code == bob_code, "one shared compartment, one shared code"
    assert not smtp.to(eve["email"])

    # Ann at the kiosk with the code, Bob through the app: both open the same compartment.
    first = await kiosk.ok("POST", f"/banks/{lobby}/storage/open", {"code": ann_code})
    second = await op.ok("POST", f"/storage/reservations/{made['id']}/open", {"contact_id": bob["id"]})
    assert first["door"] == second["door"] == made["door"]
    stranger = await op.post(f"/storage/reservations/{made['id']}/open", json={"contact_id": eve["id"]})
    assert stranger.status_code == 403 and "members of its department" in stranger.json()["detail"]

    listed = await op.ok("GET", f"/storage/reservations?department_id={team['id']}")
    assert [r["id"] for r in listed] == [made["id"]]
    await op.ok("POST", f"/storage/reservations/{made['id']}/end", {})
    await mails(smtp, ann["email"], "storage.ended")
    await mails(smtp, bob["email"], "storage.ended")


# --- D6: compartments kept for deliveries ------------------------------------------------------


async def test_storage_never_takes_the_compartments_kept_for_deliveries(make_tenant, api, smtp):
    t, admin, op, _ = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    # Lobby: 3 medium compartments, 1 kept for deliveries -> 2 for storage.
    await reserve(op, t, contact)
    await reserve(op, t, contact)
    before = await state(op, t)
    refused = await op.post(
        "/storage/reservations",
        json={"bank_id": lobby, "size": "m", "mode": "fixed", "contact_id": contact["id"]},
    )
    assert refused.status_code == 409
    assert "kept for deliveries" in refused.json()["detail"]
    assert await state(op, t) == before, "a refused reservation changes nothing"

    # A delivery still gets the medium compartment storage could not take.
    package = await deposit(op, lobby, size="m")
    assert package["door"]["outcome"] == "opened"
    assert await comp_status(op, t, package["door"]["door"]) == "reserved"
    bank = await op.ok("GET", f"/banks/{lobby}")
    medium = [c for c in bank["compartments"] if c["size"] == "m"]
    assert package["door"]["door"] in {c["door"] for c in medium}
    assert all(c["status"] == "reserved" for c in medium)

    # Small: 4, 2 kept -> 2 for storage.
    for _ in range(2):
        await reserve(op, t, contact, size="s")
    small = await op.post(
        "/storage/reservations",
        json={"bank_id": lobby, "size": "s", "mode": "fixed", "contact_id": contact["id"]},
    )
    assert small.status_code == 409 and "kept for deliveries" in small.json()["detail"]


# --- bad input ----------------------------------------------------------------------------------


async def test_bad_storage_requests_name_their_rule_and_change_nothing(make_tenant, api, smtp):
    t, admin, op, _ = await world(make_tenant, api, modes='["fixed", "flexible"]')
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    base = {"bank_id": lobby, "size": "m", "contact_id": contact["id"]}
    far = (clock.now() + timedelta(hours=49)).isoformat()
    cases = [
        ({**base, "mode": "fixed", "hours": 6}, 422, "lasts exactly 4 hours"),
        ({**base, "mode": "flexible", "hours": 9}, 422, "at most 8 hours"),
        ({**base, "mode": "flexible"}, 422, "needs its length"),
        ({**base, "mode": "open"}, 422, "'open' is not allowed here (allowed: fixed, flexible)"),
        ({**base, "mode": "forever"}, 422, "Unknown storage mode"),
        ({**base, "mode": "fixed", "starts_at": far}, 422, "at most 48 hours ahead"),
        ({**base, "mode": "fixed", "size": "xl"}, 422, "size xl"),
        ({"bank_id": lobby, "size": "m", "mode": "fixed"}, 422, "give exactly one"),
        ({**base, "mode": "fixed", "contact_id": str(uuid.uuid4())}, 404, "Contact"),
    ]
    before = await state(op, t)
    for body, status, words in cases:
        response = await op.post("/storage/reservations", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"], (body, response.json()["detail"])
    assert await state(op, t) == before
    assert not smtp.to(contact["email"])


async def test_storage_needs_the_plugin(make_tenant, api):
    t = await make_tenant("ns")
    admin = api(t, "admin")
    contact = await person(admin)
    refused = await api(t, "operator").post(
        "/storage/reservations",
        json={"bank_id": t.banks["Lobby"], "size": "m", "mode": "fixed", "contact_id": contact["id"]},
    )
    assert refused.status_code == 422 and "storage plugin" in refused.json()["detail"]


async def test_kiosk_storage_codes_meet_the_guessing_walls(make_tenant, api, smtp):
    t, admin, op, kiosk = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    await reserve(op, t, contact)
    code = storage_code((await mails(smtp, contact["email"], "storage.reserved"))[0])
    wrong = "000000" if code != "000000" else "000001"
    first = await kiosk.post(f"/banks/{lobby}/storage/open", json={"code": wrong})
    assert first.status_code == 403 and "4 attempts left" in first.json()["detail"]
    for _ in range(4):
        last = await kiosk.post(f"/banks/{lobby}/storage/open", json={"code": wrong})
    assert last.status_code == 429 and "Retry-After" in last.headers
    paused = await kiosk.post(f"/banks/{lobby}/storage/open", json={"code": code})
    assert paused.status_code == 429, "even the right code waits while the kiosk is paused"
    # Another kiosk of the bank still takes it.
    other = api(t, "kiosk2")
    assert (await other.ok("POST", f"/banks/{lobby}/storage/open", {"code": code}))["outcome"] == "opened"
    # A kiosk of another bank does not know this bank.
    annex = await other.post(f"/banks/{t.banks['Annex']}/storage/open", json={"code": code})
    assert annex.status_code == 404


async def test_a_storage_code_is_no_pickup_code_and_owners_are_kept_while_active(make_tenant, api, smtp):
    t, admin, op, kiosk = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    made = await reserve(op, t, contact)
    code = storage_code((await mails(smtp, contact["email"], "storage.reserved"))[0])
    as_pickup = await kiosk.post(f"/banks/{lobby}/pickup", json={"code": code})
    assert as_pickup.status_code == 403 and "not valid" in as_pickup.json()["detail"]
    assert await comp_status(op, t, made["door"]) == "reserved"

    busy = await admin.delete(f"/directory/contacts/{contact['id']}")
    assert busy.status_code == 409 and "active reservation" in busy.json()["detail"]
    assert (await op.ok("GET", f"/storage/reservations/{made['id']}"))["contact_id"] == contact["id"]
    await op.ok("POST", f"/storage/reservations/{made['id']}/end", {})
    assert (await admin.delete(f"/directory/contacts/{contact['id']}")).status_code < 300
    kept = await op.ok("GET", f"/storage/reservations/{made['id']}")
    assert (kept["status"], kept["contact_id"]) == ("fulfilled", None)


async def test_a_door_that_does_not_open_changes_nothing(make_tenant, api, smtp):
    t, admin, op, kiosk = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    contact = await person(admin)
    made = await reserve(op, t, contact, mode="open")
    code = storage_code((await mails(smtp, contact["email"], "storage.reserved"))[0])
    fault = f"/ext/simulator/banks/{lobby}/doors/{made['door']}/fault"

    await admin.ok("PUT", fault, {"fault": "jammed"})
    jammed = await kiosk.post(f"/banks/{lobby}/storage/open", json={"code": code})
    assert jammed.status_code == 502 and "did not open (jammed)" in jammed.json()["detail"]
    row = await op.ok("GET", f"/storage/reservations/{made['id']}")
    assert (row["opened_at"], row["compartment_status"]) == (None, "reserved")

    await admin.ok("PUT", fault, {"fault": None})
    await kiosk.ok("POST", f"/banks/{lobby}/storage/open", {"code": code})
    await close_door(admin, lobby, made["door"])
    await admin.ok("PUT", fault, {"fault": "jammed"})
    stuck = await op.post(f"/storage/reservations/{made['id']}/end", json={})
    assert stuck.status_code == 502
    row = await op.ok("GET", f"/storage/reservations/{made['id']}")
    assert (row["status"], row["compartment_status"]) == ("active", "occupied"), "the storage goes on"
    await admin.ok("PUT", fault, {"fault": None})
    assert (await kiosk.ok("POST", f"/banks/{lobby}/storage/open", {"code": code}))["outcome"] == "opened"
    ended = await op.ok("POST", f"/storage/reservations/{made['id']}/end", {})
    assert (ended["status"], ended["compartment_status"]) == ("fulfilled", "available")


async def test_department_storage_needs_someone_to_share_it_and_an_aware_start(make_tenant, api, smtp):
    t, admin, op, _ = await world(make_tenant, api)
    lobby = t.banks["Lobby"]
    empty = await admin.ok("POST", "/directory/departments", {"name": f"Empty {uuid.uuid4().hex[:6]}"})
    before = await state(op, t)
    nobody = await op.post(
        "/storage/reservations",
        json={"bank_id": lobby, "size": "m", "mode": "fixed", "department_id": empty["id"]},
    )
    assert nobody.status_code == 422 and "no active member" in nobody.json()["detail"]
    contact = await person(admin)
    naive = await op.post(
        "/storage/reservations",
        json={
            "bank_id": lobby,
            "size": "m",
            "mode": "fixed",
            "contact_id": contact["id"],
            "starts_at": "2030-01-01T09:00:00",
        },
    )
    assert naive.status_code == 422 and "time zone offset" in naive.json()["detail"]
    assert await state(op, t) == before
