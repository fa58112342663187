"""Allocation under load: a compartment is never handed to two packages (E2)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

BANK_50 = """
[[divisions.locations.banks]]
name = "Lobby"
driver = "simulator"
compartments = [ { size = "m", count = 50 } ]
"""


async def test_200_concurrent_deposits_into_50_compartments(make_tenant, api):
    t = await make_tenant(banks=BANK_50)
    op = api(t, "operator")
    bank_id = t.banks["Lobby"]

    async def one(i: int):
        return await op.post(
            "/packages",
            json={
                "tracking_id": f"C{i:04d}-{uuid.uuid4().hex[:6]}",
                "carrier": "DHL",
                "size": "s",
                "recipient": {"name": f"Person {i}", "email": f"p{i}@example.test"},
                "bank_id": bank_id,
            },
        )

    responses = await asyncio.gather(*(one(i) for i in range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 409: 150}, statuses

    refusal = next(r for r in responses if r.status_code == 409).json()
    assert "Lobby" in refusal["detail"] and "size s" in refusal["detail"]

    doors = [r.json()["door"]["door"] for r in responses if r.status_code < 300]
    assert len(set(doors)) == 50, "each door given out once"

    bank = await op.ok("GET", f"/banks/{bank_id}")
    assert bank["summary"]["reserved"] == 50 and bank["summary"]["available"] == 0
    holders = [c["package_id"] for c in bank["compartments"]]
    assert len(set(holders)) == 50

    active = await op.ok("GET", f"/banks/{bank_id}/reservations?status=active")
    assert len(active) == 50 and len({r["compartment_id"] for r in active}) == 50

    # A refused deposit leaves nothing behind: only the 50 assigned packages exist.
    packages = await op.ok("GET", "/packages?limit=500")
    assert len(packages) == 50
    assert {p["compartment_id"] for p in packages} == {c["id"] for c in bank["compartments"]}
