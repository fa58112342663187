"""The platform operator: a key made on the command line creates and suspends tenants,
and each request it makes inside a tenant lands in that tenant's audit log."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from tests.support import accounts


async def _cli(settings, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "PIGEONHOLE_DATABASE_URL": settings.database_url,
        "PIGEONHOLE_APP_DATABASE_URL": settings.app_database_url,
        "PIGEONHOLE_SECRET_KEY": settings.secret_key,
        "PIGEONHOLE_DATA_DIR": str(settings.data_dir),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pigeonhole",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def _platform_key(settings) -> str:
    code, out, err = await _cli(settings, "platform-key", "create", "--name", f"ops-{uuid.uuid4().hex[:6]}")
    assert code == 0, err
    key = out.strip().split()[-1]
    assert key.startswith("php_")
    return key


def _h(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def test_platform_key_creates_lists_and_suspends_tenants(client, settings, make_tenant, api):
    key = await _platform_key(settings)
    slug = f"acme{uuid.uuid4().hex[:6]}"

    created = await client.post(
        "/api/v1/platform/tenants", json={"slug": slug, "name": "Acme"}, headers=_h(key)
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    listed = await client.get("/api/v1/platform/tenants", headers=_h(key))
    assert slug in {t["slug"] for t in listed.json()}
    # The new tenant has its built-in roles, and the operator can act inside it.
    roles = await client.get(f"/api/v1/t/{slug}/roles", headers=_h(key))
    assert {"enterprise_admin", "recipient"} <= {r["name"] for r in roles.json()}
    first = await client.post(
        f"/api/v1/t/{slug}/users",
        json={"email": accounts.email("first"), "name": "First Admin", "role": "enterprise_admin"},
        headers=_h(key),
    )
    assert first.status_code == 201, first.text

    t = await make_tenant()
    admin = api(t, "admin")
    suspended = await client.patch(
        f"/api/v1/platform/tenants/{t.slug}", json={"status": "suspended"}, headers=_h(key)
    )
    assert suspended.json()["status"] == "suspended"
    # Its own staff learn why; strangers learn nothing; the kiosk stops too.
    refused = await admin.get("/banks")
    assert refused.status_code == 403
    assert refused.json()["detail"] == f"Tenant '{t.slug}' is suspended"
    assert (
        await api(t, "kiosk").post(f"/banks/{t.banks['Lobby']}/pickup", json={"code": "123456"})
    ).status_code == 403
    stranger = await client.get(f"/api/v1/t/{t.slug}/banks", headers=_h("ph_not_a_key"))
    assert stranger.status_code == 404
    # The operator still gets in (and is recorded).
    assert (await client.get(f"/api/v1/t/{t.slug}/banks", headers=_h(key))).status_code == 200

    resumed = await client.patch(
        f"/api/v1/platform/tenants/{t.slug}", json={"status": "active"}, headers=_h(key)
    )
    assert resumed.json()["status"] == "active"
    assert (await admin.get("/banks")).status_code == 200

    log = await admin.ok("GET", "/audit?actor_kind=platform")
    actions = [e["action"] for e in log]
    assert actions.count("tenant.suspended") == 1 and actions.count("tenant.resumed") == 1
    assert any(
        e["action"] == "platform.request" and e["target_id"] == f"GET /api/v1/t/{t.slug}/banks" for e in log
    )
    assert all(e["actor"].startswith("platform_operator:ops-") for e in log)


async def test_only_a_platform_key_reaches_platform_routes_and_bad_input_changes_nothing(
    client, settings, make_tenant, api
):
    t = await make_tenant()
    key = await _platform_key(settings)
    for headers, status in (
        ({}, 401),
        (_h(t.keys["admin"]), 401),
        (_h("php_made_up"), 401),
    ):
        response = await client.get("/api/v1/platform/tenants", headers=headers)
        assert response.status_code == status, (headers, response.text)
    user, me = await accounts.signed_in(client, api(t, "admin"), role="enterprise_admin")
    assert (await client.get("/api/v1/platform/tenants", headers=_h(me.key))).status_code == 401

    before = (await client.get("/api/v1/platform/tenants", headers=_h(key))).json()
    cases = [
        ({"slug": "Bad Slug!", "name": "X"}, 422, "slug"),
        ({"slug": t.slug, "name": "Again"}, 409, "already exists"),
        ({"slug": "ok-slug"}, 400, "name"),
        ({"slug": "ok-slug", "name": " "}, 422, "needs a name"),
    ]
    for body, status, words in cases:
        response = await client.post("/api/v1/platform/tenants", json=body, headers=_h(key))
        assert response.status_code == status, (body, response.text)
        assert words in response.text
    bad_status = await client.patch(
        f"/api/v1/platform/tenants/{t.slug}", json={"status": "gone"}, headers=_h(key)
    )
    assert bad_status.status_code == 400
    missing = await client.patch(
        "/api/v1/platform/tenants/nope-nope", json={"status": "suspended"}, headers=_h(key)
    )
    assert missing.status_code == 404
    assert (await client.get("/api/v1/platform/tenants", headers=_h(key))).json() == before

    # A revoked key stops working.
    code, out, _ = await _cli(settings, "platform-key", "list")
    assert code == 0 and "php_" in out and key not in out
    from pigeonhole.domain.identity import platform_ops

    [row] = [r for r in await platform_ops.list_keys() if key.startswith(r["prefix"])]
    code, _, err = await _cli(settings, "platform-key", "revoke", str(row["id"]))
    assert code == 0, err
    assert (await client.get("/api/v1/platform/tenants", headers=_h(key))).status_code == 401


async def test_platform_keys_are_stored_hashed(client, settings):
    from pigeonhole.db.tables import PlatformKey

    key = await _platform_key(settings)
    rows = await PlatformKey.select()
    assert rows and all(key not in str(r.values()) for r in rows)
    assert any(r["digest"] != key and key.startswith(r["prefix"]) for r in rows)
