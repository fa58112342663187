"""OpenID Connect single sign-on against a real provider (authlib server, tests/support/oidc_provider.py).

The provider runs on a loopback port; the platform fetches its discovery
document and keys and exchanges codes with it over HTTP. The test plays the
browser between the two. Refused answers are logged with their reason and
create nothing. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import AppUser, SsoIdentity, SsoProvider, UserSession
from pigeonhole.domain.context import require_tenant

from tests.support.oidc_provider import OidcProvider
from tests.support.signin import new_email

CLIENT_ID = "pigeonhole-test"
CLIENT_SECRET = "s3cret-of-the-client-" + "x" * 20
MAPPING = {
    "claims": {"role": "groups", "employee_id": "employee_number"},
    "role_mapping": {"lockers-admins": "enterprise_admin", "mailroom": "locker_operator"},
}


@pytest.fixture
def provider():
    running = OidcProvider().start()
    yield running
    running.stop()


async def set_up(api, t, provider: OidcProvider, client_id: str = CLIENT_ID, **extra) -> dict:
    provider.register(client_id, CLIENT_SECRET, f"http://127.0.0.1:8000/api/v1/t/{t.slug}/sso/oidc/callback")
    body = {
        "discovery_url": provider.issuer,
        "client_id": client_id,
        "client_secret": CLIENT_SECRET,
        **MAPPING,
        **extra,
    }
    return await api(t, "admin").ok("PUT", "/sso/oidc", body)


async def browse(client, slug: str, provider: OidcProvider, *, return_to: str = "/packages", tamper=None):
    """Start at the platform, pass the provider, come back to the callback; returns the callback's answer."""
    start = await client.get(f"/api/v1/t/{slug}/sso/oidc/login", params={"return_to": return_to})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(authorize)
    assert at_provider.status_code == 302, at_provider.text
    callback = urlsplit(at_provider.headers["location"])
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    if tamper:
        query = tamper(query)
    return await client.get(f"{callback.path}?{urlencode(query)}")


async def counts(slug: str) -> tuple[int, int, int]:
    tenant = await require_tenant(slug)
    async with tenant_tx(tenant.id, write=False) as scope:
        return (await scope.count(AppUser), await scope.count(UserSession), await scope.count(SsoIdentity))


def refusal_logged(caplog, text: str) -> bool:
    return any(
        r.name == "pigeonhole.sso" and "refused" in r.getMessage() and text.lower() in r.getMessage().lower()
        for r in caplog.records
    )


