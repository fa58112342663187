"""Steps of the deposit-to-pickup flow, shared by the tests that walk it."""

from __future__ import annotations

import uuid

from tests.support.api import Api


def new_email() -> str:
    return f"r{uuid.uuid4().hex[:10]}@example.test"


async def deposit(
    op: Api,
    bank_id: str,
    *,
    size: str = "m",
    email: str | None = None,
    name: str = "Ada Lovelace",
    language: str = "en",
    tracking_id: str | None = None,
) -> dict:
    body = {
        "tracking_id": tracking_id or f"TRK-{uuid.uuid4().hex[:10].upper()}",
        "carrier": "UPS",
        "size": size,
        "recipient": {"name": name, "email": email or new_email(), "language": language},
        "bank_id": bank_id,
    }
    return await op.ok("POST", "/packages", body)


async def close_door(admin: Api, bank_id: str, door: int) -> dict:
    return await admin.ok("POST", f"/ext/simulator/banks/{bank_id}/doors/{door}/close")


async def compartment(op: Api, bank_id: str, door: int) -> dict:
    bank = await op.ok("GET", f"/banks/{bank_id}")
    return next(c for c in bank["compartments"] if c["door"] == door)


async def deposit_and_close(op: Api, admin: Api, bank_id: str, **kwargs) -> dict:
    package = await deposit(op, bank_id, **kwargs)
    await close_door(admin, bank_id, package["door"]["door"])
    return package


async def directory_rows(admin: Api, op: Api) -> dict[str, list]:
    """Directory rows (#6): a custom field, a contact with a value in a department with a
    key contact, and a package waiting for them. Returns the ids, as the isolation walk wants."""
    tag = uuid.uuid4().hex[:8]
    field = await admin.ok(
        "POST",
        "/directory/custom-fields",
        {"screen": "contacts", "key": f"code_{tag}", "label": f"Cost centre {tag}", "type": "text"},
    )
    contact = await admin.ok(
        "POST",
        "/directory/contacts",
        {
            "name": f"Contact {tag}",
            "email": new_email(),
            "personnel_id": f"P-{tag}",
            "custom": {field["key"]: f"CC-{tag}"},
        },
    )
    department = await admin.ok(
        "POST",
        "/directory/departments",
        {"name": f"Department {tag}", "key_contact_id": contact["id"], "member_ids": [contact["id"]]},
    )
    await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": f"TRK-{tag}",
            "carrier": "UPS",
            "size": "s",
            "recipient_contact_id": contact["id"],
            "department_id": department["id"],
        },
    )
    return {"contact_id": [contact["id"]], "department_id": [department["id"]], "field_id": [field["id"]]}
