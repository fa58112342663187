"""Contacts: the people packages are for, whether or not they have a login.

A contact's Personnel ID is unique in the tenant (the database's unique key on
its folded form); a clash answers 409 naming the contact that holds it.
Deactivating a contact flags every package still waiting for them for the
mailroom, and pickup refuses their codes (see :mod:`pigeonhole.domain.pickup`).

:func:`upsert_many` is the bulk write the importer (E2) and directory sync call:
all rows are checked before anything is written, so an import is all or nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec

from pigeonhole.db.tables import Contact, Department, DepartmentMember, Package
from pigeonhole.domain import clock, custody
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import bulk, custom_fields
from pigeonhole.domain.directory.keys import family_first, fold, is_unique_violation
from pigeonhole.domain.errors import Conflict, Invalid, NotFound

SCREEN = "contacts"
WAITING = ("received", "depositing", "ready")
FLAG_DEACTIVATED = "recipient_deactivated"
LANGUAGES = ("en", "fr")
CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_.\-]{0,39}$")


class ContactIn(msgspec.Struct, kw_only=True):
    """One contact as the importer reads it. ``departments`` are names (created when missing)."""

    name: str
    email: str | None = None
    phone: str | None = None
    personnel_id: str | None = None
    employee_id: str | None = None
    departments: list[str] = []
    accessibility: str = ""
    language: str = "en"
    #: None: a new contact is active, an existing one keeps its state (a manifest
    #: never reactivates someone deactivated through the API).
    active: bool | None = None
    custom: dict[str, Any] = {}


@dataclass
class RowError:
    row: int  # index in the list given to upsert_many (0-based)
    message: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    departments_created: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


# --- field checks -------------------------------------------------------------------


def _text(value: str | None, what: str, limit: int, *, required: bool = False) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise Invalid(f"A contact needs a {what}")
        return None
    if len(value) > limit:
        raise Invalid(f"A contact's {what} has at most {limit} characters")
    return value


def check_email(email: str | None) -> str | None:
    email = _text(email, "email", 320)
    if email is None:
        return None
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or domain.startswith(".") or domain.endswith("."):
        raise Invalid(f"email: '{email}' is not an email address")
    return email


def clean(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Check the plain fields of a contact; returns column values (with search keys)."""
    out: dict[str, Any] = {}
    if not partial or "name" in data:
        name = _text(data.get("name"), "name", 200, required=True)
        out.update(name=name, name_key=fold(name), family_key=family_first(fold(name)))
    if not partial or "email" in data:
        email = check_email(data.get("email"))
        out.update(email=email, email_key=fold(email) or None)
    if not partial or "phone" in data:
        out["phone"] = _text(data.get("phone"), "phone", 40)
    if not partial or "personnel_id" in data:
        pid = _text(data.get("personnel_id"), "Personnel ID", 64)
        out.update(personnel_id=pid, personnel_key=fold(pid) or None)
    if not partial or "employee_id" in data:
        out["employee_id"] = _text(data.get("employee_id"), "employee ID", 64)
    if not partial or "accessibility" in data:
        out["accessibility"] = _text(data.get("accessibility"), "accessibility needs", 500) or ""
    if not partial or "language" in data:
        language = data.get("language") or "en"
        if language not in LANGUAGES:
            raise Invalid(f"language must be one of {', '.join(LANGUAGES)} (got '{language}')")
        out["language"] = language
    if "active" in data and data["active"] is not None:
        out["active"] = bool(data["active"])
    if "notify_channels" in data:  # only when given: imports never touch a person's choice
        out["notify_channels"] = _channels(data["notify_channels"])
    return out


