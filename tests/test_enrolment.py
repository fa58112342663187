"""Enrolment: a one-time token becomes a site agent's own credential (issue #4).

In-process for the API's rules (shown once, stored hashed, expires, single use,
refusals counted and rate-limited), and with real processes for the command
line: `pigeonhole agent enrol` saves a 0600 file that `pigeonhole agent` then
uses to connect, and the server shows the agent online with its last-seen time.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from datetime import timedelta

import pytest
from pigeonhole.domain import clock, enrolment

from tests.support.processes import PIGEONHOLE, Deployment
from tests.test_agent_process import REMOTE_ONLY, Desk, client_for, new_tenants


@pytest.fixture
def deploy(database, smtp, tmp_path):
    """A Deployment on this test's database; its processes are killed at teardown, their logs shown."""
    made: list[Deployment] = []

    def make() -> Deployment:
        deployment = Deployment(tmp_path / f"deployment{len(made)}", database_url=database, smtp_url=smtp.url)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()
        print(deployment.logs())  # pytest shows it when the test failed


async def _token(admin, **body) -> dict:
    return await admin.ok("POST", "/agents/enrolment-tokens", {"name": "site-north", **body})


async def test_a_token_is_shown_once_stored_hashed_and_enrols_one_agent(make_tenant, api, client):
    from pigeonhole.db.engine import tenant_tx
    from pigeonhole.db.tables import EnrolmentToken
    from pigeonhole.domain.context import require_tenant

    t = await make_tenant()
    admin = api(t, "admin")
    lobby = t.banks["Lobby"]
    made = await _token(admin, bank_id=lobby, expires_in_minutes=30)
    token = made["token"]
    assert token.startswith("phe_") and made["state"] == "active" and made["bank_id"] == lobby

    listed = await admin.ok("GET", "/agents/enrolment-tokens")
    assert [x["id"] for x in listed] == [made["id"]]
    assert listed[0]["token"] is None, "the token is shown in the answer that made it, never again"
    info = await require_tenant(t.slug)
    async with tenant_tx(info.id, write=False) as scope:
        [row] = await scope.select(EnrolmentToken)
    assert token not in str(row.values()) and row["digest"] != token, "stored as a digest"

    # The exchange needs no API key: the token is the credential.
    enrolled = await client.post("/api/v1/agents/enrol", json={"tenant": t.slug, "token": token})
    assert enrolled.status_code == 201, enrolled.text
    agent = enrolled.json()
    assert agent["name"] == "site-north" and agent["bank_id"] == lobby and agent["key"].startswith("ph_")

    # The key is an agent key bound to the token's bank: it sees that bank, nothing else.
    as_agent = await client.get(
        f"/api/v1/t/{t.slug}/banks", headers={"Authorization": f"Bearer {agent['key']}"}
    )
    assert as_agent.status_code == 200 and [b["id"] for b in as_agent.json()] == [lobby]
    keys = await admin.ok("GET", "/api-keys")
    [key] = [k for k in keys if k["name"] == "site-north"]
    assert (key["role"], key["bank_id"]) == ("agent", lobby)

    [listed_agent] = await admin.ok("GET", "/agents")
    assert listed_agent["id"] == agent["agent_id"] and listed_agent["enrolled_at"] is not None
    assert listed_agent["online"] is False and listed_agent["last_seen_at"] is None, "not connected yet"

    again = await client.post("/api/v1/agents/enrol", json={"tenant": t.slug, "token": token})
    assert again.status_code == 409 and "already used" in again.json()["detail"], again.text
    assert [x["state"] for x in await admin.ok("GET", "/agents/enrolment-tokens")] == ["used"]
    assert len([k for k in await admin.ok("GET", "/api-keys") if k["role"] == "agent"]) == 1


