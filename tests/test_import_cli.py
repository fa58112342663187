"""`pigeonhole import` and `pigeonhole export` as an operator runs them, in a real process.

The commands connect to the test's database the way a deployment's shell
would (PIGEONHOLE_DATABASE_URL); the results are read back through the API.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.test_csv_import import HEADER, contacts_of

PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))


async def pigeonhole(settings, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_")}
    env.update(
        PIGEONHOLE_DATABASE_URL=settings.database_url,
        PIGEONHOLE_DATA_DIR=str(settings.data_dir),
        PIGEONHOLE_SECRET_KEY=settings.secret_key,
        COLUMNS="100",
    )
    return await asyncio.to_thread(
        subprocess.run, [PIGEONHOLE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def people_csv(tmp_path: Path, rows: list[str], name: str = "people.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes((HEADER + "".join(r + "\n" for r in rows)).encode(encoding))
    return path


async def test_import_contacts_with_a_progress_bar(settings, make_tenant, api, tmp_path):
    t = await make_tenant()
    rows = [f"Person {i},p{i}@example.test,,P-{i},,,,en" for i in range(1, 1201)]
    path = people_csv(tmp_path, rows)
    done = await pigeonhole(settings, "import", "contacts", str(path), "--tenant", t.slug)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Imported: 1200 created, 0 updated, 0 unchanged" in done.stdout
    for stage in ("reading", "checking", "writing"):
        assert stage in done.stderr, "the progress bar shows each stage"
    assert "1200/1200" in done.stderr
    assert len(await contacts_of(api(t, "admin"))) == 500  # the API's page
    [run] = await api(t, "admin").ok("GET", "/directory/imports")
    assert (run["source"], run["filename"], run["created"]) == ("cli", "people.csv", 1200)


async def test_errors_exit_non_zero_with_the_report_and_import_nothing(settings, make_tenant, api, tmp_path):
    t = await make_tenant()
    path = people_csv(
        tmp_path,
        ["Ada,ada@example.test,,P-1,,,,en", "Bob,bob@,,P-2,,,,en", "Cy,cy@example.test,,P-1,,Nowhere,,en"],
    )
    done = await pigeonhole(settings, "import", "contacts", str(path), "--tenant", t.slug)
    assert done.returncode == 1
    assert "3 errors in the file; nothing was imported" in done.stdout
    assert "line 3: Bad email 'bob@'" in done.stdout
    assert "line 4: Duplicate Personnel ID 'P-1' (lines 2 and 4)" in done.stdout
    assert "line 4: Unknown department 'Nowhere'" in done.stdout
    assert await contacts_of(api(t, "admin")) == {}


async def test_dry_run_and_directory_sync(settings, make_tenant, api, tmp_path):
    t = await make_tenant()
    admin = api(t, "admin")
    everyone = people_csv(
        tmp_path, [f"Person {i},p{i}@example.test,,P-{i},,,,en" for i in (1, 2, 3)], "all.csv"
    )
    assert (
        await pigeonhole(settings, "import", "contacts", str(everyone), "--tenant", t.slug)
    ).returncode == 0
    stayers = people_csv(tmp_path, [f"Person {i},p{i}@example.test,,P-{i},,,,en" for i in (1, 2)], "stay.csv")
    args = ["import", "contacts", str(stayers), "--tenant", t.slug, "--deactivate-missing"]
    dry = await pigeonhole(settings, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run, nothing was changed: 0 created, 0 updated, 2 unchanged, 1 deactivated" in dry.stdout
    assert (await contacts_of(admin))["Person 3"]["active"] is True
    real = await pigeonhole(settings, *args)
    assert "1 deactivated" in real.stdout
    assert (await contacts_of(admin))["Person 3"]["active"] is False


async def test_latin1_file_and_export_to_stdout(settings, make_tenant, api, tmp_path):
    t = await make_tenant()
    path = people_csv(tmp_path, ["Zoé Müller,zoe@example.test,,P-1,,,,fr"], encoding="latin-1")
    assert (await pigeonhole(settings, "import", "contacts", str(path), "--tenant", t.slug)).returncode == 0
    exported = await pigeonhole(settings, "export", "contacts", "--tenant", t.slug)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines() == [
        HEADER.strip() + ",active",
        "Zoé Müller,zoe@example.test,,P-1,,,,fr,yes",
    ]
    api_copy = (await api(t, "admin").get("/directory/exports/contacts.csv")).content.decode("utf-8-sig")
    assert api_copy.replace("\r\n", "\n") == exported.stdout, "same rows (text mode reads CRLF as LF)"


async def test_import_locations_and_users(settings, make_tenant, api, tmp_path):
    t = await make_tenant()
    admin = api(t, "admin")
    locations = tmp_path / "locations.csv"
    locations.write_text(
        "division,name,address,region,timezone\nMain,Depot 9,9 Quay Road,OR,America/Los_Angeles\n"
    )
    done = await pigeonhole(settings, "import", "locations", str(locations), "--tenant", t.slug)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Depot 9" in {x["name"] for x in await admin.ok("GET", "/locations")}
    users = tmp_path / "users.csv"
    users.write_text("email,name,employee_id,role\nkim@example.test,Kim Lee,E-7,locker_operator\n")
    done = await pigeonhole(settings, "import", "users", str(users), "--tenant", t.slug)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kim@example.test" in {u["email"] for u in await admin.ok("GET", "/users")}
    exported = await pigeonhole(settings, "export", "divisions", "--tenant", t.slug)
    assert exported.stdout.splitlines() == ["name,locations", "Main,2"]


async def test_bad_invocations(settings, make_tenant, tmp_path):
    path = people_csv(tmp_path, ["Ada,ada@example.test,,P-1,,,,en"])
    unknown = await pigeonhole(settings, "import", "contacts", str(path), "--tenant", "no-such-tenant")
    assert unknown.returncode == 1 and "Tenant 'no-such-tenant' not found" in unknown.stderr
    missing = await pigeonhole(settings, "import", "contacts", str(tmp_path / "nope.csv"), "--tenant", "x")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    t = await make_tenant()
    sync = await pigeonhole(
        settings, "import", "locations", str(path), "--tenant", t.slug, "--deactivate-missing"
    )
    assert sync.returncode == 2 and "--deactivate-missing" in sync.stderr and "No such option" in sync.stderr
