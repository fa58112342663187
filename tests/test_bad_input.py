"""Bad input is refused with a message naming the problem, and changes nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.flows import deposit

BANKS = """
[[divisions.locations.banks]]
name = "Lobby"
driver = "simulator"
compartments = [ { size = "s", count = 1 }, { size = "l", count = 1 } ]
"""


def body(bank_id=None, **over):
    b = {
        "tracking_id": f"T{uuid.uuid4().hex[:8]}",
        "carrier": "FedEx",
        "size": "s",
        "recipient": {"name": "Grace Hopper", "email": "grace@example.test"},
    }
    if bank_id:
        b["bank_id"] = bank_id
    b.update(over)
    return b


async def package_count(op) -> int:
    return len(await op.ok("GET", "/packages?limit=500"))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"tracking_id": 42}, "tracking_id"),
        ({"size": "huge"}, "size"),
        ({"recipient": {"email": "x@example.test"}}, "name"),
        ({"carrier": ""}, "carrier"),
        ({"bank_id": "not-a-uuid"}, "bank_id"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_malformed_bodies_name_the_field(make_tenant, api, change, field):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    response = await op.post("/packages", json=body(**change))
    assert response.status_code == 400
    assert field in response.text
    assert await package_count(op) == 0


async def test_not_json_at_all(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    response = await op.request(
        "POST", "/packages", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert await package_count(op) == 0


async def test_bad_email_is_refused(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    response = await op.post("/packages", json=body(recipient={"name": "A", "email": "not an email"}))
    assert response.status_code == 422
    assert "not an email address" in response.json()["detail"]
    assert await package_count(op) == 0


async def test_unknown_bank_is_404_and_nothing_is_received(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    missing = str(uuid.uuid4())
    response = await op.post("/packages", json=body(bank_id=missing))
    assert response.status_code == 404
    assert missing in response.json()["detail"]
    assert await package_count(op) == 0


async def test_package_no_compartment_can_hold(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    # deposit (#5, E9): by default such a package waits at the counter; this bank refuses instead.
    settings = {"settings": {"oversized_to_counter": False}}
    await api(t, "admin").ok("PATCH", f"/banks/{t.banks['Lobby']}", settings)
    response = await op.post("/packages", json=body(bank_id=t.banks["Lobby"], size="xl"))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "can hold a package of size xl" in detail and "largest in service: l" in detail
    assert await package_count(op) == 0


async def test_full_bank_is_409_naming_bank_and_size_and_changes_nothing(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    bank_id = t.banks["Lobby"]
    await deposit(op, bank_id, size="s")
    await deposit(op, bank_id, size="s")  # takes the large one: the smallest that fits
    before = await op.ok("GET", f"/banks/{bank_id}")
    response = await op.post("/packages", json=body(bank_id=bank_id, size="s"))
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "Lobby" in detail and "size s" in detail
    assert await package_count(op) == 2
    assert await op.ok("GET", f"/banks/{bank_id}") == before


async def test_unknown_tenant_and_bad_keys(make_tenant, api, client):
    t = await make_tenant(banks=BANKS)
    response = await client.get("/api/v1/t/no-such-tenant/banks", headers={"Authorization": "Bearer x"})
    assert response.status_code == 404
    assert "no-such-tenant" in response.json()["detail"]
    response = await client.get(f"/api/v1/t/{t.slug}/banks")
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    response = await client.get(f"/api/v1/t/{t.slug}/banks", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


async def test_a_kiosk_cannot_receive_packages(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    kiosk = api(t, "kiosk")
    response = await kiosk.post("/packages", json=body(bank_id=t.banks["Lobby"]))
    assert response.status_code == 403
    assert "packages:write" in response.json()["detail"]
    assert await package_count(api(t, "operator")) == 0


async def test_deposit_twice_is_refused(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    package = await deposit(op, t.banks["Lobby"], size="s")
    response = await op.post(f"/packages/{package['id']}/deposit", json={"bank_id": t.banks["Lobby"]})
    assert response.status_code == 409
    assert "depositing" in response.json()["detail"]


async def test_receive_first_deposit_later(make_tenant, api):
    t = await make_tenant(banks=BANKS)
    op = api(t, "operator")
    received = await op.ok("POST", "/packages", body())
    assert received["status"] == "received" and received["compartment_id"] is None
    placed = await op.ok("POST", f"/packages/{received['id']}/deposit", {"bank_id": t.banks["Lobby"]})
    assert placed["status"] == "depositing" and placed["door"]["outcome"] == "opened"