def _channels(value: Any) -> str | None:
    """The channels a person chose (H1): None for every channel, else distinct channel names."""
    if value is None:
        return None
    names = list(value) if isinstance(value, (list, tuple)) else None
    if names is None or not all(isinstance(n, str) and CHANNEL_NAME.match(n) for n in names):
        raise Invalid(
            "notify_channels must be a list of channel names (like \"email\", \"sms\"), or null for every channel"
        )
    if not names:
        raise Invalid("notify_channels must name at least one channel (null: every channel that reaches them)")
    if len(set(names)) != len(names):
        raise Invalid("notify_channels names a channel twice")
    return msgspec.json.encode(names).decode()


def channels_of(row: dict) -> list[str] | None:
    raw = row.get("notify_channels")
    return msgspec.json.decode(raw) if raw else None


async def _personnel_free(ctx: Ctx, key: str | None, except_id: UUID | None = None) -> None:
    if not key:
        return
    query = ctx.scope.select(Contact.id, Contact.name, Contact.personnel_id).where(
        Contact.personnel_key == key
    )
    if except_id is not None:
        query = query.where(Contact.id != except_id)
    other = await query.first()
    if other is not None:
        raise Conflict(
            f"Personnel ID '{other['personnel_id']}' already belongs to {other['name']} "
            f"(contact {other['id']})",
            contact_id=str(other["id"]),
        )


async def _departments_exist(ctx: Ctx, department_ids: Iterable[UUID]) -> list[UUID]:
    ids = list(dict.fromkeys(department_ids))
    if not ids:
        return []
    found = {r["id"] for r in await ctx.scope.select(Department.id).where(Department.id.is_in(ids))}
    for department_id in ids:
        if department_id not in found:
            raise NotFound("Department", department_id)
    return ids


# --- reading ------------------------------------------------------------------------

COLUMNS = (
    "id",
    "name",
    "email",
    "phone",
    "personnel_id",
    "employee_id",
    "accessibility",
    "language",
    "active",
    "deactivated_at",
    "created_at",
    "updated_at",
)


async def present(ctx: Ctx, rows: list[dict]) -> list[dict]:
    """Rows as the API shows them: with departments and custom field values."""
    ids = [r["id"] for r in rows]
    departments: dict[UUID, list[dict]] = {i: [] for i in ids}
    if ids:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            members = await ctx.scope.select(
                DepartmentMember.contact_id, DepartmentMember.department_id
            ).where(DepartmentMember.contact_id.is_in(chunk))
            dept_ids = list({m["department_id"] for m in members})
            names = (
                {
                    d["id"]: d["name"]
                    for d in await ctx.scope.select(Department.id, Department.name).where(
                        Department.id.is_in(dept_ids)
                    )
                }
                if dept_ids
                else {}
            )
            for m in members:
                departments[m["contact_id"]].append(
                    {"id": m["department_id"], "name": names[m["department_id"]]}
                )
    custom = await custom_fields.load(ctx, SCREEN, ids)
    out = []
    for r in rows:
        row = {k: r[k] for k in COLUMNS}
        row["notify_channels"] = channels_of(r)
        row["departments"] = sorted(departments[r["id"]], key=lambda d: d["name"])
        row["custom"] = custom[r["id"]]
        out.append(row)
    return out


async def get_row(ctx: Ctx, contact_id: UUID) -> dict:
    row = await ctx.scope.select(Contact).where(Contact.id == contact_id).first()
    if row is None:
        raise NotFound("Contact", contact_id)
    return row


async def get_contact(ctx: Ctx, contact_id: UUID) -> dict:
    return (await present(ctx, [await get_row(ctx, contact_id)]))[0]


# --- writing one ----------------------------------------------------------------------


