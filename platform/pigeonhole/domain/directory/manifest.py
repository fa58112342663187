"""The directory part of a tenant manifest: custom fields, departments, contacts.

Optional sections of ``tenant.toml``; like the rest of a manifest, applying
the same one twice changes nothing, and what it does not mention is left alone.
Contacts are matched by Personnel ID (else email) through
:func:`contacts.upsert_many`, so a manifest never deactivates anyone.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from pigeonhole.db.tables import Contact, CustomField, Department
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import contacts, custom_fields, departments
from pigeonhole.domain.directory.keys import fold
from pigeonhole.domain.errors import Invalid


class CustomFieldSpec(msgspec.Struct, forbid_unknown_fields=True):
    screen: str
    key: str
    label: str
    type: str
    choices: list[str] = []
    required: bool = False


class DepartmentSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    #: Personnel ID of the key contact (a contact of this manifest or already in the directory).
    key_contact: str | None = None


class ContactSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    email: str | None = None
    phone: str | None = None
    personnel_id: str | None = None
    employee_id: str | None = None
    departments: list[str] = []
    accessibility: str = ""
    language: str = "en"
    custom: dict[str, Any] = {}


async def apply(
    ctx: Ctx,
    fields: list[CustomFieldSpec],
    department_specs: list[DepartmentSpec],
    contact_specs: list[ContactSpec],
    report,
) -> None:
    for spec in fields:
        row = (
            await ctx.scope.select(CustomField)
            .where((CustomField.screen == spec.screen) & (CustomField.key == spec.key))
            .first()
        )
        if row is None:
            await custom_fields.create_field(
                ctx,
                spec.screen,
                spec.key,
                spec.label,
                spec.type,
                choices=spec.choices,
                required=spec.required,
            )
            report.add(f"+ custom field {spec.screen}.{spec.key}")
            continue
        if row["type"] != spec.type:
            raise Invalid(
                f"custom field {spec.screen}.{spec.key} is a {row['type']} field; its type cannot change"
            )
        if (row["label"], row["required"], json.loads(row["choices"])) != (
            spec.label,
            spec.required,
            spec.choices,
        ):
            await custom_fields.update_field(
                ctx,
                row["id"],
                label=spec.label,
                required=spec.required,
                choices=spec.choices if spec.type == "choice" else None,
            )
            report.add(f"~ custom field {spec.screen}.{spec.key}")
    for spec in department_specs:
        exists = await ctx.scope.exists(Department).where(Department.name_key == fold(spec.name))
        if not exists:
            await departments.create_department(ctx, spec.name)
            report.add(f"+ department {spec.name}")
    if contact_specs:
        rows = [msgspec.convert(msgspec.structs.asdict(c), contacts.ContactIn) for c in contact_specs]
        result = await contacts.upsert_many(ctx, rows)
        if result.errors:
            first = result.errors[0]
            raise Invalid(f"contact '{contact_specs[first.row].name}': {first.message}")
        if result.created:
            report.add(f"+ {result.created} contact{'s' if result.created > 1 else ''}")
        if result.updated:
            report.add(f"~ {result.updated} contact{'s' if result.updated > 1 else ''}")
    for spec in department_specs:
        department = await ctx.scope.select(Department).where(Department.name_key == fold(spec.name)).first()
        key_id = None
        if spec.key_contact is not None:
            key = (
                await ctx.scope.select(Contact.id)
                .where(Contact.personnel_key == fold(spec.key_contact))
                .first()
            )
            if key is None:
                raise Invalid(f"department '{spec.name}': no contact with Personnel ID '{spec.key_contact}'")
            key_id = key["id"]
        if department["key_contact_id"] != key_id:
            await departments.update_department(ctx, department["id"], key_contact_id=key_id)
            report.add(f"~ department {spec.name}: key contact {spec.key_contact or 'none'}")
