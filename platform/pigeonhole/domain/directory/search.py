"""Contact search: by name, email, Personnel ID, department and custom fields.

Each criterion is a range or equality on an indexed key column (see
:mod:`.keys`), so a search stays fast on 100,000 contacts on both databases
(``make bench-directory``). ``q`` matches the start of the full name, of the
family name ("lovelace" finds "Ada Lovelace"), of the email or of the
Personnel ID.
"""

from __future__ import annotations

from uuid import UUID

from piccolo.querystring import QueryString

from pigeonhole.db.engine import is_postgres
from pigeonhole.db.tables import Contact, Department, DepartmentMember
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import contacts, custom_fields
from pigeonhole.domain.directory.keys import fold, prefix_range
from pigeonhole.domain.errors import Invalid

MAX_LIMIT = 500


async def search_contacts(ctx: Ctx, *, limit: int = 50, offset: int = 0, **criteria) -> list[dict]:
    """Contacts matching every criterion (see :func:`contacts_query`), ordered by name."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT} (got {limit})")
    if offset < 0:
        raise Invalid(f"offset must be 0 or more (got {offset})")
    if is_postgres():
        # Prepared statements may get a generic plan that cannot see how narrow a
        # prefix is; a custom plan per search keeps the index choice right.
        await Contact.raw("SET LOCAL plan_cache_mode = force_custom_plan")
    query = ordered(await contacts_query(ctx, **criteria), criteria)
    rows = await query.limit(limit).offset(offset)
    return await contacts.present(ctx, rows)


def ordered(query, criteria: dict):
    """By name. With a prefix filter the order is an expression, not the column:
    otherwise PostgreSQL may walk the name index in order hoping to meet 50 matches
    early, reading most of it when the matches (family names, emails) lie elsewhere;
    sorting the few rows the prefix indexes find is cheaper."""
    if criteria.get("q") or criteria.get("name"):
        return query.order_by(QueryString('"contact"."name_key" || \'\'')).order_by(Contact.id)
    return query.order_by(Contact.name_key).order_by(Contact.id)


async def contacts_query(
    ctx: Ctx,
    *,
    q: str | None = None,
    name: str | None = None,
    email: str | None = None,
    personnel_id: str | None = None,
    department_id: UUID | None = None,
    department: str | None = None,
    active: bool | None = None,
    custom: dict[str, str] | None = None,
):
    """The select, not yet run (the benchmark checks its plan). ``department`` is a name."""
    query = ctx.scope.select(Contact)
    if department is not None and fold(department):
        found = await ctx.scope.select(Department.id).where(Department.name_key == fold(department)).first()
        if found is None:
            raise Invalid(f"Unknown department '{department}'")
        query = query.where(
            Contact.id.is_in(
                ctx.scope.select(DepartmentMember.contact_id).where(
                    DepartmentMember.department_id == found["id"]
                )
            )
        )
    if q is not None and fold(q):
        key = fold(q)
        query = query.where(
            prefix_range(Contact.name_key, key)
            | prefix_range(Contact.family_key, key)
            | prefix_range(Contact.email_key, key)
            | prefix_range(Contact.personnel_key, key)
        )
    if name is not None and fold(name):
        key = fold(name)
        query = query.where(prefix_range(Contact.name_key, key) | prefix_range(Contact.family_key, key))
    if email is not None and fold(email):
        query = query.where(prefix_range(Contact.email_key, fold(email)))
    if personnel_id is not None and fold(personnel_id):
        query = query.where(Contact.personnel_key == fold(personnel_id))
    if department_id is not None:
        query = query.where(
            Contact.id.is_in(
                ctx.scope.select(DepartmentMember.contact_id).where(
                    DepartmentMember.department_id == department_id
                )
            )
        )
    if active is not None:
        query = query.where(Contact.active == active)
    for sub in await custom_fields.matching(ctx, contacts.SCREEN, custom or {}):
        query = query.where(Contact.id.is_in(sub))
    return query