async def create_contact(ctx: Ctx, data: dict[str, Any]) -> dict:
    values = clean(data)
    await _personnel_free(ctx, values["personnel_key"])
    department_ids = await _departments_exist(ctx, data.get("department_ids") or [])
    custom = await custom_fields.validate(ctx, SCREEN, data.get("custom"))
    now = clock.now()
    contact_id = uuid.uuid4()
    active = values.pop("active", True)
    try:
        await ctx.scope.insert(
            Contact,
            dict(
                id=contact_id,
                **values,
                active=active,
                deactivated_at=None if active else now,
                created_at=now,
                updated_at=now,
            ),
        )
    except Exception as exc:
        if is_unique_violation(exc):  # a concurrent write took the Personnel ID after our check
            raise Conflict(
                f"Personnel ID '{values['personnel_id']}' was just given to another contact"
            ) from None
        raise
    await set_departments(ctx, contact_id, department_ids)
    await custom_fields.save(ctx, SCREEN, contact_id, custom)
    return await get_contact(ctx, contact_id)


async def set_departments(ctx: Ctx, contact_id: UUID, department_ids: list[UUID]) -> None:
    await ctx.scope.delete(DepartmentMember).where(DepartmentMember.contact_id == contact_id)
    now = clock.now()
    if department_ids:
        await ctx.scope.insert(
            DepartmentMember,
            *(
                dict(id=uuid.uuid4(), department_id=d, contact_id=contact_id, created_at=now)
                for d in department_ids
            ),
        )


async def update_contact(ctx: Ctx, contact_id: UUID, data: dict[str, Any]) -> dict:
    """Change the fields present in ``data``; ``active`` False deactivates (see :func:`set_active`)."""
    current = await get_row(ctx, contact_id)
    values = clean(data, partial=True)
    if "personnel_key" in values:
        await _personnel_free(ctx, values["personnel_key"], except_id=contact_id)
    department_ids = None
    if data.get("department_ids") is not None:
        department_ids = await _departments_exist(ctx, data["department_ids"])
    custom = None
    if set(data) - {"active"}:
        # Every edit checks the custom fields (a field made required later is filled
        # at the next edit); (de)activating alone does not, so a leaver can always go.
        existing = (await custom_fields.load(ctx, SCREEN, [contact_id]))[contact_id]
        custom = await custom_fields.validate(ctx, SCREEN, data.get("custom"), existing=existing)
    active = values.pop("active", None)
    if values:
        values["updated_at"] = clock.now()
        await ctx.scope.update(Contact, {getattr(Contact, k): v for k, v in values.items()}).where(
            Contact.id == contact_id
        )
    if department_ids is not None:
        await set_departments(ctx, contact_id, department_ids)
    if custom:
        await custom_fields.save(ctx, SCREEN, contact_id, custom)
    if active is not None and active != current["active"]:
        await set_active(ctx, contact_id, active)
    return await get_contact(ctx, contact_id)


async def set_active(ctx: Ctx, contact_id: UUID, active: bool) -> int:
    """(De)activate a contact; returns how many waiting packages were flagged or cleared.

    Deactivated: every package still waiting for them gets ``mailroom_flag`` so
    the mailroom can return or redirect it, with a custody event each.
    Reactivated: the flags this set are cleared.
    """
    current = await get_row(ctx, contact_id)
    if current["active"] == active:
        return 0
    now = clock.now()
    await ctx.scope.update(
        Contact,
        {Contact.active: active, Contact.deactivated_at: None if active else now, Contact.updated_at: now},
    ).where(Contact.id == contact_id)
    waiting = (Package.recipient_contact_id == contact_id) & Package.status.is_in(list(WAITING))
    if active:
        changed = (
            await ctx.scope.update(Package, {Package.mailroom_flag: None})
            .where(waiting & (Package.mailroom_flag == FLAG_DEACTIVATED))
            .returning(Package.id)
        )
        kind = "package.unflagged"
    else:
        changed = (
            await ctx.scope.update(Package, {Package.mailroom_flag: FLAG_DEACTIVATED})
            .where(waiting)
            .returning(Package.id)
        )
        kind = "package.flagged"
    for row in changed:
        await custody.append(
            ctx,
            kind,
            package_id=row["id"],
            data={"reason": FLAG_DEACTIVATED, "contact_id": str(contact_id)},
        )
    return len(changed)


