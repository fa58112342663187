"""CSV exports: contacts, users, locations and divisions.

An export of something that can be imported has the columns of its import
template, so editing an export in a spreadsheet and importing it back changes
exactly what was edited. Cells a spreadsheet would run as formulas are quoted
(see :func:`csvfile.write_rows`); the importer removes that quote again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from pigeonhole.db.tables import Contact, Department, DepartmentMember, Division, Location
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import csvfile, custom_fields
from pigeonhole.domain.directory.imports import SPECS
from pigeonhole.domain.errors import NotFound

KINDS = ("contacts", "users", "locations", "divisions")


def _custom_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


async def export(ctx: Ctx, kind: str) -> Iterator[str]:
    """The CSV text of one export, in pieces (read everything first: the transaction ends after)."""
    if kind == "contacts":
        columns, rows = await _contacts(ctx)
    elif kind == "locations":
        columns, rows = await _locations(ctx)
    elif kind == "divisions":
        columns, rows = await _divisions(ctx)
    elif kind == "users":
        columns, rows = await _users(ctx)
    else:
        raise NotFound("Export", kind)
    return csvfile.write_rows(columns, rows)


async def _contacts(ctx: Ctx):
    spec = SPECS["contacts"]
    fields = list(await custom_fields.fields_by_key(ctx, "contacts"))
    contacts = (
        await ctx.scope.select(
            Contact.id,
            Contact.name,
            Contact.email,
            Contact.phone,
            Contact.personnel_id,
            Contact.employee_id,
            Contact.accessibility,
            Contact.language,
            Contact.active,
        )
        .order_by(Contact.name_key)
        .order_by(Contact.id)
    )
    names = {r["id"]: r["name"] for r in await ctx.scope.select(Department.id, Department.name)}
    departments: dict = defaultdict(list)
    for m in await ctx.scope.select(DepartmentMember.contact_id, DepartmentMember.department_id):
        departments[m["contact_id"]].append(names[m["department_id"]])
    custom = await _all_custom(ctx, "contacts", fields)
    rows = []
    for c in contacts:
        values = custom.get(c["id"], {})
        rows.append(
            [
                c["name"],
                c["email"],
                c["phone"],
                c["personnel_id"],
                c["employee_id"],
                "; ".join(sorted(departments.get(c["id"], []))),
                c["accessibility"],
                c["language"],
                "yes" if c["active"] else "no",
                *(_custom_cell(values.get(k)) for k in fields),
            ]
        )
    return [*spec.required, *spec.optional, *fields], rows


async def _all_custom(ctx: Ctx, screen: str, keys: list[str]) -> dict:
    """Every value of a screen's custom fields in one query (exports read them all)."""
    import json

    from pigeonhole.db.tables import CustomValue

    if not keys:
        return {}
    by_id = {f["id"]: f["key"] for f in await custom_fields.list_fields(ctx, screen)}
    out: dict = defaultdict(dict)
    for r in await ctx.scope.select(CustomValue.entity_id, CustomValue.field_id, CustomValue.value).where(
        CustomValue.screen == screen
    ):
        out[r["entity_id"]][by_id[r["field_id"]]] = json.loads(r["value"])
    return out


async def _locations(ctx: Ctx):
    spec = SPECS["locations"]
    fields = list(await custom_fields.fields_by_key(ctx, "locations"))
    divisions = {r["id"]: r["name"] for r in await ctx.scope.select(Division.id, Division.name)}
    custom = await _all_custom(ctx, "locations", fields)
    rows = []
    from pigeonhole.domain.identity import scopes

    allowed = await scopes.allowed_locations(ctx)  # None: the whole tenant
    for loc in await ctx.scope.select(Location).order_by(Location.name):
        if allowed is not None and loc["id"] not in allowed:
            continue
        values = custom.get(loc["id"], {})
        rows.append(
            [
                divisions[loc["division_id"]],
                loc["name"],
                loc["address"],
                loc["region"],
                loc["timezone"],
                *(_custom_cell(values.get(k)) for k in fields),
            ]
        )
    rows.sort(key=lambda r: (r[0].lower(), r[1].lower()))
    return [*spec.required, *fields], rows


async def _divisions(ctx: Ctx):
    counts: dict = defaultdict(int)
    for loc in await ctx.scope.select(Location.division_id):
        counts[loc["division_id"]] += 1
    from pigeonhole.domain.identity import scopes

    allowed = await scopes.allowed_divisions(ctx)  # None: the whole tenant
    rows = [
        [d["name"], counts[d["id"]]]
        for d in await ctx.scope.select(Division.id, Division.name).order_by(Division.name)
        if allowed is None or d["id"] in allowed
    ]
    return ["name", "locations"], rows


async def _users(ctx: Ctx):
    from pigeonhole.db.tables import AppUser, Role

    spec = SPECS["users"]
    fields = list(await custom_fields.fields_by_key(ctx, "users"))
    roles = {r["id"]: r["name"] for r in await ctx.scope.select(Role.id, Role.name)}
    custom = await _all_custom(ctx, "users", fields)
    rows = []
    from pigeonhole.domain.identity import users as accounts

    for u in await ctx.scope.select(AppUser).where(AppUser.status == "active").order_by(AppUser.email):
        if ctx.actor.scope is not None and not await accounts._visible(ctx, u):
            continue  # a scoped administrator exports the users it may see, as in the API
        values = custom.get(u["id"], {})
        rows.append(
            [
                u["email"],
                u["name"],
                u["employee_id"],
                roles.get(u["role_id"], ""),
                *(_custom_cell(values.get(k)) for k in fields),
            ]
        )
    return [*spec.required, *fields], rows
