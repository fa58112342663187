"""Scheduled SFTP imports (C3) and directory sync (C5), against a real SFTP server on loopback.

The server is asyncssh's, started by each test with its own host key and one
authorized client key (tests/support/sftp.py). Polls are triggered through the
API (``POST .../poll``) or :func:`schedule.run_due`, as the periodic loop does;
the loop itself is off in these tests so that nothing polls behind their back.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
from pigeonhole.domain import clock

from tests.flows import new_email
from tests.support.sftp import SftpServer, new_key, private_text, public_text
from tests.support.smtp import body_text
from tests.test_csv_import import HEADER, contacts_of


@pytest.fixture(autouse=True)
def _no_background_polls(monkeypatch):
    monkeypatch.setenv("PIGEONHOLE_IMPORT_POLL_SECONDS", "0")


@pytest.fixture
async def sftp_server(tmp_path):
    root = tmp_path / "sftp-root"
    (root / "exports").mkdir(parents=True)
    server = SftpServer(root)
    await server.start()
    yield server
    await server.stop()


def schedule_body(server: SftpServer, **overrides) -> dict:
    return {
        "name": "HR nightly",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "private_key": server.client_key_text,
        "host_key": server.host_key_text,
        "remote_path": "/exports/people.csv",
        "interval_minutes": 60,
        **overrides,
    }


def people(*numbers: int) -> str:
    return HEADER + "".join(f"Person {i},p{i}@example.test,,P-{i},,,,en\n" for i in numbers)


async def poll(admin, schedule: dict) -> dict:
    return await admin.ok("POST", f"/directory/import-schedules/{schedule['id']}/poll")


async def test_a_complete_file_is_imported_once(make_tenant, api, sftp_server):
    t = await make_tenant()
    admin = api(t, "admin")
    schedule = await admin.ok("POST", "/directory/import-schedules", schedule_body(sftp_server))
    assert schedule["source"] == f"sftp://hr-export@127.0.0.1:{sftp_server.port}/exports/people.csv"
    assert "private_key" not in schedule, "the key is never shown again"

    first = await poll(admin, schedule)
    assert first["status"] == "missing" and "No file" in first["message"]

    (sftp_server.root / "exports" / "people.csv").write_text(people(1, 2, 3))
    seen = await poll(admin, schedule)
    assert seen["status"] == "waiting", "a file seen once may still be growing"
    assert await contacts_of(admin) == {}
    imported = await poll(admin, schedule)
    assert imported["status"] == "imported", imported
    assert imported["message"] == "Imported: 3 created, 0 updated, 0 unchanged"
    assert set(await contacts_of(admin)) == {"Person 1", "Person 2", "Person 3"}
    assert (await poll(admin, schedule))["status"] == "unchanged"

    [run] = await admin.ok("GET", "/directory/imports")
    assert (run["source"], run["schedule_id"], run["created_by"]) == (
        "sftp",
        schedule["id"],
        "system:schedule HR nightly",
    )
    assert run["filename"] == schedule["source"]
    shown = await admin.ok("GET", f"/directory/import-schedules/{schedule['id']}")
    assert (shown["last_status"], shown["last_message"]) == (
        "unchanged",
        "The file has not changed since it was imported",
    )
    assert sftp_server.logins == 4


async def test_a_file_still_being_written_is_never_imported(make_tenant, api, sftp_server):
    t = await make_tenant()
    admin = api(t, "admin")
    schedule = await admin.ok("POST", "/directory/import-schedules", schedule_body(sftp_server))
    path = sftp_server.root / "exports" / "people.csv"
    full = people(*range(1, 201))
    cut = len(full) // 3
    path.write_text(full[:cut])  # the HR system has written a third, ending mid-line
    statuses = [(await poll(admin, schedule))["status"]]
    with path.open("a") as f:
        f.write(full[cut : 2 * cut])
    statuses.append((await poll(admin, schedule))["status"])
    with path.open("a") as f:
        f.write(full[2 * cut :])
    statuses.append((await poll(admin, schedule))["status"])
    assert statuses == ["waiting", "waiting", "waiting"]
    assert await contacts_of(admin) == {}
    assert await admin.ok("GET", "/directory/imports") == [], "nothing was even tried"
    assert (await poll(admin, schedule))["status"] == "imported"
    [run] = await admin.ok("GET", "/directory/imports")
    assert run["created"] == 200


async def test_failures_are_recorded_and_mailed_to_the_administrators(make_tenant, api, sftp_server, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    alert = new_email()
    (sftp_server.root / "exports" / "people.csv").write_text(people(1))
    wrong_host = await admin.ok(
        "POST", "/directory/import-schedules",
        schedule_body(sftp_server, name="impostor", host_key=public_text(new_key()), alert_emails=[alert]),
    )  # fmt: skip
    result = await poll(admin, wrong_host)
    assert result["status"] == "failed"
    assert "did not present the configured host key" in result["message"]
    [mail] = await smtp.wait_for(alert)
    assert mail["Subject"] == "Scheduled import 'impostor' failed"
    assert "did not present the configured host key" in body_text(mail)
    assert sftp_server.logins == 0, "no key was offered to a server with the wrong host key"

    wrong_key = await admin.ok(
        "POST", "/directory/import-schedules",
        schedule_body(sftp_server, name="old key", private_key=private_text(new_key()), alert_emails=[alert]),
    )  # fmt: skip
    result = await poll(admin, wrong_key)
    assert result["status"] == "failed" and "refused the key of user 'hr-export'" in result["message"]

    port = sftp_server.port
    await sftp_server.stop()
    down = await admin.ok(
        "POST",
        "/directory/import-schedules",
        schedule_body(sftp_server, name="down", port=port, alert_emails=[alert]),
    )
    result = await poll(admin, down)
    assert (
        result["status"] == "failed"
        and f"Cannot connect to the SFTP server 127.0.0.1:{port}" in result["message"]
    )
    await smtp.wait_for(alert, count=3)

    runs = await admin.ok("GET", "/directory/imports?status=failed")
    assert len(runs) == 3 and {r["source"] for r in runs} == {"sftp"}
    detail = await admin.ok("GET", f"/directory/imports/{result['import_id']}")
    assert detail["message"] == result["message"]
    assert await contacts_of(admin) == {}


async def test_a_refused_file_is_reported_once(make_tenant, api, sftp_server, smtp):
    from tests.support.accounts import add_user

    t = await make_tenant()
    admin = api(t, "admin")
    alert = new_email()
    boss = await add_user(admin, role="enterprise_admin")  # may import: told too
    clerk = await add_user(admin, role="locker_operator")  # may not: not told
    schedule = await admin.ok(
        "POST", "/directory/import-schedules", schedule_body(sftp_server, alert_emails=[alert])
    )
    path = sftp_server.root / "exports" / "people.csv"
    path.write_text(people(1, 2) + "Person 1 again,x@example.test,,P-1,,,,en\n")
    await poll(admin, schedule)
    refused = await poll(admin, schedule)
    assert refused["status"] == "refused"
    assert "Duplicate Personnel ID 'P-1' (lines 2 and 4)" in refused["message"]
    [mail] = await smtp.wait_for(alert)
    assert "Duplicate Personnel ID" in body_text(mail)
    subject = "Scheduled import 'HR nightly' failed"
    for _ in range(200):
        if any(m["Subject"] == subject for m in smtp.to(boss["email"])):
            break
        await asyncio.sleep(0.05)
    assert [m["Subject"] for m in smtp.to(boss["email"])].count(subject) == 1
    assert subject not in [m["Subject"] for m in smtp.to(clerk["email"])]
    assert (await poll(admin, schedule))["status"] == "unchanged", (
        "the same broken file is not reported again"
    )
    path.write_text(people(1, 2))  # fixed at the source
    await poll(admin, schedule)
    assert (await poll(admin, schedule))["status"] == "imported"
    assert set(await contacts_of(admin)) == {"Person 1", "Person 2"}


async def test_directory_sync_deactivates_leavers(make_tenant, api, sftp_server):
    t = await make_tenant()
    admin = api(t, "admin")
    schedule = await admin.ok(
        "POST", "/directory/import-schedules", schedule_body(sftp_server, deactivate_missing=True)
    )
    path = sftp_server.root / "exports" / "people.csv"
    path.write_text(people(1, 2, 3))
    await poll(admin, schedule)
    assert (await poll(admin, schedule))["status"] == "imported"
    path.write_text(people(1, 3, 4))  # 2 left, 4 joined: the same size, so
    later = path.stat().st_mtime + 3600  # written the next night, as a real export is
    os.utime(path, (later, later))
    await poll(admin, schedule)
    result = await poll(admin, schedule)
    assert result["message"] == "Imported: 1 created, 0 updated, 2 unchanged, 1 deactivated"
    active = {name: c["active"] for name, c in (await contacts_of(admin)).items()}
    assert active == {"Person 1": True, "Person 2": False, "Person 3": True, "Person 4": True}


async def test_the_periodic_loop_polls_due_schedules(make_tenant, api, sftp_server):
    from pigeonhole.domain.directory import schedule as schedules

    t = await make_tenant()
    admin = api(t, "admin")
    (sftp_server.root / "exports" / "people.csv").write_text(people(1))
    created = await admin.ok("POST", "/directory/import-schedules", schedule_body(sftp_server))
    paused = await admin.ok(
        "POST", "/directory/import-schedules", schedule_body(sftp_server, name="paused", enabled=False)
    )
    await schedules.run_due()
    shown = await admin.ok("GET", f"/directory/import-schedules/{created['id']}")
    assert shown["last_status"] == "waiting"
    clock.advance(timedelta(seconds=30))
    await schedules.run_due()
    assert (await admin.ok("GET", f"/directory/import-schedules/{created['id']}"))[
        "last_status"
    ] == "waiting", "not due yet: the next look comes after the settle time"
    clock.advance(timedelta(seconds=31))
    await schedules.run_due()
    shown = await admin.ok("GET", f"/directory/import-schedules/{created['id']}")
    assert shown["last_status"] == "imported"
    assert "Person 1" in await contacts_of(admin)
    clock.advance(timedelta(minutes=59))
    await schedules.run_due()
    assert (await admin.ok("GET", f"/directory/import-schedules/{created['id']}"))["last_run_at"] == shown[
        "last_run_at"
    ]
    clock.advance(timedelta(minutes=2))
    await schedules.run_due()
    again = await admin.ok("GET", f"/directory/import-schedules/{created['id']}")
    assert again["last_status"] == "unchanged" and again["last_run_at"] != shown["last_run_at"]
    assert (await admin.ok("GET", f"/directory/import-schedules/{paused['id']}"))["last_run_at"] is None


async def test_schedule_settings_are_checked_and_the_key_is_sealed(make_tenant, api, sftp_server):
    from pigeonhole.db.engine import tenant_tx
    from pigeonhole.db.tables import ImportSchedule
    from pigeonhole.domain.context import require_tenant

    t = await make_tenant()
    admin = api(t, "admin")
    for overrides, expected in (
        ({"private_key": "not a key"}, "private_key is not a private key"),
        ({"host_key": "ssh-ed25519 garbage"}, "host_key must be the server's public key"),
        ({"interval_minutes": 1}, "interval_minutes must be between 5 and 10080"),
        (
            {"kind": "locations", "deactivate_missing": True},
            "deactivate_missing is only for imports of contacts",
        ),
        ({"kind": "packages"}, "kind must be one of contacts, users, locations"),
        ({"alert_emails": ["it-at-example"]}, "alert_emails: 'it-at-example' is not an email address"),
        ({"port": 70000}, "port must be between 1 and 65535"),
    ):
        r = await admin.post("/directory/import-schedules", json=schedule_body(sftp_server, **overrides))
        assert r.status_code in (400, 422), (overrides, r.text)
        assert expected in r.json()["detail"], (overrides, r.text)
    assert await admin.ok("GET", "/directory/import-schedules") == []
    created = await admin.ok("POST", "/directory/import-schedules", schedule_body(sftp_server))
    dup = await admin.post("/directory/import-schedules", json=schedule_body(sftp_server))
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    info = await require_tenant(t.slug)
    async with tenant_tx(info.id, write=False) as scope:
        row = await scope.select(ImportSchedule).first()
    assert sftp_server.client_key_text not in row["private_key"]
    assert "PRIVATE KEY" not in row["private_key"]
    changed = await admin.ok(
        "PATCH", f"/directory/import-schedules/{created['id']}", {"interval_minutes": 1440, "enabled": False}
    )
    assert (changed["interval_minutes"], changed["enabled"]) == (1440, False)
    op = api(t, "operator")
    assert (await op.get("/directory/import-schedules")).status_code == 403
    await admin.ok("DELETE", f"/directory/import-schedules/{created['id']}", status=204)
    assert (await admin.get(f"/directory/import-schedules/{created['id']}")).status_code == 404


async def test_a_server_down_all_night_is_mailed_once(make_tenant, api, sftp_server, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    alert = new_email()
    port = sftp_server.port
    await sftp_server.stop()
    schedule = await admin.ok(
        "POST", "/directory/import-schedules", schedule_body(sftp_server, port=port, alert_emails=[alert])
    )
    for _ in range(3):
        assert (await poll(admin, schedule))["status"] == "failed"
    assert len(await admin.ok("GET", "/directory/imports?status=failed")) == 3, "every failed poll is in the history"
    await smtp.wait_for(alert)
    await sftp_server.start()  # back in the morning, on the same port
    (sftp_server.root / "exports" / "people.csv").write_text(people(1))
    assert (await poll(admin, schedule))["status"] == "waiting"
    assert (await poll(admin, schedule))["status"] == "imported"
    assert len(smtp.to(alert)) == 1, "one mail for the whole outage"
