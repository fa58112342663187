"""A package addressed to a directory contact or a department.

The contact's (or the department key contact's) name, email, phone and
language are copied into the package's recipient fields when it is received:
notifications read those fields as before, and a package keeps the name it
was delivered to after the contact changes or goes. A package for a contact
already deactivated is flagged for the mailroom at once.
"""

from __future__ import annotations

from typing import Any

from pigeonhole.db.tables import Contact
from pigeonhole.domain import custody
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import departments
from pigeonhole.domain.directory.contacts import FLAG_DEACTIVATED, get_row
from pigeonhole.domain.errors import Forbidden, Invalid


async def resolve(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """Check the package's addressing; returns the columns the directory fills ({} for inline)."""
    contact_id = body.get("recipient_contact_id")
    department_id = body.get("department_id")
    given = [k for k in ("recipient", "recipient_contact_id", "department_id") if body.get(k) is not None]
    if not given:
        raise Invalid("A package needs a recipient, a recipient_contact_id or a department_id")
    if contact_id is not None and body.get("recipient") is not None:
        raise Invalid("Give either recipient or recipient_contact_id, not both")
    out: dict[str, Any] = {}
    if contact_id is not None:
        contact = await get_row(ctx, contact_id)
        out.update(
            recipient_contact_id=contact_id,
            recipient=_recipient(contact),
            mailroom_flag=None if contact["active"] else FLAG_DEACTIVATED,
        )
    if department_id is not None:
        department = await departments.get_row(ctx, department_id)
        out["department_id"] = department_id
        if contact_id is None and body.get("recipient") is None:
            key = None
            if department["key_contact_id"] is not None:
                key = (
                    await ctx.scope.select(Contact).where(Contact.id == department["key_contact_id"]).first()
                )
            out["recipient"] = {
                "name": department["name"],
                "email": key["email"] if key else None,
                "phone": key["phone"] if key else None,
                "language": key["language"] if key else "en",
            }
    return out


def _recipient(contact: dict) -> dict[str, Any]:
    return {
        "name": contact["name"],
        "email": contact["email"],
        "phone": contact["phone"],
        "language": contact["language"],
    }


async def inactive_refusal(ctx: Ctx, package: dict, bank_id) -> Forbidden | None:
    """Pickup's check: a deactivated contact's code opens nothing (the refusal is recorded)."""
    contact = (
        await ctx.scope.select(Contact.active).where(Contact.id == package["recipient_contact_id"]).first()
    )
    if contact is None or contact["active"]:
        return None
    await custody.append(
        ctx,
        "pickup.refused",
        package_id=package["id"],
        bank_id=bank_id,
        data={"reason": FLAG_DEACTIVATED},
    )
    return Forbidden(
        "This package cannot be collected here because its recipient is no longer active. "
        "Please contact the mailroom."
    )
