"""``pigeonhole tenant apply tenants/<slug>``: declarative tenants (A2).

Run as an operator runs it, through the command line in its own process. An
apply reports each change and a second apply reports none; a manifest that
cannot be applied names what is wrong and leaves the database exactly as it
was, which the tests check by comparing every table before and after.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest
from pigeonhole.db.migrate import sqlite_path
from pigeonhole.db.tables import ALL_TABLES

from tests.support import tenants

ROOT = Path(__file__).resolve().parents[1]
PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))
# The in-process fixtures' key: API key digests then agree with theirs.
SECRET = "test-secret-key-not-for-production"


@pytest.fixture(scope="module")
def cli(database, tmp_path_factory):
    """``cli("tenant", "apply", folder)`` -> the finished process, on the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_")}
    env.update(
        PIGEONHOLE_DATABASE_URL=database,
        PIGEONHOLE_SECRET_KEY=SECRET,
        PIGEONHOLE_DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PIGEONHOLE, *args], env=env, capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture(scope="module")
def existing(cli, tmp_path_factory) -> tuple[str, str]:
    """A tenant applied once from the default manifest: (slug, manifest text).

    Refused applies change nothing, so the tests that try to break it can share it.
    """
    slug = new_slug()
    folder = tenants.write(tmp_path_factory.mktemp("existing"), slug)
    applied(cli("tenant", "apply", str(folder)), slug)
    return slug, (folder / "tenant.toml").read_text()


def query(database: str, sql: str) -> list[tuple]:
    """Read the database as its owner, around the application and its row-level security."""
    if database.startswith("sqlite"):
        with closing(sqlite3.connect(sqlite_path(database))) as conn:
            return [tuple(row) for row in conn.execute(sql)]

    async def fetch() -> list[tuple]:
        conn = await asyncpg.connect(database)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def snapshot(database: str) -> dict[str, list[str]]:
    """Every row of every table."""
    return {
        t._meta.tablename: sorted(repr(r) for r in query(database, f"SELECT * FROM {t._meta.tablename}"))
        for t in ALL_TABLES
    }


def of_tenant(slug: str) -> str:
    return f"tenant_id = (SELECT id FROM tenant WHERE slug = '{slug}')"


def applied(done: subprocess.CompletedProcess, slug: str) -> list[str]:
    """The change lines of a successful apply."""
    assert done.returncode == 0, f"apply failed:\n{done.stdout}\n{done.stderr}"
    head, *rest = done.stdout.splitlines()
    assert head == f"tenant {slug}: {len(rest)} change(s)", done.stdout
    return [line.strip() for line in rest]


def no_changes(done: subprocess.CompletedProcess, slug: str) -> None:
    assert done.returncode == 0, f"apply failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip() == f"tenant {slug}: no changes"


def new_slug() -> str:
    return f"m{uuid.uuid4().hex[:8]}"


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "tenant.toml"
    text = path.read_text()
    assert old in text, f"{old!r} is not in the manifest"
    path.write_text(text.replace(old, new, 1))


def test_apply_creates_the_tenant_then_reports_no_changes(cli, database, tmp_path):
    slug = new_slug()
    folder = tenants.write(tmp_path, slug)
    assert applied(cli("tenant", "apply", str(folder)), slug) == [
        f"+ tenant {slug} (Tenant {slug})",
        "+ plugin workplace",
        "+ plugin pin",
        "+ plugin email",
        "+ plugin simulator",
        "+ division Main",
        "+ location Main / Head Office",
        "+ bank Head Office / Lobby (8 compartments)",
        "+ bank Head Office / Annex (2 compartments)",
        "+ api key admin (admin)",
        "+ api key operator (operator)",
        "+ api key kiosk-lobby (kiosk)",
        "+ api key kiosk-lobby-2 (kiosk)",
    ]
    before = snapshot(database)
    no_changes(cli("tenant", "apply", str(folder)), slug)
    assert snapshot(database) == before, "an apply that reports no changes makes none"
    listed = cli("tenant", "list")
    assert listed.returncode == 0 and slug in listed.stdout


