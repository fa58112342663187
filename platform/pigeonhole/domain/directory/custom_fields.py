"""Custom fields (A5): up to ten per screen, typed, optionally required.

Definitions live in ``custom_field``; values for every screen live in
``custom_value`` keyed by (screen, entity id), so users (identity, #3),
contacts, packages and locations share one validator, one store and one
search index, and no other area's table needs a column for them. The limit of
ten is the database's too: a field takes one of the slots 1..10 of its screen
(``UNIQUE (tenant_id, screen, position)``), so two concurrent additions cannot
make an eleventh.

Other areas call :func:`validate` before writing and :func:`save` after
(same transaction), and :func:`load` to return the values.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date
from typing import Any
from uuid import UUID

from pigeonhole.db.engine import is_postgres
from pigeonhole.db.tables import CustomField, CustomValue
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import bulk
from pigeonhole.domain.directory.keys import fold, is_unique_violation, prefix_range
from pigeonhole.domain.errors import Conflict, Invalid, NotFound

SCREENS = ("users", "contacts", "packages", "locations")
TYPES = ("text", "number", "date", "choice", "yes_no")
MAX_PER_SCREEN = 10
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_TEXT = 500
YES = {"yes", "true", "1", "y", "oui"}
NO = {"no", "false", "0", "n", "non"}


def check_screen(screen: str) -> str:
    if screen not in SCREENS:
        raise Invalid(f"Unknown screen '{screen}' for custom fields (screens: {', '.join(SCREENS)})")
    return screen


def _field_out(row: dict) -> dict:
    return {**row, "choices": json.loads(row["choices"])}


async def list_fields(ctx: Ctx, screen: str | None = None) -> list[dict]:
    query = ctx.scope.select(CustomField).order_by(CustomField.screen).order_by(CustomField.position)
    if screen is not None:
        query = query.where(CustomField.screen == check_screen(screen))
    return [_field_out(r) for r in await query]


async def get_field(ctx: Ctx, field_id: UUID) -> dict:
    row = await ctx.scope.select(CustomField).where(CustomField.id == field_id).first()
    if row is None:
        raise NotFound("Custom field", field_id)
    return _field_out(row)


def _clean_choices(kind: str, choices: list[str] | None) -> list[str]:
    if kind != "choice":
        if choices:
            raise Invalid(f"choices are only for fields of type 'choice' (this one is '{kind}')")
        return []
    cleaned = [c.strip() for c in (choices or []) if c and c.strip()]
    if not cleaned:
        raise Invalid("A field of type 'choice' needs at least one choice")
    if len(cleaned) > 100:
        raise Invalid("A field of type 'choice' has at most 100 choices")
    if len({fold(c) for c in cleaned}) != len(cleaned):
        raise Invalid("The choices of a field must differ from each other")
    return cleaned


async def create_field(
    ctx: Ctx,
    screen: str,
    key: str,
    label: str,
    kind: str,
    *,
    choices: list[str] | None = None,
    required: bool = False,
) -> dict:
    check_screen(screen)
    if not KEY_PATTERN.match(key or ""):
        raise Invalid(
            f"Custom field key '{key}' must start with a lower-case letter and hold only a-z, 0-9 and _ "
            "(at most 40 characters)"
        )
    label = (label or "").strip()
    if not label or len(label) > 100:
        raise Invalid("A custom field needs a label of 1 to 100 characters")
    if kind not in TYPES:
        raise Invalid(f"Unknown custom field type '{kind}' (types: {', '.join(TYPES)})")
    cleaned = _clean_choices(kind, choices)
    if is_postgres():
        # One addition per screen at a time, so concurrent ones each find the slot left to
        # them (SQLite's write lock already serialises them); the unique slot stays the guarantee.
        await CustomField.raw(
            "SELECT pg_advisory_xact_lock(hashtext({}))", f"custom_field:{ctx.tenant_id}:{screen}"
        )
    existing = await ctx.scope.select(CustomField.key, CustomField.position).where(
        CustomField.screen == screen
    )
    if any(r["key"] == key for r in existing):
        raise Conflict(f"The {screen} screen already has a custom field '{key}'")
    taken = {r["position"] for r in existing}
    free = [p for p in range(1, MAX_PER_SCREEN + 1) if p not in taken]
    if not free:
        raise Conflict(
            f"The {screen} screen already has {MAX_PER_SCREEN} custom fields, the most it can have; "
            "delete one before adding another"
        )
    row = dict(
        id=uuid.uuid4(),
        screen=screen,
        key=key,
        label=label,
        type=kind,
        choices=json.dumps(cleaned),
        required=required,
        position=free[0],
        created_at=clock.now(),
    )
    try:
        await ctx.scope.insert(CustomField, row)
    except Exception as exc:
        if is_unique_violation(exc):  # a concurrent addition took the slot or the key
            raise Conflict(f"The {screen} screen changed meanwhile; try adding '{key}' again") from None
        raise
    return await get_field(ctx, row["id"])


async def update_field(
    ctx: Ctx, field_id: UUID, *, label: str | None = None, required: bool | None = None, choices=None
) -> dict:
    """Label, required flag and choices can change; key, screen and type cannot (values depend on them)."""
    field = await get_field(ctx, field_id)
    values: dict = {}
    if label is not None:
        label = label.strip()
        if not label or len(label) > 100:
            raise Invalid("A custom field needs a label of 1 to 100 characters")
        values[CustomField.label] = label
    if required is not None:
        values[CustomField.required] = required
    if choices is not None:
        cleaned = _clean_choices(field["type"], choices)
        in_use = await ctx.scope.select(CustomValue.value).where(CustomValue.field_id == field_id).distinct()
        keep = {fold(c) for c in cleaned}
        dropped = sorted({json.loads(r["value"]) for r in in_use if fold(json.loads(r["value"])) not in keep})
        if dropped:
            raise Conflict(
                f"Choice{'s' if len(dropped) > 1 else ''} {', '.join(repr(d) for d in dropped)} of custom "
                f"field '{field['key']}' still in use; change those values first"
            )
        values[CustomField.choices] = json.dumps(cleaned)
    if values:
        await ctx.scope.update(CustomField, values).where(CustomField.id == field_id)
    return await get_field(ctx, field_id)


async def delete_field(ctx: Ctx, field_id: UUID) -> None:
    """Deleting a field deletes its values (the foreign key cascades)."""
    await get_field(ctx, field_id)
    await ctx.scope.delete(CustomField).where(CustomField.id == field_id)


# --- values -------------------------------------------------------------------------


def _convert(field: dict, raw: Any) -> Any:
    """One value to its type, or Invalid naming the field."""
    name = f"Custom field '{field['label']}' ({field['key']})"
    kind = field["type"]
    if kind == "text":
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise Invalid(f"{name} takes text")
        text = str(raw).strip()
        if len(text) > MAX_TEXT:
            raise Invalid(f"{name} has at most {MAX_TEXT} characters")
        return text
    if kind == "number":
        if isinstance(raw, bool):
            raise Invalid(f"{name} takes a number (got {raw!r})")
        if isinstance(raw, int | float):
            return raw
        try:
            text = str(raw).strip().replace(",", ".")
            return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise Invalid(f"{name} takes a number (got {raw!r})") from None
    if kind == "date":
        try:
            return date.fromisoformat(str(raw).strip()).isoformat()
        except ValueError:
            raise Invalid(f"{name} takes a date as YYYY-MM-DD (got {raw!r})") from None
    if kind == "choice":
        for choice in field["choices"]:
            if fold(choice) == fold(str(raw)):
                return choice
        raise Invalid(f"{name} must be one of: {', '.join(field['choices'])} (got {raw!r})")
    # yes_no
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise Invalid(f"{name} takes yes or no (got {raw!r})")


def _empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


async def fields_by_key(ctx: Ctx, screen: str) -> dict[str, dict]:
    return {f["key"]: f for f in await list_fields(ctx, screen)}


async def validate(
    ctx: Ctx,
    screen: str,
    values: dict[str, Any] | None,
    *,
    existing: dict[str, Any] | None = None,
    fields: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """Check and convert custom field values for one row of ``screen``.

    ``values`` may be partial when ``existing`` (the row's current values) is
    given: required fields are then checked on the merged result. An empty
    value (None or blank) removes the value. Returns the converted values to
    pass to :func:`save` (None for removals). Raises Invalid naming the field.
    ``fields`` (from :func:`fields_by_key`) saves a query per row in bulk writes.
    """
    fields = fields if fields is not None else await fields_by_key(ctx, check_screen(screen))
    values = values or {}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        known = ", ".join(fields) or "none"
        raise Invalid(f"Unknown custom field '{unknown[0]}' on the {screen} screen (fields: {known})")
    out: dict[str, Any] = {}
    for key, raw in values.items():
        out[key] = None if _empty(raw) else _convert(fields[key], raw)
    merged = {**(existing or {}), **out}
    for key, field in fields.items():
        if field["required"] and merged.get(key) in (None, ""):
            raise Invalid(f"Custom field '{field['label']}' ({key}) is required")
    return out


def _value_key(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fold(str(value))


async def save(
    ctx: Ctx, screen: str, entity_id: UUID, values: dict[str, Any], *, fields: dict[str, dict] | None = None
) -> None:
    """Write values returned by :func:`validate` (None removes one)."""
    if not values:
        return
    await save_many(ctx, screen, {entity_id: values}, fields=fields, fresh=False)


async def save_many(
    ctx: Ctx,
    screen: str,
    values_by_entity: dict[UUID, dict[str, Any]],
    *,
    fields: dict[str, dict] | None = None,
    fresh: bool = False,
) -> None:
    """Bulk :func:`save`; ``fresh=True`` when the entities are new (nothing to replace)."""
    fields = fields if fields is not None else await fields_by_key(ctx, screen)
    if not fresh:
        # Replace the values of the fields each entity names; entities naming the same
        # fields (an import's rows) are cleared together, 500 at a time.
        groups: dict[frozenset[str], list[UUID]] = {}
        for entity_id, values in values_by_entity.items():
            if values:
                groups.setdefault(frozenset(values), []).append(entity_id)
        for keys, entity_ids in groups.items():
            field_ids = [fields[k]["id"] for k in keys]
            for start in range(0, len(entity_ids), 500):
                await ctx.scope.delete(CustomValue).where(
                    CustomValue.entity_id.is_in(entity_ids[start : start + 500])
                    & CustomValue.field_id.is_in(field_ids)
                )
    rows = []
    for entity_id, values in values_by_entity.items():
        if not values:
            continue
        for key, value in values.items():
            if value is None:
                continue
            rows.append(
                dict(
                    id=uuid.uuid4(),
                    field_id=fields[key]["id"],
                    screen=screen,
                    entity_id=entity_id,
                    value=json.dumps(value),
                    value_key=_value_key(value),
                )
            )
    await bulk.insert_rows(ctx, CustomValue, rows)


async def load(ctx: Ctx, screen: str, entity_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """The values of each entity, keyed by field key ({} for an entity without any)."""
    out: dict[UUID, dict[str, Any]] = {eid: {} for eid in entity_ids}
    if not entity_ids:
        return out
    fields = {f["id"]: f["key"] for f in await list_fields(ctx, screen)}
    if not fields:
        return out
    for start in range(0, len(entity_ids), 500):
        chunk = entity_ids[start : start + 500]
        rows = await ctx.scope.select(CustomValue.entity_id, CustomValue.field_id, CustomValue.value).where(
            (CustomValue.screen == screen) & CustomValue.entity_id.is_in(chunk)
        )
        for r in rows:
            out.setdefault(r["entity_id"], {})[fields[r["field_id"]]] = json.loads(r["value"])
    return out


async def delete_values(ctx: Ctx, screen: str, entity_id: UUID) -> None:
    """Remove an entity's values when the entity itself is deleted."""
    await ctx.scope.delete(CustomValue).where(
        (CustomValue.screen == screen) & (CustomValue.entity_id == entity_id)
    )


async def matching(ctx: Ctx, screen: str, filters: dict[str, str]) -> list:
    """One sub-select of entity ids per filter; an entity matches when it is in all of them.

    Text fields match by prefix, the other types by equality, on the folded
    key: index-backed through ``custom_value_search``. Raises Invalid for an
    unknown field or a value of the wrong type.
    """
    if not filters:
        return []
    fields = await fields_by_key(ctx, screen)
    subs = []
    for key, raw in filters.items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise Invalid(f"Unknown custom field '{key}' on the {screen} screen (fields: {known})")
        field = fields[key]
        wanted = _value_key(_convert(field, raw)) if field["type"] != "text" else fold(raw)
        if field["type"] == "text" and wanted:
            cond = prefix_range(CustomValue.value_key, wanted)
        else:
            cond = CustomValue.value_key == wanted
        subs.append(
            ctx.scope.select(CustomValue.entity_id).where((CustomValue.field_id == field["id"]) & cond)
        )
    return subs
