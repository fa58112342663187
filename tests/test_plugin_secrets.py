"""Secrets in plugin configuration (decision 0031): sealed at rest, never shown back, still used.

The SMS gateway and the partner's endpoint are loopback HTTP servers: what they
receive proves the plugins still hold the secrets in clear; the raw answers of
the API and the raw ``tenant_plugin`` rows (read with the database's own client,
not through the API) prove nobody else sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3

import asyncpg
import pytest
from pigeonhole.api import SECRET_PLACEHOLDER
from pigeonhole.db.migrate import sqlite_path
from pigeonhole.domain.context import require_tenant
from pigeonhole.runtime import config_secrets
from pigeonhole.runtime import tenant_plugins as runtime

from tests.flows import close_door
from tests.support import channels
from tests.support.http_sink import HttpSink
from tests.support.partner import SECRET as PARTNER_SECRET
from tests.support.partner import enable_webhook

NEW_SMS_SECRET = "Bearer rotated-sms-secret-9876"
NEW_PARTNER_SECRET = "whsec_rotated_fedcba9876543210"


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("PIGEONHOLE_RETRY_MIN_BACKOFF_MS", "300")
    monkeypatch.setenv("PIGEONHOLE_RETRY_MAX_BACKOFF_MS", "1000")


@pytest.fixture
def sms_gateway():
    sink = HttpSink().start()
    yield sink
    sink.stop()


async def stored_rows(settings, backend, slug: str) -> dict[str, str]:
    """``tenant_plugin.config`` as the database holds it, read past the application."""
    tenant_id = (await require_tenant(slug)).id
    if backend == "postgres":
        conn = await asyncpg.connect(settings.database_url)
        try:
            rows = await conn.fetch("SELECT name, config FROM tenant_plugin WHERE tenant_id = $1", tenant_id)
        finally:
            await conn.close()
        return {r["name"]: r["config"] for r in rows}
    conn = sqlite3.connect(sqlite_path(settings.database_url), timeout=30)
    try:
        rows = conn.execute(
            "SELECT name, config FROM tenant_plugin WHERE tenant_id IN (?, ?)",
            (str(tenant_id), tenant_id.hex),
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def signed_with(secret: str, request) -> bool:
    fields = dict(part.split("=", 1) for part in request.header("Pigeonhole-Signature").split(","))
    mac = hmac.new(secret.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, fields["v1"])


async def deposit_ready(op, admin, bank: str) -> dict:
    package = await channels.deposit(op, bank, email=None, phone="(206) 555-0123")
    await close_door(admin, bank, package["door"]["door"])
    return package


def entry(listing: list[dict], name: str) -> dict:
    return next(p for p in listing if p["name"] == name)


async def test_secrets_are_sealed_masked_kept_and_replaced(
    make_tenant, api, smtp, sms_gateway, http_sink, settings, backend
):
    # The SMS gateway comes from the manifest (pigeonhole tenant apply), the webhook through the API.
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, None))
    admin, op, lobby = api(t, "admin"), api(t, "operator"), t.banks["Lobby"]
    await enable_webhook(admin, http_sink.url + "/hook", events=["package.received"], name="partner")

    # Nobody reads a secret back: not the list, not the answer to a PUT.
    response = await admin.get("/plugins")
    assert response.status_code == 200
    assert channels.SMS_SECRET not in response.text and "sms-secret" not in response.text
    assert PARTNER_SECRET not in response.text
    listing = response.json()
    sms, webhook = entry(listing, "sms"), entry(listing, "webhook")
    assert sms["config"]["auth_value"] == SECRET_PLACEHOLDER, "present, so the console knows one is set"
    assert webhook["config"]["endpoints"][0]["secret"] == SECRET_PLACEHOLDER
    assert webhook["config"]["endpoints"][0]["url"] == http_sink.url + "/hook", "not a secret: shown"
    # The schema tells the console to draw a password field.
    assert config_secrets.secret_paths(sms["config_schema"]) == [("auth_value",)]
    assert config_secrets.secret_paths(webhook["config_schema"]) == [("endpoints", "*", "secret")]
    assert '"writeOnly":true' in json.dumps(sms["config_schema"], separators=(",", ":"))

    # At rest: sealed, in both rows.
    rows = await stored_rows(settings, backend, t.slug)
    assert channels.SMS_SECRET not in rows["sms"] and "sms-secret" not in rows["sms"]
    assert PARTNER_SECRET not in rows["webhook"]
    assert config_secrets.SEALED in rows["sms"] and config_secrets.SEALED in rows["webhook"]

    # Rebuilt from the rows (another process, a restart): the plugins get the secrets in clear.
    runtime.forget()
    await deposit_ready(op, admin, lobby)
    [sms_call] = await channels.wait_requests(sms_gateway, 1, "/v1/messages")
    assert sms_call.header("Authorization") == channels.SMS_SECRET
    [hook] = await channels.wait_requests(http_sink, 1, "/hook")
    assert signed_with(PARTNER_SECRET, hook)

    # The placeholder sent back keeps the stored secret while another field changes.
    changed = {**sms["config"], "sender": "Mailroom"}
    answer = await admin.put("/plugins/sms", {"config": changed})
    assert answer.status_code == 200, answer.text
    assert "sms-secret" not in answer.text and answer.json()["config"]["auth_value"] == SECRET_PLACEHOLDER
    assert answer.json()["config"]["sender"] == "Mailroom"
    endpoints = [{**webhook["config"]["endpoints"][0], "events": ["package.*"]}]
    answer = await admin.put("/plugins/webhook", {"config": {**webhook["config"], "endpoints": endpoints}})
    assert answer.status_code == 200, answer.text
    assert PARTNER_SECRET not in answer.text
    runtime.forget()
    await deposit_ready(op, admin, lobby)
    calls = await channels.wait_requests(sms_gateway, 2, "/v1/messages")
    assert calls[1].header("Authorization") == channels.SMS_SECRET
    assert calls[1].json()["from"] == "Mailroom"
    hooks = await channels.wait_requests(http_sink, 4, "/hook")  # received, assigned, deposited now
    assert all(signed_with(PARTNER_SECRET, h) for h in hooks)

    # A new value replaces the secret.
    await admin.ok("PUT", "/plugins/sms", {"config": {**changed, "auth_value": NEW_SMS_SECRET}})
    endpoints = [{**endpoints[0], "secret": NEW_PARTNER_SECRET, "events": ["package.received"]}]
    await admin.ok("PUT", "/plugins/webhook", {"config": {"endpoints": endpoints}})
    rows = await stored_rows(settings, backend, t.slug)
    assert "rotated" not in rows["sms"] and NEW_PARTNER_SECRET not in rows["webhook"]
    runtime.forget()
    await deposit_ready(op, admin, lobby)
    calls = await channels.wait_requests(sms_gateway, 3, "/v1/messages")
    assert calls[2].header("Authorization") == NEW_SMS_SECRET
    hooks = await channels.wait_requests(http_sink, 5, "/hook")
    assert signed_with(NEW_PARTNER_SECRET, hooks[4]) and not signed_with(PARTNER_SECRET, hooks[4])
    listing = await admin.get("/plugins")
    assert "rotated" not in listing.text


async def test_the_placeholder_never_stands_for_a_secret_that_is_not_there(make_tenant, api, http_sink):
    t = await make_tenant()
    admin = api(t, "admin")
    placeholder_endpoint = {"url": http_sink.url + "/a", "secret": SECRET_PLACEHOLDER}
    # Nothing stored: the placeholder is refused, naming the field, and nothing is enabled.
    response = await admin.put("/plugins/webhook", {"config": {"endpoints": [placeholder_endpoint]}})
    assert response.status_code == 400, response.text
    assert "endpoints[0].secret" in response.text and SECRET_PLACEHOLDER in response.text
    assert entry(await admin.ok("GET", "/plugins"), "webhook")["enabled"] is False

    # One endpoint stored; a second, new one cannot borrow its secret.
    await enable_webhook(admin, http_sink.url + "/a")
    before = entry(await admin.ok("GET", "/plugins"), "webhook")["config"]
    stored_endpoint = before["endpoints"][0]
    new = {"url": http_sink.url + "/b", "secret": SECRET_PLACEHOLDER, "events": ["*"], "name": "b"}
    response = await admin.put("/plugins/webhook", {"config": {"endpoints": [stored_endpoint, new]}})
    assert response.status_code == 400, response.text
    assert "endpoints[1].secret" in response.text
    assert entry(await admin.ok("GET", "/plugins"), "webhook")["config"] == before, "nothing changed"

    # The same endpoint moved to second place keeps its own secret.
    fresh = {"url": http_sink.url + "/c", "secret": "whsec_third_party_0000000", "events": ["*"], "name": "c"}
    shown = await admin.ok("PUT", "/plugins/webhook", {"config": {"endpoints": [fresh, stored_endpoint]}})
    assert [e["secret"] for e in shown["config"]["endpoints"]] == [SECRET_PLACEHOLDER] * 2
    assert "whsec_" not in json.dumps(shown)


async def test_slack_and_teams_webhook_urls_are_secrets_and_still_checked(make_tenant, api, http_sink):
    t = await make_tenant()
    admin = api(t, "admin")
    url = http_sink.url + "/slack/T000/B000/very-secret-path"
    config = {"webhook_url": url, "rooms": [{"name": "desk", "webhook_url": url + "-desk"}]}
    shown = await admin.ok("PUT", "/plugins/slack", {"config": config})
    assert shown["config"]["webhook_url"] == SECRET_PLACEHOLDER
    assert shown["config"]["rooms"][0]["webhook_url"] == SECRET_PLACEHOLDER
    listing = await admin.get("/plugins")
    assert "very-secret-path" not in listing.text
    # Still a URL: a value that is not one is refused by name.
    for name in ("slack", "teams"):
        response = await admin.put(f"/plugins/{name}", {"config": {"webhook_url": "not a url"}})
        assert response.status_code == 400 and "webhook_url" in response.text, response.text
    assert "very-secret-path" not in (await admin.get("/plugins")).text


def test_secret_fields_are_found_through_refs_lists_dicts_and_unions():
    schema = {
        "$ref": "#/$defs/C",
        "$defs": {
            "C": {
                "type": "object",
                "properties": {
                    "token": {"anyOf": [{"type": "string", "writeOnly": True}, {"type": "null"}]},
                    "plain": {"type": "string"},
                    "hooks": {"type": "array", "items": {"$ref": "#/$defs/H"}},
                    "keys": {"type": "object", "additionalProperties": {"type": "string", "writeOnly": True}},
                    "child": {"$ref": "#/$defs/C"},
                },
            },
            "H": {"type": "object", "properties": {"secret": {"type": "string", "writeOnly": True}}},
        },
    }
    assert config_secrets.secret_paths(schema) == [("token",), ("hooks", "*", "secret"), ("keys", "*")]


def test_a_config_stored_in_clear_before_sealing_still_reads(settings):
    clear = {"url": "https://sms.example.test/v1", "auth_value": "Bearer legacy", "extra_fields": {"a": "b"}}
    assert config_secrets.unsealed(clear) == clear
    sealed = config_secrets.sealed("sms", clear)
    assert sealed["auth_value"].startswith(config_secrets.SEALED) and sealed["url"] == clear["url"]
    assert config_secrets.unsealed(sealed) == clear
    assert config_secrets.unsealed(config_secrets.sealed("sms", sealed)) == clear, "never sealed twice"


async def write_row(settings, backend, slug: str, name: str, config: dict) -> None:
    """Put a configuration in clear into the row, as rows were written before sealing."""
    tenant_id = (await require_tenant(slug)).id
    text = json.dumps(config)
    if backend == "postgres":
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(
                "UPDATE tenant_plugin SET config = $1 WHERE tenant_id = $2 AND name = $3",
                text,
                tenant_id,
                name,
            )
        finally:
            await conn.close()
        return
    conn = sqlite3.connect(sqlite_path(settings.database_url), timeout=30, isolation_level=None)
    try:
        conn.execute(
            "UPDATE tenant_plugin SET config = ? WHERE tenant_id IN (?, ?) AND name = ?",
            (text, str(tenant_id), tenant_id.hex, name),
        )
    finally:
        conn.close()


async def test_a_row_written_in_clear_before_this_change_still_works(
    make_tenant, api, smtp, sms_gateway, settings, backend
):
    t = await make_tenant(plugins=channels.plugins(sms_gateway.url, None))
    admin, op = api(t, "admin"), api(t, "operator")
    config = entry(await admin.ok("GET", "/plugins"), "sms")["config"]
    await write_row(settings, backend, t.slug, "sms", {**config, "auth_value": "Bearer legacy-clear-0000"})
    runtime.forget()
    await deposit_ready(op, admin, t.banks["Lobby"])
    [call] = await channels.wait_requests(sms_gateway, 1, "/v1/messages")
    assert call.header("Authorization") == "Bearer legacy-clear-0000"
    assert "legacy-clear" not in (await admin.get("/plugins")).text, "masked all the same"
    # The next save seals it, the placeholder keeping the value.
    await admin.ok("PUT", "/plugins/sms", {"config": {**config, "sender": "Desk"}})
    rows = await stored_rows(settings, backend, t.slug)
    assert "legacy-clear" not in rows["sms"] and config_secrets.SEALED in rows["sms"]