def test_each_change_is_one_line_however_long(cli, tmp_path):
    """The report is read by scripts and logs too: no wrapping at the terminal's width."""
    slug = new_slug()
    folder = tenants.write(tmp_path, slug)
    long = "Head Office of the Very Long Named Holding Company of the Northern Territories"
    edit(folder, 'name = "Head Office"', f'name = "{long}"')
    changes = applied(cli("tenant", "apply", str(folder)), slug)
    assert f"+ location Main / {long}" in changes
    assert f"+ bank {long} / Lobby (8 compartments)" in changes


def test_an_edit_reports_exactly_what_it_changed(cli, database, tmp_path):
    slug = new_slug()
    folder = tenants.write(tmp_path, slug)
    applied(cli("tenant", "apply", str(folder)), slug)

    edit(folder, 'address = "1 Test Street, Testville"', 'address = "2 Harbour Road, Testville"')
    edit(folder, "hold_hours = 72", "hold_hours = 96")
    edit(
        folder,
        '{ size = "l", count = 1, heights_cm = [60] },',
        '{ size = "l", count = 1, heights_cm = [60] },\n      { size = "xl", count = 2, heights_cm = [150] },',
    )
    assert applied(cli("tenant", "apply", str(folder)), slug) == [
        "~ plugin workplace configuration",
        "~ location Head Office: address",
        "+ bank Lobby: 2 compartment(s)",
    ]
    no_changes(cli("tenant", "apply", str(folder)), slug)

    assert query(database, f"SELECT address FROM location WHERE {of_tenant(slug)}") == [
        ("2 Harbour Road, Testville",)
    ]
    [(config,)] = query(
        database, f"SELECT config FROM tenant_plugin WHERE {of_tenant(slug)} AND name = 'workplace'"
    )
    assert '"hold_hours":96' in config
    lobby = f"bank_id = (SELECT id FROM bank WHERE {of_tenant(slug)} AND name = 'Lobby')"
    doors = query(database, f"SELECT door, size, door_height_cm FROM compartment WHERE {lobby} ORDER BY door")
    assert [d[0] for d in doors] == list(range(1, 11))
    assert doors[-2:] == [(9, "xl", 150), (10, "xl", 150)]


def unknown_plugin(folder: Path) -> None:
    edit(folder, "[plugins.simulator]", "[plugins.simulator]\n[plugins.acme_teleport]\nspeed = 3")


def bad_plugin_config(folder: Path) -> None:
    edit(folder, "[plugins.pin]", '[plugins.pin]\nlength = "six"')


def unknown_config_field(folder: Path) -> None:
    edit(folder, "[plugins.pin]", "[plugins.pin]\nlenght = 8")


def driver_not_installed(folder: Path) -> None:
    edit(folder, 'name = "Annex"\n    driver = "simulator"', 'name = "Annex"\n    driver = "kerong"')


def driver_no_longer_enabled(folder: Path) -> None:
    edit(folder, "[plugins.simulator]\n", "")


def new_bank_with_driver_not_enabled(folder: Path) -> None:
    edit(
        folder,
        "[[api_keys]]",
        '[[divisions.locations.banks]]\nname = "Dock"\ndriver = "kerong"\n'
        'compartments = [ { size = "m", count = 2 } ]\n\n[[api_keys]]',
    )


def bad_bank_settings(folder: Path) -> None:
    edit(
        folder,
        'name = "Lobby"\n    driver = "simulator"',
        'name = "Lobby"\n    driver = "simulator"\n    settings = { kiosk_max_failure = 3 }',
    )


REFUSALS = [
    pytest.param(unknown_plugin, ["acme_teleport"], id="unknown-plugin"),
    pytest.param(bad_plugin_config, ["pin", "length"], id="bad-plugin-config"),
    pytest.param(unknown_config_field, ["pin", "lenght"], id="unknown-config-field"),
    pytest.param(driver_not_installed, ["Annex", "kerong"], id="driver-not-installed"),
    pytest.param(driver_no_longer_enabled, ["Lobby", "simulator"], id="driver-plugin-removed"),
    pytest.param(new_bank_with_driver_not_enabled, ["Dock", "kerong"], id="new-bank-driver-not-enabled"),
    pytest.param(bad_bank_settings, ["Lobby", "kiosk_max_failure"], id="bad-bank-settings"),
]


