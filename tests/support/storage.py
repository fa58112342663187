"""Storage rows (#5, G1-G3) for the walks of tests/test_isolation.py and tests/test_roles_scopes.py."""

from __future__ import annotations

from tests.support.api import Api


async def storage_values(admin: Api, op: Api, bank_id: str, contact_id: str) -> dict[str, list]:
    """Enable storage and reserve a compartment for a contact: the ``reservation_id`` the walk uses."""
    await admin.ok("PUT", "/plugins/storage", {"config": {"keep_for_deliveries": {"m": 1}}})
    made = await op.ok(
        "POST",
        "/storage/reservations",
        {"bank_id": bank_id, "size": "m", "mode": "flexible", "hours": 4, "contact_id": contact_id},
    )
    return {"reservation_id": [made["id"]]}
