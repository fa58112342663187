"""Declarative tenant manifests: ``tenants/<slug>/tenant.toml`` plus ``branding/``.

``apply`` makes the database match the manifest and reports each change; a
second apply of the same manifest changes nothing and says so. Everything
happens in one transaction and is validated as it goes (unknown plugin, bad
plugin configuration, unknown driver...): the first error rolls the whole
apply back, so a broken manifest changes nothing.

What a manifest does not mention is left alone (a compartment removed from
the manifest may still hold a package), except plugins: the manifest lists the
tenant's plugins completely, and a plugin it no longer lists is disabled.
"""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import ApiKey, Bank, Compartment, Division, Location, Tenant, TenantPlugin
from pigeonhole.domain import clock, hierarchy, lockers
from pigeonhole.domain.context import SYSTEM, Ctx, TenantInfo
from pigeonhole.domain.directory import manifest as directory_manifest
from pigeonhole.domain.errors import DomainError
from pigeonhole.runtime import config_secrets, registry, tenant_plugins
from pigeonhole.security.secrets import keyed_digest


class ManifestError(ValueError):
    pass


class CompartmentGroup(msgspec.Struct, forbid_unknown_fields=True):
    size: lockers.Size
    count: int = 1
    heights_cm: list[int] = msgspec.field(default_factory=lambda: [100])
    refrigerated: bool = False


class BankSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    driver: str
    loading: str = "front"
    driver_config: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    compartments: list[CompartmentGroup] = []


class LocationSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    address: str = ""
    region: str = ""
    timezone: str = "UTC"
    banks: list[BankSpec] = []
    custom: dict[str, Any] = {}  # custom field values (directory, #6)


class DivisionSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    locations: list[LocationSpec] = []


class ApiKeySpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str
    #: A fixed key, for demos and tests only; real keys come from `pigeonhole apikey create`.
    key: str
    bank: str | None = None


class Manifest(msgspec.Struct, forbid_unknown_fields=True):
    slug: str
    name: str
    plugins: dict[str, dict[str, Any]] = {}
    settings: dict[str, Any] = {}
    divisions: list[DivisionSpec] = []
    api_keys: list[ApiKeySpec] = []
    # directory (#6), optional
    custom_fields: list[directory_manifest.CustomFieldSpec] = []
    departments: list[directory_manifest.DepartmentSpec] = []
    contacts: list[directory_manifest.ContactSpec] = []