@pytest.mark.parametrize("breakage, named", REFUSALS)
def test_a_broken_manifest_changes_nothing(cli, existing, database, tmp_path, breakage, named):
    slug, text = existing
    folder = tmp_path / slug
    folder.mkdir()
    (folder / "tenant.toml").write_text(text)
    # Valid edits applied before the error is found must be rolled back with it.
    edit(folder, f'name = "Tenant {slug}"', f'name = "Renamed {slug}"')
    edit(folder, 'address = "1 Test Street, Testville"', 'address = "2 Harbour Road, Testville"')
    edit(folder, "hold_hours = 72", "hold_hours = 96")
    breakage(folder)
    before = snapshot(database)
    assert [r for r in before["tenant"] if f"'Tenant {slug}'" in r], "the tenant is there to be spoiled"

    done = cli("tenant", "apply", str(folder))

    assert done.returncode != 0, done.stdout
    assert "nothing applied" in done.stderr
    for word in named:
        assert word in done.stderr, f"{word!r} not named in: {done.stderr}"
    assert "Traceback" not in done.stderr
    assert snapshot(database) == before


@pytest.mark.parametrize("breakage, named", REFUSALS[:3])
def test_a_broken_manifest_creates_no_tenant(cli, database, tmp_path, breakage, named):
    slug = new_slug()
    folder = tenants.write(tmp_path, slug)
    breakage(folder)
    before = snapshot(database)

    done = cli("tenant", "apply", str(folder))

    assert done.returncode != 0, done.stdout
    assert all(word in done.stderr for word in named), done.stderr
    assert snapshot(database) == before
    assert query(database, f"SELECT id FROM tenant WHERE slug = '{slug}'") == []


def test_northwind_applies_cleanly(cli, database):
    assert cli("tenant", "apply", str(ROOT / "tenants" / "northwind")).returncode == 0
    no_changes(cli("tenant", "apply", str(ROOT / "tenants" / "northwind")), "northwind")
    scope = of_tenant("northwind")
    assert query(database, f"SELECT name FROM division WHERE {scope}") == [("Corporate",)]
    assert len(query(database, f"SELECT id FROM location WHERE {scope}")) == 2
    banks = query(
        database,
        f"SELECT b.name, c.size FROM bank b JOIN compartment c ON c.bank_id = b.id "
        f"WHERE b.{scope} ORDER BY b.name",
    )
    sizes: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for bank, size in banks:
        sizes.setdefault(bank, set()).add(size)
        counts[bank] = counts.get(bank, 0) + 1
    assert sorted(sizes) == ["Building 4 Mailroom", "HQ Lobby"]
    assert all(len(s) >= 3 for s in sizes.values()), f"each bank mixes sizes: {sizes}"
    assert sizes["HQ Lobby"] != sizes["Building 4 Mailroom"]
    assert counts == {"HQ Lobby": 18, "Building 4 Mailroom": 20}


def test_postal_applies_cleanly(cli, database):
    assert cli("tenant", "apply", str(ROOT / "tenants" / "postal")).returncode == 0
    no_changes(cli("tenant", "apply", str(ROOT / "tenants" / "postal")), "postal")
    scope = of_tenant("postal")
    locations = query(database, f"SELECT name, region, timezone FROM location WHERE {scope}")
    assert len(locations) >= 4
    assert len({region for _, region, _ in locations}) >= 4, "post offices in several states"
    assert len({tz for _, _, tz in locations}) >= 3, "across time zones"
    assert len(query(database, f"SELECT id FROM division WHERE {scope}")) == 2
    assert len(query(database, f"SELECT id FROM bank WHERE {scope}")) == len(locations)
