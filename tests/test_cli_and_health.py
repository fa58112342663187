"""The command line and the health endpoint."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [
    ["serve"],
    ["worker"],
    ["agent"],
    ["migrate"],
    ["tenant", "apply"],
    ["tenant", "list"],
    ["demo"],
    ["apikey", "create"],
    ["import", "contacts"],
    ["import", "users"],
    ["import", "locations"],
    ["export"],
    ["user", "add"],
    ["user", "password-link"],
    ["user", "unlock"],
    ["platform-key", "create"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help(command):
    out = subprocess.run(
        [sys.executable, "-m", "pigeonhole", *command, "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "Usage: " in out.stdout and " ".join(command) in out.stdout


def test_plugins_add_their_commands():
    out = subprocess.run(
        [sys.executable, "-m", "pigeonhole", "--help"], capture_output=True, text=True, check=True
    )
    assert "simulator" in out.stdout


def test_migrate_a_fresh_sqlite_database(tmp_path):
    env = {
        "PIGEONHOLE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "PIGEONHOLE_DATA_DIR": str(tmp_path),
    }
    import os

    first = subprocess.run(
        [sys.executable, "-m", "pigeonhole", "migrate"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    assert "applied 0001_initial" in first.stdout
    second = subprocess.run(
        [sys.executable, "-m", "pigeonhole", "migrate"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    assert "0 migration(s) applied" in second.stdout


async def test_health_reports_database_and_broker(client):
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "broker": "ok (embedded)", "agent": "embedded"}


async def test_openapi_schema_is_served(client):
    r = await client.get("/api/v1/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/t/{tenant}/packages" in paths
    assert "/api/v1/t/{tenant}/banks/{bank_id}/pickup" in paths
