"""Fresh tenants for each test, made from a manifest like the demo's.

Every test that needs a tenant gets a new one with a unique slug, so tests
share a database but never each other's data.
"""

from __future__ import annotations

import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pigeonhole.manifests.apply import apply

DEFAULT_BANKS = """
    [[divisions.locations.banks]]
    name = "Lobby"
    driver = "simulator"
    compartments = [
      { size = "s", count = 4, heights_cm = [30, 60, 100, 140] },
      { size = "m", count = 3, heights_cm = [50, 90, 130] },
      { size = "l", count = 1, heights_cm = [60] },
    ]

    [[divisions.locations.banks]]
    name = "Annex"
    driver = "simulator"
    compartments = [ { size = "s", count = 2 } ]
"""


@dataclass
class TestTenant:
    slug: str
    folder: Path
    keys: dict[str, str] = field(default_factory=dict)
    banks: dict[str, str] = field(default_factory=dict)


def manifest(slug: str, *, banks: str = DEFAULT_BANKS, plugins: str | None = None, extra: str = "") -> str:
    plugins = (
        plugins
        if plugins is not None
        else textwrap.dedent(
            """
        [plugins.workplace]
        hold_hours = 72
        [plugins.pin]
        [plugins.email]
        from_address = "Mailroom <mailroom@example.test>"
        [plugins.simulator]
        """
        )
    )
    return (
        f'slug = "{slug}"\nname = "Tenant {slug}"\n'
        + plugins
        + f"""
[[divisions]]
name = "Main"

  [[divisions.locations]]
  name = "Head Office"
  address = "1 Test Street, Testville"
  region = "WA"
  timezone = "America/Los_Angeles"
{textwrap.indent(textwrap.dedent(banks), "    ")}

[[api_keys]]
name = "admin"
role = "admin"
key = "ph_test_{slug}_admin"

[[api_keys]]
name = "operator"
role = "operator"
key = "ph_test_{slug}_operator"

[[api_keys]]
name = "kiosk-lobby"
role = "kiosk"
bank = "Lobby"
key = "ph_test_{slug}_kiosk"

[[api_keys]]
name = "kiosk-lobby-2"
role = "kiosk"
bank = "Lobby"
key = "ph_test_{slug}_kiosk2"
{extra}
"""
    )


def write(tmp: Path, slug: str, **kwargs) -> Path:
    folder = tmp / slug
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tenant.toml").write_text(manifest(slug, **kwargs))
    return folder


async def create(tmp: Path, prefix: str = "t", **kwargs) -> TestTenant:
    """Apply a fresh tenant (the engine must be connected)."""
    from pigeonhole.db.engine import tenant_tx
    from pigeonhole.db.tables import Bank
    from pigeonhole.domain.context import require_tenant

    slug = f"{prefix}{uuid.uuid4().hex[:8]}"
    folder = write(tmp, slug, **kwargs)
    await apply(folder)
    info = await require_tenant(slug)
    async with tenant_tx(info.id, write=False) as scope:
        banks = {r["name"]: str(r["id"]) for r in await scope.select(Bank)}
    keys = {role: f"ph_test_{slug}_{role}" for role in ("admin", "operator", "kiosk", "kiosk2")}
    return TestTenant(slug=slug, folder=folder, keys=keys, banks=banks)
