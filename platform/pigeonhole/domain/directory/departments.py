"""Departments: groups of contacts with an optional key contact.

A package may be addressed to a department; its notification then goes to the
key contact. Deleting a department is refused while packages wait for it.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from piccolo.query.functions.aggregate import Count

from pigeonhole.db.tables import Contact, Department, DepartmentMember, Package
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory.contacts import WAITING
from pigeonhole.domain.directory.keys import fold
from pigeonhole.domain.errors import Conflict, Invalid, NotFound


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A department needs a name")
    if len(name) > 200:
        raise Invalid("A department name has at most 200 characters")
    return name


async def _name_free(ctx: Ctx, name: str, except_id: UUID | None = None) -> None:
    query = ctx.scope.select(Department.name).where(Department.name_key == fold(name))
    if except_id is not None:
        query = query.where(Department.id != except_id)
    other = await query.first()
    if other is not None:
        raise Conflict(f"A department named '{other['name']}' already exists")


async def _contacts_exist(ctx: Ctx, contact_ids) -> list[UUID]:
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return []
    found = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found |= {r["id"] for r in await ctx.scope.select(Contact.id).where(Contact.id.is_in(chunk))}
    for contact_id in ids:
        if contact_id not in found:
            raise NotFound("Contact", contact_id)
    return ids


async def get_row(ctx: Ctx, department_id: UUID) -> dict:
    row = await ctx.scope.select(Department).where(Department.id == department_id).first()
    if row is None:
        raise NotFound("Department", department_id)
    return row


async def present(ctx: Ctx, row: dict, *, members: bool = True) -> dict:
    out = {k: row[k] for k in ("id", "name", "key_contact_id", "created_at", "updated_at")}
    out["key_contact"] = None
    if row["key_contact_id"] is not None:
        key = (
            await ctx.scope.select(Contact.id, Contact.name, Contact.email, Contact.active)
            .where(Contact.id == row["key_contact_id"])
            .first()
        )
        out["key_contact"] = key
    out["member_count"] = await ctx.scope.count(DepartmentMember).where(
        DepartmentMember.department_id == row["id"]
    )
    out["waiting_packages"] = await ctx.scope.count(Package).where(
        (Package.department_id == row["id"]) & Package.status.is_in(list(WAITING))
    )
    if members:
        out["members"] = await (
            ctx.scope.select(Contact.id, Contact.name, Contact.email, Contact.active)
            .where(
                Contact.id.is_in(
                    ctx.scope.select(DepartmentMember.contact_id).where(
                        DepartmentMember.department_id == row["id"]
                    )
                )
            )
            .order_by(Contact.name_key)
        )
    return out


async def list_departments(ctx: Ctx) -> list[dict]:
    """Every department with its counts: four queries however many departments there are."""
    rows = await ctx.scope.select(Department).order_by(Department.name_key)
    members = {
        r["department_id"]: r["count"]
        for r in await ctx.scope.select(DepartmentMember.department_id, Count()).group_by(
            DepartmentMember.department_id
        )
    }
    waiting = {
        r["department_id"]: r["count"]
        for r in await ctx.scope.select(Package.department_id, Count())
        .where(Package.department_id.is_not_null() & Package.status.is_in(list(WAITING)))
        .group_by(Package.department_id)
    }
    key_ids = list({r["key_contact_id"] for r in rows if r["key_contact_id"] is not None})
    keys = (
        {
            k["id"]: k
            for k in await ctx.scope.select(Contact.id, Contact.name, Contact.email, Contact.active).where(
                Contact.id.is_in(key_ids)
            )
        }
        if key_ids
        else {}
    )
    return [
        {
            **{k: r[k] for k in ("id", "name", "key_contact_id", "created_at", "updated_at")},
            "key_contact": keys.get(r["key_contact_id"]),
            "member_count": members.get(r["id"], 0),
            "waiting_packages": waiting.get(r["id"], 0),
        }
        for r in rows
    ]


async def get_department(ctx: Ctx, department_id: UUID) -> dict:
    return await present(ctx, await get_row(ctx, department_id))


async def create_department(
    ctx: Ctx, name: str, *, key_contact_id: UUID | None = None, member_ids: list[UUID] | None = None
) -> dict:
    name = _clean_name(name)
    await _name_free(ctx, name)
    if key_contact_id is not None:
        await _contacts_exist(ctx, [key_contact_id])
    members = await _contacts_exist(ctx, member_ids or [])
    now = clock.now()
    department_id = uuid.uuid4()
    await ctx.scope.insert(
        Department,
        dict(
            id=department_id,
            name=name,
            name_key=fold(name),
            key_contact_id=key_contact_id,
            created_at=now,
            updated_at=now,
        ),
    )
    await add_members(ctx, department_id, members)
    return await get_department(ctx, department_id)


UNSET = object()


async def update_department(ctx: Ctx, department_id: UUID, *, name=None, key_contact_id=UNSET) -> dict:
    """Rename, or change the key contact (``None`` removes it)."""
    await get_row(ctx, department_id)
    values: dict = {}
    if name is not None:
        name = _clean_name(name)
        await _name_free(ctx, name, except_id=department_id)
        values.update({Department.name: name, Department.name_key: fold(name)})
    if key_contact_id is not UNSET:
        if key_contact_id is not None:
            await _contacts_exist(ctx, [key_contact_id])
        values[Department.key_contact_id] = key_contact_id
    if values:
        values[Department.updated_at] = clock.now()
        await ctx.scope.update(Department, values).where(Department.id == department_id)
    return await get_department(ctx, department_id)


async def add_members(ctx: Ctx, department_id: UUID, contact_ids: list[UUID]) -> None:
    ids = await _contacts_exist(ctx, contact_ids)
    if not ids:
        return
    present_ids = {
        r["contact_id"]
        for r in await ctx.scope.select(DepartmentMember.contact_id).where(
            DepartmentMember.department_id == department_id
        )
    }
    now = clock.now()
    rows = [
        dict(id=uuid.uuid4(), department_id=department_id, contact_id=c, created_at=now)
        for c in ids
        if c not in present_ids
    ]
    for start in range(0, len(rows), 500):
        await ctx.scope.insert(DepartmentMember, *rows[start : start + 500])


async def set_members(ctx: Ctx, department_id: UUID, contact_ids: list[UUID]) -> dict:
    await get_row(ctx, department_id)
    ids = await _contacts_exist(ctx, contact_ids)
    await ctx.scope.delete(DepartmentMember).where(DepartmentMember.department_id == department_id)
    await add_members(ctx, department_id, ids)
    return await get_department(ctx, department_id)


async def change_members(ctx: Ctx, department_id: UUID, *, add=(), remove=()) -> dict:
    await get_row(ctx, department_id)
    await add_members(ctx, department_id, list(add))
    removing = await _contacts_exist(ctx, list(remove))
    if removing:
        await ctx.scope.delete(DepartmentMember).where(
            (DepartmentMember.department_id == department_id) & DepartmentMember.contact_id.is_in(removing)
        )
    return await get_department(ctx, department_id)


async def delete_department(ctx: Ctx, department_id: UUID) -> None:
    department = await get_row(ctx, department_id)
    waiting = await ctx.scope.count(Package).where(
        (Package.department_id == department_id) & Package.status.is_in(list(WAITING))
    )
    if waiting:
        raise Conflict(
            f"Department '{department['name']}' still has {waiting} package{'s' if waiting > 1 else ''} "
            "waiting; hand them over or redirect them first",
            waiting=waiting,
        )
    # Packages already handed over keep the department's name in their recipient fields.
    await ctx.scope.update(Package, {Package.department_id: None}).where(
        Package.department_id == department_id
    )
    # deposit (#5, D5): its dedicated compartments are no longer dedicated
    from pigeonhole.domain import lockers

    await lockers.clear_dedications(ctx, department_id=department_id)
    # storage (#5, G3): refused while a reservation of the department is active; history loses the link
    from pigeonhole.domain import reservations

    await reservations.release_owner(ctx, department_id=department_id)
    await ctx.scope.delete(Department).where(Department.id == department_id)
