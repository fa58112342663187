"""Locker banks and their compartments.

A bank sits at a location, is front- or rear-loading, and names the lock driver
(a plugin) that opens its doors, with a driver configuration validated against
that driver's ``Config``. Compartment sizes are ordered so that allocation can
pick the smallest one that fits.
"""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

import msgspec

from pigeonhole.db.tables import Bank, Compartment, Contact, Department, Package
from pigeonhole.domain import clock, custody, hierarchy
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import Conflict, Invalid, NotFound
from pigeonhole.edge.hub import get_hub

SIZES = ("xs", "s", "m", "l", "xl")
SIZE_RANK = {name: rank for rank, name in enumerate(SIZES)}
STATES = ("available", "reserved", "occupied", "expired", "out_of_service")
#: E10: the door heights (cm from the floor, inclusive) a recipient with accessibility needs can reach.
ACCESSIBLE_HEIGHT_CM = (35, 123)
Size = Literal["xs", "s", "m", "l", "xl"]


class BankSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Per-bank rules; the defaults suit a staffed mailroom."""

    #: Wrong codes in a row at one kiosk before that kiosk pauses code entry.
    kiosk_max_failures: int = 5
    kiosk_lockout_seconds: int = 300
    #: Wrong codes from every kiosk and app of the bank, within the window,
    #: before the bank stops taking codes: guessing cannot be spread out.
    bank_max_failures: int = 20
    bank_failure_window_seconds: int = 900
    bank_lockout_seconds: int = 900
    #: A door open longer than this raises a ``door.left_open`` alert (hardware #4).
    door_left_open_seconds: float = 120
    # --- access (#5): pickup sessions (domain/pickup.py) ---
    #: F2: a recipient's compartments open together ("all_at_once") or one after the other.
    open_mode: Literal["all_at_once", "one_at_a_time"] = "all_at_once"
    #: F3: a pickup also opens the department packages the person may collect (the key
    #: contact always; members when ``department_members_pick_up``).
    pickup_department_packages: bool = True
    department_members_pick_up: bool = True
    # --- deposit (#5) ---
    #: E4: a package joins a compartment its recipient already has there, when it
    #: fits; off where only the recipient may open a compartment.
    add_to_existing: bool = True
    #: E6: seconds after a deposit's door closed during which an operator may reopen it.
    reopen_window_seconds: int = 120
    #: E9: an oversized package (or one no compartment can hold) waits at the
    #: location's counter instead of being refused.
    oversized_to_counter: bool = True


def size_rank(size: str) -> int:
    try:
        return SIZE_RANK[size]
    except KeyError:
        raise Invalid(f"Unknown size '{size}' (sizes: {', '.join(SIZES)})") from None


def bank_settings(bank: dict) -> BankSettings:
    return msgspec.json.decode(bank["settings"], type=BankSettings)


def validate_driver(ctx: Ctx, driver: str, config: dict | None) -> msgspec.Struct:
    drivers = ctx.plugins.lock_drivers()
    if driver not in drivers:
        enabled = ", ".join(sorted(drivers)) or "none"
        raise Invalid(f"Lock driver '{driver}' is not enabled for this tenant (enabled drivers: {enabled})")
    try:
        return msgspec.convert(config or {}, drivers[driver].Config, strict=False)
    except msgspec.ValidationError as exc:
        raise Invalid(f"Invalid configuration for lock driver '{driver}': {exc}") from None


async def list_banks(ctx: Ctx, location_id: UUID | None = None) -> list[dict]:
    query = ctx.scope.select(Bank).order_by(Bank.name)
    if location_id is not None:
        query = query.where(Bank.location_id == location_id)
    return await query


async def get_bank(ctx: Ctx, bank_id: UUID) -> dict:
    row = await ctx.scope.select(Bank).where(Bank.id == bank_id).first()
    if row is None:
        raise NotFound("Locker bank", bank_id)
    return row


async def compartments(ctx: Ctx, bank_id: UUID, status: str | None = None) -> list[dict]:
    query = ctx.scope.select(Compartment).where(Compartment.bank_id == bank_id)
    if status is not None:
        if status not in STATES:
            raise Invalid(f"Unknown compartment state '{status}' (states: {', '.join(STATES)})")
        query = query.where(Compartment.status == status)
    return await query.order_by(Compartment.door)


async def get_compartment(ctx: Ctx, bank_id: UUID, compartment_id: UUID) -> dict:
    row = (
        await ctx.scope.select(Compartment)
        .where((Compartment.id == compartment_id) & (Compartment.bank_id == bank_id))
        .first()
    )
    if row is None:
        raise NotFound("Compartment", compartment_id)
    return row


def _compartment_rows(bank_id: UUID, specs: list[dict], taken: set[int]) -> list[dict]:
    rows = []
    now = clock.now()
    for spec in specs:
        door = spec["door"]
        if door < 1:
            raise Invalid(f"Door numbers start at 1 (got {door})")
        if door in taken:
            raise Conflict(f"Door {door} exists twice in this bank")
        taken.add(door)
        height = spec.get("door_height_cm", 100)
        if not 0 <= height <= 300:
            raise Invalid(f"Door {door}: door_height_cm must be between 0 and 300 (got {height})")
        rows.append(
            dict(
                id=uuid.uuid4(),
                bank_id=bank_id,
                door=door,
                size=spec["size"],
                size_rank=size_rank(spec["size"]),
                door_height_cm=height,
                refrigerated=bool(spec.get("refrigerated", False)),
                status="available",
                updated_at=now,
            )
        )
    return rows


async def create_bank(
    ctx: Ctx,
    *,
    location_id: UUID,
    name: str,
    loading: str = "front",
    driver: str,
    driver_config: dict | None = None,
    settings: dict | None = None,
    compartments_spec: list[dict] = (),
) -> dict:
    await hierarchy.get_location(ctx, location_id)
    name = (name or "").strip()
    if not name:
        raise Invalid("A locker bank needs a name")
    if loading not in ("front", "rear"):
        raise Invalid(f"loading must be 'front' or 'rear' (got '{loading}')")
    config = validate_driver(ctx, driver, driver_config)
    try:
        bank_rules = msgspec.convert(settings or {}, BankSettings)
    except msgspec.ValidationError as exc:
        raise Invalid(f"Invalid bank settings: {exc}") from None
    if await ctx.scope.exists(Bank).where((Bank.location_id == location_id) & (Bank.name == name)):
        raise Conflict(f"A locker bank named '{name}' already exists at this location")
    bank_id = uuid.uuid4()
    await ctx.scope.insert(
        Bank,
        dict(
            id=bank_id,
            location_id=location_id,
            name=name,
            loading=loading,
            driver=driver,
            driver_config=msgspec.json.encode(config).decode(),
            settings=msgspec.json.encode(bank_rules).decode(),
            created_at=clock.now(),
        ),
    )
    rows = _compartment_rows(bank_id, list(compartments_spec), set())
    if rows:
        await ctx.scope.insert(Compartment, *rows)
    await custody.append(ctx, "bank.created", bank_id=bank_id, data={"name": name})
    _reattach(ctx, bank_id)
    return await get_bank(ctx, bank_id)


async def update_bank(ctx: Ctx, bank_id: UUID, **changes) -> dict:
    bank = await get_bank(ctx, bank_id)
    values = {}
    if changes.get("name") is not None:
        name = changes["name"].strip()
        if not name:
            raise Invalid("A locker bank needs a name")
        values[Bank.name] = name
    if changes.get("loading") is not None:
        if changes["loading"] not in ("front", "rear"):
            raise Invalid(f"loading must be 'front' or 'rear' (got '{changes['loading']}')")
        values[Bank.loading] = changes["loading"]
    driver = changes.get("driver") or bank["driver"]
    if changes.get("driver") is not None or changes.get("driver_config") is not None:
        raw = changes.get("driver_config")
        if raw is None:
            raw = msgspec.json.decode(bank["driver_config"])
        config = validate_driver(ctx, driver, raw)
        values[Bank.driver] = driver
        values[Bank.driver_config] = msgspec.json.encode(config).decode()
    if changes.get("settings") is not None:
        merged = {**msgspec.to_builtins(bank_settings(bank)), **changes["settings"]}
        try:
            rules = msgspec.convert(merged, BankSettings)
        except msgspec.ValidationError as exc:
            raise Invalid(f"Invalid bank settings: {exc}") from None
        values[Bank.settings] = msgspec.json.encode(rules).decode()
    if values:
        await ctx.scope.update(Bank, values).where(Bank.id == bank_id)
        _reattach(ctx, bank_id)
    return await get_bank(ctx, bank_id)


async def delete_bank(ctx: Ctx, bank_id: UUID) -> None:
    bank = await get_bank(ctx, bank_id)
    held = await ctx.scope.count(Compartment).where(
        (Compartment.bank_id == bank_id) & (Compartment.package_id.is_not_null())
    )
    if held:
        raise Conflict(f"Locker bank '{bank['name']}' still holds {held} package(s)")
    if await ctx.scope.exists(Package).where(Package.bank_id == bank_id):
        raise Conflict(f"Locker bank '{bank['name']}' has package history; take it out of service instead")
    await ctx.scope.delete(Compartment).where(Compartment.bank_id == bank_id)
    await ctx.scope.delete(Bank).where(Bank.id == bank_id)


async def add_compartments(ctx: Ctx, bank_id: UUID, specs: list[dict]) -> list[dict]:
    await get_bank(ctx, bank_id)
    taken = {c["door"] for c in await compartments(ctx, bank_id)}
    rows = _compartment_rows(bank_id, specs, taken)
    if rows:
        await ctx.scope.insert(Compartment, *rows)
        _reattach(ctx, bank_id)
    return await compartments(ctx, bank_id)


async def set_in_service(
    ctx: Ctx, bank_id: UUID, compartment_id: UUID, in_service: bool, note: str = ""
) -> dict:
    """Take a compartment out of service (D3) or put it back.

    Only an empty compartment leaves service: a package inside would be
    stranded. Putting one back makes it available again.
    """
    comp = await get_compartment(ctx, bank_id, compartment_id)
    if in_service:
        if comp["status"] != "out_of_service":
            raise Conflict(f"Compartment {comp['door']} is already in service ({comp['status']})")
        new_status, kind = "available", "compartment.in_service"
    else:
        if comp["status"] == "out_of_service":
            raise Conflict(f"Compartment {comp['door']} is already out of service")
        if comp["status"] != "available":
            raise Conflict(
                f"Compartment {comp['door']} is {comp['status']}; empty it before taking it out of service"
            )
        new_status, kind = "out_of_service", "compartment.out_of_service"
    updated = (
        await ctx.scope.update(
            Compartment,
            {
                Compartment.status: new_status,
                Compartment.status_note: note,
                Compartment.updated_at: clock.now(),
            },
        )
        .where((Compartment.id == compartment_id) & (Compartment.status == comp["status"]))
        .returning(Compartment.id)
    )
    if not updated:
        raise Conflict(f"Compartment {comp['door']} changed meanwhile; try again")
    await custody.append(
        ctx, kind, bank_id=bank_id, compartment_id=compartment_id, data={"door": comp["door"], "note": note}
    )
    return await get_compartment(ctx, bank_id, compartment_id)


async def dedicate(
    ctx: Ctx, bank_id: UUID, compartment_id: UUID, contact_id: UUID | None, department_id: UUID | None
) -> dict:
    """Dedicate a compartment to one contact or one department (D5), or clear it (both None).

    A dedicated compartment takes only its owner's packages; the owner's
    packages go there first. A package already inside stays where it is.
    """
    comp = await get_compartment(ctx, bank_id, compartment_id)
    if contact_id is not None and department_id is not None:
        raise Invalid("Dedicate a compartment to one contact or one department, not both")
    owner = None
    if contact_id is not None:
        contact = await ctx.scope.select(Contact.name).where(Contact.id == contact_id).first()
        if contact is None:
            raise NotFound("Contact", contact_id)
        owner = f"contact {contact['name']}"
    if department_id is not None:
        department = await ctx.scope.select(Department.name).where(Department.id == department_id).first()
        if department is None:
            raise NotFound("Department", department_id)
        owner = f"department {department['name']}"
    await ctx.scope.update(
        Compartment,
        {
            Compartment.dedicated_contact_id: contact_id,
            Compartment.dedicated_department_id: department_id,
            Compartment.updated_at: clock.now(),
        },
    ).where(Compartment.id == compartment_id)
    await custody.append(
        ctx,
        "compartment.dedicated" if owner else "compartment.undedicated",
        bank_id=bank_id,
        compartment_id=compartment_id,
        data={
            "door": comp["door"],
            "contact_id": str(contact_id) if contact_id else None,
            "department_id": str(department_id) if department_id else None,
            "owner": owner,
        },
    )
    return await get_compartment(ctx, bank_id, compartment_id)


async def clear_dedications(
    ctx: Ctx, *, contact_id: UUID | None = None, department_id: UUID | None = None
) -> None:
    """A contact or department is deleted: its compartments are no longer dedicated (D5)."""
    column = Compartment.dedicated_contact_id if contact_id else Compartment.dedicated_department_id
    owner_id = contact_id or department_id
    rows = await ctx.scope.select(Compartment.id, Compartment.bank_id, Compartment.door).where(
        column == owner_id
    )
    for row in rows:
        await ctx.scope.update(
            Compartment,
            {
                Compartment.dedicated_contact_id: None,
                Compartment.dedicated_department_id: None,
                Compartment.updated_at: clock.now(),
            },
        ).where(Compartment.id == row["id"])
        await custody.append(
            ctx,
            "compartment.undedicated",
            bank_id=row["bank_id"],
            compartment_id=row["id"],
            data={"door": row["door"], "reason": "owner deleted", "owner_id": str(owner_id)},
        )


def _reattach(ctx: Ctx, bank_id: UUID) -> None:
    """After commit, hand the bank's new shape to the agent that serves it."""
    tenant_id = ctx.tenant_id
    ctx.scope.on_commit(lambda: get_hub().refresh_tenant(tenant_id, bank_id))


def summarize(rows: list[dict]) -> dict[str, int]:
    counts = {state: 0 for state in STATES}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts
