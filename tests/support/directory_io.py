"""Rows of the directory imports (#6) for walks that need one of each: an import run, a paused schedule."""

from __future__ import annotations

import uuid

import asyncssh

HEADER = "name,email,phone,personnel_id,employee_id,department,accessibility,language\n"


def paused_schedule() -> dict:
    """A valid schedule body pointing at a port where nothing listens, never polled by itself."""
    tag = uuid.uuid4().hex[:8]
    return {
        "name": f"Schedule {tag}",
        "host": "127.0.0.1",
        "port": 9,
        "username": "walker",
        "private_key": asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode(),
        "host_key": asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode(),
        "remote_path": "/walk.csv",
        "interval_minutes": 60,
        "enabled": False,
    }


async def directory_io_values(admin) -> dict[str, list]:
    """An applied contacts import and a paused SFTP schedule of the admin's tenant; their ids."""
    tag = uuid.uuid4().hex[:8]
    body = HEADER + f"Imported {tag},imported-{tag}@example.test,,P-{tag},,,,en\n"
    run = await admin.request(
        "POST", "/directory/imports/contacts", content=body.encode(), headers={"Content-Type": "text/csv"}
    )
    assert run.status_code == 201, run.text
    schedule = await admin.ok("POST", "/directory/import-schedules", paused_schedule())
    return {"import_id": [run.json()["import_id"]], "schedule_id": [schedule["id"]]}