@dataclass
class Report:
    slug: str
    changes: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.changes.append(line)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def load(folder: Path) -> tuple[Manifest, dict[str, Any]]:
    path = folder / "tenant.toml"
    if not path.exists():
        raise ManifestError(f"{path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    try:
        manifest = msgspec.convert(raw, Manifest)
    except msgspec.ValidationError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    branding: dict[str, Any] = {}
    theme = folder / "branding" / "theme.toml"
    if theme.exists():
        branding = tomllib.loads(theme.read_text())
        branding["assets"] = str((folder / "branding").resolve())
    return manifest, branding


def _doors(groups: list[CompartmentGroup]) -> list[dict]:
    specs, door = [], 1
    for group in groups:
        for i in range(group.count):
            specs.append(
                dict(
                    door=door,
                    size=group.size,
                    door_height_cm=group.heights_cm[i % len(group.heights_cm)],
                    refrigerated=group.refrigerated,
                )
            )
            door += 1
    return specs


async def apply(folder: Path) -> Report:
    manifest, branding = load(folder)
    report = Report(manifest.slug)
    existing = await Tenant.select().where(Tenant.slug == manifest.slug).first()
    tenant_id = existing["id"] if existing else uuid.uuid4()
    try:
        async with tenant_tx(tenant_id) as scope:
            settings = {**manifest.settings, "branding": branding}
            encoded = msgspec.json.encode(settings).decode()
            if existing is None:
                await Tenant.insert(
                    Tenant(
                        id=tenant_id,
                        slug=manifest.slug,
                        name=manifest.name,
                        status="active",
                        settings=encoded,
                        plugins_version=0,
                        created_at=clock.now(),
                    )
                )
                report.add(f"+ tenant {manifest.slug} ({manifest.name})")
            else:
                if existing["name"] != manifest.name:
                    await Tenant.update({Tenant.name: manifest.name}).where(Tenant.id == tenant_id)
                    report.add(f"~ tenant name: {existing['name']} -> {manifest.name}")
                if msgspec.json.decode(existing["settings"]) != settings:
                    await Tenant.update({Tenant.settings: encoded}).where(Tenant.id == tenant_id)
                    report.add("~ tenant settings and branding")
            info = TenantInfo(
                id=tenant_id,
                slug=manifest.slug,
                name=manifest.name,
                status="active",
                plugins_version=-1,
                settings=settings,
            )
            plugins_changed = await _apply_plugins(scope, tenant_id, manifest, report)
            if plugins_changed:
                await Tenant.update({Tenant.plugins_version: Tenant.plugins_version + 1}).where(
                    Tenant.id == tenant_id
                )
            enabled = [tenant_plugins.EnabledPlugin(n, c) for n, c in manifest.plugins.items()]
            ctx = Ctx(
                scope=scope, tenant=info, plugins=tenant_plugins.build(tenant_id, -1, enabled), actor=SYSTEM
            )
            await directory_manifest.apply(
                ctx, manifest.custom_fields, manifest.departments, manifest.contacts, report
            )
            await _apply_hierarchy(ctx, manifest, report)
            await _apply_keys(ctx, manifest, report)
    except DomainError as exc:
        raise ManifestError(f"{folder}: {exc.message}") from None
    tenant_plugins.forget(tenant_id)
    return report


async def _apply_plugins(scope, tenant_id, manifest: Manifest, report: Report) -> bool:
    for name, config in manifest.plugins.items():
        try:
            # A manifest is the source of truth: it states its secrets, never the placeholder.
            config_secrets.keep_stored(name, config, None)
            registry.validate_config(name, config)
        except registry.UnknownPlugin as exc:
            raise ManifestError(str(exc)) from None
        except registry.ConfigError as exc:
            raise ManifestError(str(exc)) from None
        except config_secrets.PlaceholderWithoutSecret as exc:
            raise ManifestError(f"plugin {name}: {exc}") from None
    rows = {r["name"]: r for r in await scope.select(TenantPlugin)}
    changed = False
    for position, (name, config) in enumerate(manifest.plugins.items()):
        # Secret fields are stored sealed, as through the API (decision 0031); the
        # comparison is made in clear, since sealing twice never gives the same text.
        row = rows.pop(name, None)
        before = config_secrets.unsealed(msgspec.json.decode(row["config"])) if row is not None else None
        # Through JSON, as the row holds it (tuples become lists), so an unchanged one compares equal.
        plain = msgspec.json.decode(msgspec.json.encode(registry.validate_config(name, config)))
        stored = msgspec.json.encode(config_secrets.sealed(name, plain)).decode()
        if row is None:
            await scope.insert(
                TenantPlugin,
                dict(id=uuid.uuid4(), name=name, config=stored, position=position, updated_at=clock.now()),
            )
            report.add(f"+ plugin {name}")
            changed = True
        elif before != plain or row["position"] != position:
            await scope.update(
                TenantPlugin,
                {
                    TenantPlugin.config: stored,
                    TenantPlugin.position: position,
                    TenantPlugin.updated_at: clock.now(),
                },
            ).where(TenantPlugin.id == row["id"])
            report.add(f"~ plugin {name} configuration")
            changed = True
    for name, row in rows.items():
        await scope.delete(TenantPlugin).where(TenantPlugin.id == row["id"])
        report.add(f"- plugin {name} (no longer in the manifest)")
        changed = True
    return changed


async def _apply_hierarchy(ctx: Ctx, manifest: Manifest, report: Report) -> None:
    scope = ctx.scope
    for dspec in manifest.divisions:
        division = await scope.select(Division).where(Division.name == dspec.name).first()
        if division is None:
            division = await hierarchy.create_division(ctx, dspec.name)
            report.add(f"+ division {dspec.name}")
        for lspec in dspec.locations:
            location = (
                await scope.select(Location)
                .where((Location.division_id == division["id"]) & (Location.name == lspec.name))
                .first()
            )
            if location is None:
                location = await hierarchy.create_location(
                    ctx, division["id"], lspec.name, lspec.address, lspec.region, lspec.timezone, lspec.custom
                )
                report.add(f"+ location {dspec.name} / {lspec.name}")
            else:
                wanted = {"address": lspec.address, "region": lspec.region, "timezone": lspec.timezone}
                diff = {k: v for k, v in wanted.items() if location[k] != v}
                if lspec.custom:
                    [current] = await hierarchy.with_custom(ctx, [location])
                    if any(current["custom"].get(k) != v for k, v in lspec.custom.items()):
                        diff["custom"] = lspec.custom
                if diff:
                    await hierarchy.update_location(ctx, location["id"], **diff)
                    report.add(f"~ location {lspec.name}: {', '.join(sorted(diff))}")
            for bspec in lspec.banks:
                # A manifest has many banks: say which one is wrong. Bank settings of an
                # existing bank are converted here, so msgspec's error must be caught too.
                try:
                    await _apply_bank(ctx, location, bspec, report)
                except DomainError as exc:
                    raise ManifestError(f"bank '{bspec.name}' at {lspec.name}: {exc.message}") from None
                except msgspec.ValidationError as exc:
                    raise ManifestError(
                        f"bank '{bspec.name}' at {lspec.name}: invalid settings: {exc}"
                    ) from None


async def _apply_bank(ctx: Ctx, location: dict, spec: BankSpec, report: Report) -> None:
    scope = ctx.scope
    bank = (
        await scope.select(Bank)
        .where((Bank.location_id == location["id"]) & (Bank.name == spec.name))
        .first()
    )
    doors = _doors(spec.compartments)
    if bank is None:
        await lockers.create_bank(
            ctx,
            location_id=location["id"],
            name=spec.name,
            loading=spec.loading,
            driver=spec.driver,
            driver_config=spec.driver_config,
            settings=spec.settings,
            compartments_spec=doors,
        )
        report.add(f"+ bank {location['name']} / {spec.name} ({len(doors)} compartments)")
        return
    config = msgspec.json.encode(lockers.validate_driver(ctx, spec.driver, spec.driver_config)).decode()
    rules = msgspec.json.encode(msgspec.convert(spec.settings, lockers.BankSettings)).decode()
    changes = {}
    if bank["loading"] != spec.loading:
        changes["loading"] = spec.loading
    if bank["driver"] != spec.driver or bank["driver_config"] != config:
        changes["driver"] = spec.driver
        changes["driver_config"] = spec.driver_config
    if bank["settings"] != rules:
        changes["settings"] = spec.settings
    if changes:
        await lockers.update_bank(ctx, bank["id"], **changes)
        report.add(f"~ bank {spec.name}: {', '.join(sorted(changes))}")
    have = {c["door"]: c for c in await scope.select(Compartment).where(Compartment.bank_id == bank["id"])}
    new = [d for d in doors if d["door"] not in have]
    if new:
        await lockers.add_compartments(ctx, bank["id"], new)
        report.add(f"+ bank {spec.name}: {len(new)} compartment(s)")
    for d in doors:
        current = have.get(d["door"])
        if current is None:
            continue
        wanted = (d["size"], d["door_height_cm"], d["refrigerated"])
        if (current["size"], current["door_height_cm"], current["refrigerated"]) != wanted:
            if current["status"] not in ("available", "out_of_service"):
                report.add(f"! bank {spec.name}: door {d['door']} is {current['status']}; not resized")
                continue
            await scope.update(
                Compartment,
                {
                    Compartment.size: d["size"],
                    Compartment.size_rank: lockers.size_rank(d["size"]),
                    Compartment.door_height_cm: d["door_height_cm"],
                    Compartment.refrigerated: d["refrigerated"],
                },
            ).where(Compartment.id == current["id"])
            report.add(f"~ bank {spec.name}: door {d['door']}")
    extra = sorted(set(have) - {d["door"] for d in doors})
    if extra:
        report.add(f"! bank {spec.name}: doors {extra} are not in the manifest; left as they are")


async def _apply_keys(ctx: Ctx, manifest: Manifest, report: Report) -> None:
    scope = ctx.scope
    for spec in manifest.api_keys:
        bank_id = None
        if spec.bank is not None:
            bank = await scope.select(Bank.id).where(Bank.name == spec.bank).first()
            if bank is None:
                raise ManifestError(f"api key '{spec.name}': no bank named '{spec.bank}'")
            bank_id = bank["id"]
        if spec.role not in ("admin", "operator", "kiosk", "agent"):
            raise ManifestError(f"api key '{spec.name}': unknown role '{spec.role}'")
        digest = keyed_digest("api_key", spec.key)
        row = await scope.select(ApiKey).where(ApiKey.name == spec.name).first()
        if row is None:
            await scope.insert(
                ApiKey,
                dict(
                    id=uuid.uuid4(),
                    name=spec.name,
                    role=spec.role,
                    bank_id=bank_id,
                    prefix=spec.key[:10],
                    digest=digest,
                    created_at=clock.now(),
                ),
            )
            report.add(f"+ api key {spec.name} ({spec.role})")
        elif (row["role"], row["bank_id"], row["digest"]) != (spec.role, bank_id, digest):
            await scope.update(
                ApiKey,
                {
                    ApiKey.role: spec.role,
                    ApiKey.bank_id: bank_id,
                    ApiKey.digest: digest,
                    ApiKey.prefix: spec.key[:10],
                    ApiKey.revoked_at: None,
                },
            ).where(ApiKey.id == row["id"])
            report.add(f"~ api key {spec.name}")