async def test_expired_revoked_and_made_up_tokens_are_refused_with_a_reason(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    url = "/api/v1/agents/enrol"

    expiring = await _token(admin, expires_in_minutes=5)
    clock.advance(timedelta(minutes=6))
    expired = await client.post(url, json={"tenant": t.slug, "token": expiring["token"]})
    assert expired.status_code == 410 and "expired" in expired.json()["detail"], expired.text

    revoked = await _token(admin)
    await admin.ok("DELETE", f"/agents/enrolment-tokens/{revoked['id']}")
    refused = await client.post(url, json={"tenant": t.slug, "token": revoked["token"]})
    assert refused.status_code == 401 and "Invalid enrolment token" in refused.json()["detail"]

    garbage = await client.post(url, json={"tenant": t.slug, "token": "ph_this_is_an_api_key"})
    assert garbage.status_code == 401 and "not an enrolment token" in garbage.json()["detail"]
    nowhere = await client.post(url, json={"tenant": "no-such-tenant", "token": revoked["token"]})
    assert nowhere.status_code == 404
    missing = await client.post(url, json={"tenant": t.slug})
    assert missing.status_code == 400 and "token" in missing.text

    assert not [k for k in await admin.ok("GET", "/api-keys") if k["role"] == "agent"], "nothing enrolled"
    events = await admin.ok("GET", "/alerts?status=all")
    assert events == [], "refusals are counted, not alerts"


async def test_guessing_tokens_is_rate_limited(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    url = "/api/v1/agents/enrol"
    good = await _token(admin)
    for i in range(enrolment.MAX_FAILURES):
        wrong = await client.post(url, json={"tenant": t.slug, "token": f"phe_guess{i:04d}"})
        assert wrong.status_code == 401, wrong.text
    paused = await client.post(url, json={"tenant": t.slug, "token": good["token"]})
    assert paused.status_code == 429, paused.text
    assert "Too many failed enrolments" in paused.json()["detail"]
    assert int(paused.headers["retry-after"]) > 0
    assert (await admin.ok("GET", "/agents/enrolment-tokens"))[0]["state"] == "active", "nothing used"

    clock.advance(enrolment.WINDOW + timedelta(seconds=1))
    enrolled = await client.post(url, json={"tenant": t.slug, "token": good["token"]})
    assert enrolled.status_code == 201, "the window passed: the real token works"


async def test_who_may_make_tokens_and_bad_bodies(make_tenant, api):
    t = await make_tenant()
    op, admin, kiosk = api(t, "operator"), api(t, "admin"), api(t, "kiosk")
    refused = await op.post("/agents/enrolment-tokens", json={"name": "x"})
    assert refused.status_code == 403 and "agents:write" in refused.json()["detail"]
    assert (await kiosk.get("/agents")).status_code == 403
    assert (await op.get("/agents")).status_code == 200, "operators see agents (agents:read)"

    too_long = await admin.post("/agents/enrolment-tokens", json={"name": "x", "expires_in_minutes": 10**6})
    assert too_long.status_code == 400 and "expires_in_minutes" in too_long.text
    blank = await admin.post("/agents/enrolment-tokens", json={"name": "   "})
    assert blank.status_code == 422 and "needs a name" in blank.json()["detail"]
    other_bank = await admin.post(
        "/agents/enrolment-tokens", json={"name": "x", "bank_id": "00000000-0000-0000-0000-000000000001"}
    )
    assert other_bank.status_code == 404
    assert await admin.ok("GET", "/agents/enrolment-tokens") == [], "refusals made nothing"


async def test_the_command_line_enrols_and_the_agent_runs_from_its_file(deploy, tmp_path):
    deployment: Deployment = deploy()
    [tenant], server = await asyncio.gather(new_tenants(deployment), deployment.serve(**REMOTE_ONLY))
    async with client_for(server) as client:
        desk = Desk(client, tenant)
        lobby = await desk.bank("Lobby")
        token = (await _token(desk.admin, bank_id=lobby))["token"]
        site = tmp_path / "site"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_")}
        env["PIGEONHOLE_DATA_DIR"] = str(site)
        enrol = [PIGEONHOLE, "agent", "enrol", "--url", server.url, "--tenant", tenant.slug]
        done = await asyncio.to_thread(
            subprocess.run, [*enrol, "--token", token], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "enrolled as agent 'site-north'" in done.stdout
        saved = site / "agent-credentials.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600, "only the agent's user reads its key"
        assert token not in saved.read_text()

        reused = await asyncio.to_thread(
            subprocess.run, [*enrol, "--token", token, "--force"], env=env, capture_output=True, text=True
        )
        assert reused.returncode == 1 and "already used" in reused.stderr, reused.stderr

        # No URL, tenant or key: all from the file.
        agent = await deployment.agent(server, "", "", PIGEONHOLE_DATA_DIR=str(site))
        assert "serving 1 bank(s): Lobby" in agent.log()
        await desk.deposit_opens(lobby)
        [shown] = await desk.op.ok("GET", "/agents")
        assert shown["name"] == "site-north" and shown["online"] is True
        assert shown["last_seen_at"] is not None and shown["banks"] == [lobby]

        agent.stop()
        assert agent.returncode == 0
        deadline = asyncio.get_running_loop().time() + 20
        while (await desk.op.ok("GET", "/agents"))[0]["online"]:
            assert asyncio.get_running_loop().time() < deadline, "the agent never showed offline"
            await asyncio.sleep(0.1)
        await desk.deposit_refused_offline(lobby)


def test_the_agent_without_key_or_file_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_")}
    env["PIGEONHOLE_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([PIGEONHOLE, "agent"], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "run `pigeonhole agent enrol` first" in done.stderr