async def delete_contact(ctx: Ctx, contact_id: UUID) -> None:
    """Refused while packages wait for the contact; earlier packages keep their recipient's name."""
    contact = await get_row(ctx, contact_id)
    waiting = await ctx.scope.count(Package).where(
        (Package.recipient_contact_id == contact_id) & Package.status.is_in(list(WAITING))
    )
    if waiting:
        raise Conflict(
            f"{contact['name']} still has {waiting} package{'s' if waiting > 1 else ''} waiting; "
            "hand them over or redirect them first (or deactivate the contact)",
            waiting=waiting,
        )
    await ctx.scope.update(Package, {Package.recipient_contact_id: None}).where(
        Package.recipient_contact_id == contact_id
    )
    await ctx.scope.update(Department, {Department.key_contact_id: None}).where(
        Department.key_contact_id == contact_id
    )
    # deposit (#5, D5): its dedicated compartments are no longer dedicated
    from pigeonhole.domain import lockers

    await lockers.clear_dedications(ctx, contact_id=contact_id)
    # storage (#5, G1-G3): refused while a reservation of theirs is active; history loses the link
    from pigeonhole.domain import reservations

    await reservations.release_owner(ctx, contact_id=contact_id)
    await custom_fields.delete_values(ctx, SCREEN, contact_id)
    await ctx.scope.delete(Contact).where(Contact.id == contact_id)


# --- bulk ---------------------------------------------------------------------------