async def test_a_valid_sign_in_provisions_the_user_with_pkce_state_and_nonce(
    client, make_tenant, api, provider
):
    t = await make_tenant()
    shown = await set_up(api, t, provider)
    assert shown["issuer"] == provider.issuer and shown["client_secret_set"] is True
    assert CLIENT_SECRET not in str(shown)
    email = new_email("grace")
    provider.sign_in_as(
        sub="u-1906",
        email=email,
        email_verified=True,
        name="Grace Hopper",
        groups=["staff", "lockers-admins"],
        employee_number="E-1906",
    )

    start = await client.get(f"/api/v1/t/{t.slug}/sso/oidc/login", params={"return_to": "/banks"})
    sent = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["state"] and sent["nonce"] and sent["client_id"] == CLIENT_ID
    assert "ph_sso" in start.cookies

    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"])
    callback = at_provider.headers["location"]
    done = await client.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/banks"
    token = done.cookies.get("ph_session")
    assert token and token.startswith("phs_")
    # The token request carried the PKCE verifier, and the client authenticated.
    [exchange] = provider.token_requests
    assert exchange["code_verifier"] and exchange["grant_type"] == "authorization_code"

    me = await client.get(f"/api/v1/t/{t.slug}/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["method"] == "oidc"
    [user] = [u for u in await api(t, "admin").ok("GET", f"/users?q={email}") if u["email"] == email]
    assert (user["name"], user["role"], user["employee_id"]) == ("Grace Hopper", "enterprise_admin", "E-1906")

    # Signing in again maps the new groups onto the same user.
    provider.sign_in_as(sub="u-1906", email=email, name="Grace Hopper", groups=["mailroom"])
    assert (await browse(client, t.slug, provider)).status_code == 303
    users = [u for u in await api(t, "admin").ok("GET", f"/users?q={email}") if u["email"] == email]
    assert [u["role"] for u in users] == ["locker_operator"]


def _wrong_state(query):
    return {**query, "state": "not-the-state-we-sent"}


REFUSALS = {
    "wrong state": ("state", "the state does not match"),
    "wrong nonce": ("nonce", "nonce is not the one"),
    "wrong issuer": ("issuer", "was issued by 'https://evil.example.test'"),
    "expired token": ("expired", "has expired"),
    "unverified email": ("unverified", "is not verified"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_bad_answer_is_refused_logged_and_creates_nothing(
    client, make_tenant, api, provider, caplog, case
):
    t = await make_tenant()
    await set_up(api, t, provider)
    knob, reason = REFUSALS[case]
    email = new_email("mallory")
    provider.sign_in_as(
        sub="u-666", email=email, email_verified=knob != "unverified", groups=["lockers-admins"]
    )
    if knob == "nonce":
        provider.knobs.nonce = "a-nonce-from-another-sign-in"
    elif knob == "issuer":
        provider.knobs.issuer = "https://evil.example.test"
    elif knob == "expired":
        provider.knobs.expired = True
    before = await counts(t.slug)
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")

    response = await browse(client, t.slug, provider, tamper=_wrong_state if knob == "state" else None)

    assert response.status_code == 401, response.text
    assert reason in response.json()["detail"]
    assert "ph_session" not in response.cookies
    assert refusal_logged(caplog, reason)
    assert await counts(t.slug) == before
    assert email not in str(await api(t, "admin").ok("GET", "/users"))


async def test_a_callback_is_used_once_and_only_by_the_browser_that_started(
    client, make_tenant, api, provider, caplog
):
    t = await make_tenant()
    await set_up(api, t, provider)
    provider.sign_in_as(sub="u-7", email=new_email(), groups=["mailroom"])
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")

    start = await client.get(f"/api/v1/t/{t.slug}/sso/oidc/login")
    async with httpx.AsyncClient() as browser:
        callback = urlsplit((await browser.get(start.headers["location"])).headers["location"])
    url = f"{callback.path}?{callback.query}"
    before = await counts(t.slug)

    # Someone else's browser (no sign-in cookie) opening the callback URL gets nothing.
    stranger = await client.get(url, cookies={"ph_sso": "someone-elses"})
    assert stranger.status_code == 401 and "different browser" in stranger.json()["detail"]
    assert await counts(t.slug) == before

    first = await client.get(url)
    assert first.status_code == 303, first.text
    again = await client.get(url)
    assert again.status_code == 401 and "already completed" in again.json()["detail"]
    assert refusal_logged(caplog, "different browser") and refusal_logged(caplog, "already completed")


async def test_oversized_or_incomplete_answers_get_a_clear_error(client, make_tenant, api, provider):
    t = await make_tenant()
    await set_up(api, t, provider)
    before = await counts(t.slug)
    base = f"/api/v1/t/{t.slug}/sso/oidc/callback"
    huge = await client.get(base, params={"code": "x" * 5000, "state": "y"})
    assert huge.status_code == 400 and "longer than 4 KB" in huge.json()["detail"]
    nothing = await client.get(base)
    assert nothing.status_code == 401 and "no state" in nothing.json()["detail"]

    def no_code(query):
        return {"state": query["state"]}

    provider.sign_in_as(sub="u-8", email=new_email())
    missing = await browse(client, t.slug, provider, tamper=no_code)
    assert missing.status_code == 400 and "no authorization code" in missing.json()["detail"]

    def bad_code(query):
        return {**query, "code": "forged-code"}

    forged = await browse(client, t.slug, provider, tamper=bad_code)
    assert forged.status_code == 401 and "token endpoint refused the code" in forged.json()["detail"]
    assert await counts(t.slug) == before


async def test_the_admin_sets_up_oidc_with_a_sealed_secret_and_clear_refusals(
    client, make_tenant, api, provider
):
    t = await make_tenant()
    admin = api(t, "admin")
    provider.register(CLIENT_ID, CLIENT_SECRET, f"http://127.0.0.1:8000/api/v1/t/{t.slug}/sso/oidc/callback")

    unreachable = await admin.put(
        "/sso/oidc", json={"discovery_url": "http://127.0.0.1:9/", "client_id": "c", "client_secret": "s"}
    )
    assert unreachable.status_code == 422 and "Could not fetch" in unreachable.json()["detail"]
    plain = await admin.put(
        "/sso/oidc",
        json={"discovery_url": "http://idp.example.test/", "client_id": "c", "client_secret": "s"},
    )
    assert plain.status_code == 422 and "https://" in plain.json()["detail"]
    no_secret = await admin.put("/sso/oidc", json={"discovery_url": provider.issuer, "client_id": CLIENT_ID})
    assert no_secret.status_code == 422 and "client secret is required" in no_secret.json()["detail"]
    no_openid = await admin.put(
        "/sso/oidc",
        json={
            "discovery_url": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": "s",
            "scopes": ["email"],
        },
    )
    assert no_openid.status_code == 422 and "'openid'" in no_openid.json()["detail"]
    assert (await admin.ok("GET", "/sso"))["oidc"]["configured"] is False

    await set_up(api, t, provider)
    tenant = await require_tenant(t.slug)
    async with tenant_tx(tenant.id, write=False) as scope:
        row = await scope.select(SsoProvider).where(SsoProvider.protocol == "oidc").first()
    assert CLIENT_SECRET not in str(row) and row["client_secret_sealed"]

    # Changing the mapping without resending the secret keeps it.
    kept = await admin.ok(
        "PUT",
        "/sso/oidc",
        {
            "discovery_url": provider.discovery_url,
            "client_id": CLIENT_ID,
            "role_mapping": {"ops": "locker_operator"},
        },
    )
    assert kept["client_secret_set"] and kept["role_mapping"] == {"ops": "locker_operator"}
    provider.sign_in_as(sub="u-9", email=new_email(), groups=["ops"])
    assert (await browse(client, t.slug, provider)).status_code == 303
    audit = await admin.ok("GET", "/audit?action=sso.oidc.configured")
    assert len(audit) == 2 and CLIENT_SECRET not in str(audit)

    await admin.ok("DELETE", "/sso/oidc")
    assert (await client.get(f"/api/v1/t/{t.slug}/sso/oidc/login")).status_code == 404


async def test_a_user_of_one_tenant_cannot_sign_in_to_another(client, make_tenant, api, provider):
    """The callback of tenant A's sign-in, replayed at tenant B, matches no sign-in of B."""
    a, b = await make_tenant("a"), await make_tenant("b")
    await set_up(api, a, provider, client_id="client-of-a")
    await set_up(api, b, provider, client_id="client-of-b")
    before = await counts(b.slug)
    provider.sign_in_as(sub="u-10", email=new_email())

    start = await client.get(f"/api/v1/t/{a.slug}/sso/oidc/login")
    async with httpx.AsyncClient() as browser:
        callback = urlsplit((await browser.get(start.headers["location"])).headers["location"])
    at_b = await client.get(f"/api/v1/t/{b.slug}/sso/oidc/callback?{callback.query}")
    assert at_b.status_code == 401 and "state does not match" in at_b.json()["detail"]
    assert await counts(b.slug) == before