async def upsert_many(
    ctx: Ctx,
    rows: list[ContactIn],
    *,
    deactivate_missing: bool = False,
    dry_run: bool = False,
    create_departments: bool = False,
) -> ImportResult:
    """Create or update contacts in bulk, all or nothing.

    A row matches an existing contact by Personnel ID, else by email. Every row
    is checked first; if any is wrong, ``result.errors`` lists each (row index
    and sentence) and nothing is written. ``deactivate_missing`` deactivates
    active contacts that no row matched (directory sync). ``dry_run`` checks
    and counts without writing. A department a row names must exist (a row
    error otherwise) unless ``create_departments``.
    Runs in ``ctx``'s transaction.
    """
    result = ImportResult()
    fields = await custom_fields.fields_by_key(ctx, SCREEN)
    existing = await ctx.scope.select(
        Contact.id,
        Contact.name,
        Contact.email,
        Contact.email_key,
        Contact.phone,
        Contact.personnel_id,
        Contact.personnel_key,
        Contact.employee_id,
        Contact.accessibility,
        Contact.language,
        Contact.active,
    )
    by_pid = {r["personnel_key"]: r for r in existing if r["personnel_key"]}
    by_email: dict[str, dict] = {}
    for r in existing:
        if r["email_key"] and not r["personnel_key"]:
            by_email.setdefault(r["email_key"], r)
    departments = {
        r["name_key"]: r for r in await ctx.scope.select(Department.id, Department.name, Department.name_key)
    }
    planned: list[tuple[dict | None, dict, dict, list[str], bool]] = []
    seen_pids: dict[str, int] = {}
    for index, row in enumerate(rows):
        try:
            values = clean(msgspec.structs.asdict(row))
            if values["personnel_key"]:
                if values["personnel_key"] in seen_pids:
                    raise Conflict(
                        f"Personnel ID '{values['personnel_id']}' appears twice "
                        f"(rows {seen_pids[values['personnel_key']] + 1} and {index + 1})"
                    )
                seen_pids[values["personnel_key"]] = index
            custom = await custom_fields.validate(ctx, SCREEN, row.custom, fields=fields)
            names = []
            for name in row.departments:
                name = (name or "").strip()
                if name:
                    if len(name) > 200:
                        raise Invalid("A department name has at most 200 characters")
                    if not create_departments and fold(name) not in departments:
                        raise Invalid(f"Unknown department '{name}'")
                    names.append(name)
        except (Invalid, Conflict) as exc:
            result.errors.append(RowError(index, exc.message))
            continue
        match = by_pid.get(values["personnel_key"]) if values["personnel_key"] else None
        if match is None and values["email_key"]:
            match = by_email.get(values["email_key"])
            if match is not None and values["personnel_key"] and match["personnel_key"]:
                match = None
        active = values.pop("active", None)
        planned.append((match, values, custom, names, active))
    if result.errors:
        return result
    matched_ids = {m["id"] for m, *_ in planned if m is not None}
    if len(matched_ids) != sum(1 for m, *_ in planned if m is not None):
        dup: dict[UUID, int] = {}
        for index, (m, *_) in enumerate(planned):
            if m is not None:
                if m["id"] in dup:
                    result.errors.append(
                        RowError(index, f"This row and row {dup[m['id']] + 1} both match contact {m['name']}")
                    )
                dup[m["id"]] = index
        return result
    missing_departments = []
    for *_, names, _active in planned:
        for name in names:
            if fold(name) not in departments and name not in missing_departments:
                missing_departments.append(name)
                departments[fold(name)] = {
                    "id": uuid.uuid4(),
                    "name": name,
                    "name_key": fold(name),
                    "new": True,
                }
    result.departments_created = missing_departments
    to_deactivate = []
    if deactivate_missing:
        to_deactivate = [r["id"] for r in existing if r["active"] and r["id"] not in matched_ids]
    now = clock.now()
    inserts, updates, custom_new, custom_old, memberships = [], [], {}, {}, {}
    reactivate, deactivate_rows = [], []
    for match, values, custom, names, active in planned:
        dept_ids = list(dict.fromkeys(departments[fold(n)]["id"] for n in names))
        if match is None:
            contact_id = uuid.uuid4()
            inserts.append(
                dict(
                    id=contact_id,
                    **values,
                    active=active is not False,
                    deactivated_at=now if active is False else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            custom_new[contact_id] = custom
            memberships[contact_id] = dept_ids
            result.created += 1
            continue
        contact_id = match["id"]
        if any(k in match and match[k] != v for k, v in values.items()):
            updates.append((contact_id, {**values}))
            result.updated += 1
        else:
            result.unchanged += 1
        if custom:
            custom_old[contact_id] = custom
        memberships[contact_id] = dept_ids
        if active is not None and active != match["active"]:
            (reactivate if active else deactivate_rows).append(contact_id)
    result.deactivated = len(to_deactivate) + len(deactivate_rows)
    if dry_run:
        return result
    new_departments = [d for d in departments.values() if d.get("new")]
    if new_departments:
        await ctx.scope.insert(
            Department,
            *(
                dict(id=d["id"], name=d["name"], name_key=d["name_key"], created_at=now, updated_at=now)
                for d in new_departments
            ),
        )
    await bulk.insert_rows(ctx, Contact, inserts)
    await bulk.update_rows(
        ctx, Contact, [{"id": cid, **values, "updated_at": now} for cid, values in updates]
    )
    if memberships:
        old = [cid for cid in memberships if cid not in custom_new]
        for start in range(0, len(old), 500):
            await ctx.scope.delete(DepartmentMember).where(
                DepartmentMember.contact_id.is_in(old[start : start + 500])
            )
        member_rows = [
            dict(id=uuid.uuid4(), department_id=d, contact_id=cid, created_at=now)
            for cid, dept_ids in memberships.items()
            for d in dept_ids
        ]
        await bulk.insert_rows(ctx, DepartmentMember, member_rows)
    await custom_fields.save_many(ctx, SCREEN, custom_new, fields=fields, fresh=True)
    await custom_fields.save_many(ctx, SCREEN, custom_old, fields=fields)
    for contact_id in reactivate:
        await set_active(ctx, contact_id, True)
    for contact_id in [*deactivate_rows, *to_deactivate]:
        await set_active(ctx, contact_id, False)
    return result
