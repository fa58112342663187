"""SAML 2.0 single sign-on against a real, independent IdP (pysaml2, tests/support/saml_idp.py).

The IdP trusts the SP metadata the platform publishes, reads the AuthnRequest
the platform sends and signs its responses with its own throwaway key. The
test plays the browser: it follows the redirect to the IdP and posts the form
the IdP returns to the assertion consumer service. Refused responses are
logged with their reason and create nothing. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import copy
import logging
from urllib.parse import urlsplit

import pytest
from lxml import etree
from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import AppUser, SsoIdentity, UserSession
from pigeonhole.domain import clock
from pigeonhole.domain.context import require_tenant

from tests.support.saml_idp import SamlIdp
from tests.support.signin import new_email, sign_in, staff

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
MAPPING = {
    "attributes": {"name": "displayName", "role": "memberOf", "employee_id": "employeeNumber"},
    "role_mapping": {"lockers-admins": "enterprise_admin", "mailroom": "locker_operator"},
}


@pytest.fixture
def idp(tmp_path) -> SamlIdp:
    return SamlIdp(tmp_path / "idp")


async def set_up(api, t, idp: SamlIdp, **mapping) -> None:
    admin = api(t, "admin")
    metadata = await admin.get("/sso/saml/metadata")
    assert metadata.status_code == 200, metadata.text
    assert metadata.headers["content-type"].startswith("application/samlmetadata+xml")
    idp.trust_sp(metadata.text)
    await admin.ok("PUT", "/sso/saml", {"metadata_xml": idp.metadata(), **(mapping or MAPPING)})


async def start(client, slug: str, return_to: str = "/packages") -> str:
    response = await client.get(f"/api/v1/t/{slug}/sso/saml/login", params={"return_to": return_to})
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def post_to_acs(client, posted, form: dict | None = None):
    return await client.post(urlsplit(posted.url).path, data=form or posted.form)


async def counts(slug: str) -> tuple[int, int, int]:
    tenant = await require_tenant(slug)
    async with tenant_tx(tenant.id, write=False) as scope:
        return (
            await scope.count(AppUser),
            await scope.count(UserSession),
            await scope.count(SsoIdentity),
        )


def refusal_logged(caplog, text: str) -> bool:
    return any(
        r.name == "pigeonhole.sso" and "refused" in r.getMessage() and text.lower() in r.getMessage().lower()
        for r in caplog.records
    )


async def test_a_signed_response_signs_the_user_in_and_provisions_them(client, make_tenant, api, idp):
    t = await make_tenant()
    await set_up(api, t, idp)
    email = new_email("ada")
    url = await start(client, t.slug, "/packages?status=ready")
    seen = idp.read_request(url)
    assert seen.acs_url == f"http://127.0.0.1:8000/api/v1/t/{t.slug}/sso/saml/acs"
    assert seen.issuer == f"http://127.0.0.1:8000/api/v1/t/{t.slug}/sso/saml/metadata"

    posted = idp.login(
        url,
        email=email,
        attributes={
            "displayName": ["Ada Lovelace"],
            "memberOf": ["staff", "lockers-admins"],
            "employeeNumber": ["E-1815"],
        },
    )
    response = await post_to_acs(client, posted)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/packages?status=ready"
    token = response.cookies.get("ph_session")
    assert token and token.startswith("phs_")

    # The session works like a password session: the user is who the IdP said, with the mapped role.
    me = await client.get(f"/api/v1/t/{t.slug}/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["method"] == "saml"
    users = await api(t, "admin").ok("GET", f"/users?q={email}")
    [user] = [u for u in users if u["email"] == email]
    assert (user["name"], user["role"], user["employee_id"]) == ("Ada Lovelace", "enterprise_admin", "E-1815")
    assert me.json()["user_id"] == user["id"]

    # A second sign-in updates the same user (now mapped to another role), no duplicate.
    posted = idp.login(
        await start(client, t.slug),
        email=email,
        attributes={"displayName": ["Ada King"], "memberOf": ["mailroom"]},
    )
    assert (await post_to_acs(client, posted)).status_code == 303
    users = await api(t, "admin").ok("GET", f"/users?q={email}")
    assert [(u["name"], u["role"]) for u in users if u["email"] == email] == [("Ada King", "locker_operator")]

    # Provisioning is in the audit log.
    audit = await api(t, "admin").ok("GET", "/audit?action=user.provisioned")
    assert any(e["target_id"] == user["id"] for e in audit)


def _unsigned(idp, url, email):
    return idp.login(url, email=email, sign_response=False, sign_assertion=False)


def _wrong_audience(idp, url, email):
    return idp.login(url, email=email, audience=idp.OTHER_SP)


def _wrong_destination(idp, url, email):
    return idp.login(url, email=email, destination="https://elsewhere.example.test/acs")


def _expired(idp, url, email):
    # The IdP issues an assertion whose validity ended ten minutes ago (beyond the allowed drift).
    return idp.login(url, email=email, lifetime_minutes=-10)


def _replace_response(posted, root):
    posted.saml_response = base64.b64encode(etree.tostring(root)).decode()
    return posted


def _xsw_sibling(idp, url, email):
    """Signature wrapping: an unsigned evil assertion next to the signed one."""
    posted = idp.login(url, email="victim@example.test", sign_response=False, sign_assertion=True)
    root = etree.fromstring(posted.xml.encode())
    signed = root.find("saml:Assertion", NS)
    evil = copy.deepcopy(signed)
    evil.set("ID", "_evil")
    evil.remove(evil.find("ds:Signature", NS))
    evil.find("saml:Subject/saml:NameID", NS).text = email
    signed.addprevious(evil)
    return _replace_response(posted, root)


def _xsw_wrapped(idp, url, email):
    """Signature wrapping: the signed assertion hidden inside the evil one's Signature/Object."""
    posted = idp.login(url, email="victim@example.test", sign_response=False, sign_assertion=True)
    root = etree.fromstring(posted.xml.encode())
    signed = root.find("saml:Assertion", NS)
    evil = copy.deepcopy(signed)
    evil.find("saml:Subject/saml:NameID", NS).text = email
    signature = evil.find("ds:Signature", NS)
    holder = etree.SubElement(signature, f"{{{NS['ds']}}}Object")
    signed.addprevious(evil)
    holder.append(signed)  # moves the original out of the Response into the evil assertion
    return _replace_response(posted, root)


def _tampered(idp, url, email):
    """The signed assertion with its subject changed after signing."""
    posted = idp.login(url, email="victim@example.test")
    root = etree.fromstring(posted.xml.encode())
    root.find("saml:Assertion/saml:Subject/saml:NameID", NS).text = email
    return _replace_response(posted, root)


REFUSALS = {
    "unsigned": (_unsigned, "No Signature found"),
    "wrong audience": (_wrong_audience, "audience"),
    "wrong destination": (_wrong_destination, "was received at"),
    "expired": (_expired, "expired"),
    "signature wrapping, sibling": (_xsw_sibling, "assertion"),
    "signature wrapping, wrapped": (_xsw_wrapped, "assertion"),
    "tampered after signing": (_tampered, "signature"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_bad_response_is_refused_logged_and_creates_nothing(
    client, make_tenant, api, idp, caplog, case
):
    t = await make_tenant()
    await set_up(api, t, idp)
    make, reason = REFUSALS[case]
    email = new_email("mallory")
    before = await counts(t.slug)
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")

    posted = make(idp, await start(client, t.slug), email)
    response = await post_to_acs(client, posted)

    assert response.status_code == 401, response.text
    assert response.json()["detail"].startswith("Single sign-on failed:")
    assert reason.lower() in response.json()["detail"].lower()
    assert "ph_session" not in response.cookies
    assert refusal_logged(caplog, reason), [r.getMessage() for r in caplog.records]
    assert await counts(t.slug) == before
    assert email not in str(await api(t, "admin").ok("GET", "/users"))


async def test_a_replayed_response_is_refused(client, make_tenant, api, idp, caplog):
    t = await make_tenant()
    await set_up(api, t, idp)
    posted = idp.login(await start(client, t.slug), email=new_email())
    assert (await post_to_acs(client, posted)).status_code == 303
    before = await counts(t.slug)
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")

    replay = await post_to_acs(client, posted)
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]
    assert refusal_logged(caplog, "replayed")
    assert await counts(t.slug) == before

    # The assertion id is kept until the assertion expires, then forgotten.
    tenant = await require_tenant(t.slug)
    from pigeonhole.db.tables import SsoAssertion

    async with tenant_tx(tenant.id, write=False) as scope:
        [kept] = await scope.select(SsoAssertion)
    assert kept["expires_at"] > clock.now()


async def test_a_response_for_another_sign_in_or_none_is_refused(client, make_tenant, api, idp, caplog):
    t = await make_tenant()
    await set_up(api, t, idp)
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")
    before = await counts(t.slug)
    posted = idp.login(await start(client, t.slug), email=new_email())

    # IdP-initiated (unsolicited): no RelayState at all.
    unsolicited = await post_to_acs(client, posted, {"SAMLResponse": posted.saml_response})
    assert unsolicited.status_code == 401 and "no state" in unsolicited.json()["detail"]
    # RelayState names no sign-in we started.
    forged = await post_to_acs(client, posted, {**posted.form, "RelayState": "made-up"})
    assert forged.status_code == 401 and "state does not match" in forged.json()["detail"]
    # An answer to a different AuthnRequest (InResponseTo) than the RelayState's.
    other = idp.login(await start(client, t.slug), email=new_email())
    mixed = await post_to_acs(client, posted, {**posted.form, "RelayState": other.relay_state})
    assert mixed.status_code == 401 and "InResponseTo" in mixed.json()["detail"]
    assert refusal_logged(caplog, "InResponseTo")
    assert await counts(t.slug) == before


async def test_a_user_of_one_tenant_cannot_sign_in_to_another(client, make_tenant, api, idp, caplog):
    """Both tenants trust the same IdP; A's response, carried to B's ACS, signs no one in at B."""
    a, b = await make_tenant("a"), await make_tenant("b")
    await set_up(api, a, idp)
    idp_b = SamlIdp(idp.folder.parent / "idp-b", entity_id=idp.entity_id)
    idp_b.key_file, idp_b.cert_file = idp.key_file, idp.cert_file
    await set_up(api, b, idp_b)
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")
    before = await counts(b.slug)

    for_a = idp.login(await start(client, a.slug), email=new_email())
    b_state = idp_b.read_request(await start(client, b.slug)).relay_state
    at_b = await client.post(f"/api/v1/t/{b.slug}/sso/saml/acs", data={**for_a.form, "RelayState": b_state})
    assert at_b.status_code == 401, at_b.text
    assert "InResponseTo" in at_b.json()["detail"]
    assert refusal_logged(caplog, f"tenant {b.slug}")
    assert await counts(b.slug) == before
    # Still good where it belongs.
    assert (await post_to_acs(client, for_a)).status_code == 303


async def test_malformed_and_oversized_responses_get_a_clear_error(client, make_tenant, api, idp, caplog):
    t = await make_tenant()
    await set_up(api, t, idp)
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")
    before = await counts(t.slug)
    relay = idp.read_request(await start(client, t.slug)).relay_state
    acs = f"/api/v1/t/{t.slug}/sso/saml/acs"

    not_base64 = await client.post(acs, data={"SAMLResponse": "%%% not base64 %%%", "RelayState": relay})
    assert not_base64.status_code == 400 and "not valid base64" in not_base64.json()["detail"]
    not_xml = base64.b64encode(b"<samlp:Response><unclosed>").decode()
    broken = await client.post(acs, data={"SAMLResponse": not_xml, "RelayState": relay})
    assert broken.status_code == 400 and "cannot be read" in broken.json()["detail"]
    bomb = base64.b64encode(
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>'
    ).decode()
    dtd = await client.post(acs, data={"SAMLResponse": bomb, "RelayState": relay})
    assert dtd.status_code == 400
    missing = await client.post(acs, data={"RelayState": relay})
    assert missing.status_code == 400 and "no SAMLResponse" in missing.json()["detail"]
    huge = await client.post(acs, data={"SAMLResponse": "A" * 300_000, "RelayState": relay})
    assert huge.status_code == 413 and "larger than 256 KB" in huge.json()["detail"]
    assert refusal_logged(caplog, "not valid base64") and refusal_logged(caplog, "cannot be read")
    assert await counts(t.slug) == before


async def test_the_admin_uploads_idp_metadata_and_malformed_metadata_is_refused(
    client, make_tenant, api, idp
):
    t = await make_tenant()
    admin = api(t, "admin")
    assert (await admin.ok("GET", "/sso"))["saml"]["configured"] is False

    for bad, says in [
        ("<EntityDescriptor", "not well-formed XML"),
        (
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>',
            "IDPSSODescriptor",
        ),
        (idp.metadata().replace("X509Certificate", "X509Nothing"), "signing certificate"),
    ]:
        refused = await admin.put("/sso/saml", json={"metadata_xml": bad})
        assert refused.status_code == 400, refused.text
        assert says in refused.json()["detail"]
    assert (await admin.ok("GET", "/sso"))["saml"]["configured"] is False

    unknown_role = await admin.put(
        "/sso/saml", json={"metadata_xml": idp.metadata(), "role_mapping": {"x": "no-such-role"}}
    )
    assert unknown_role.status_code == 422 and "no-such-role" in unknown_role.json()["detail"]

    done = await admin.ok("PUT", "/sso/saml", {"metadata_xml": idp.metadata(), **MAPPING})
    assert done["idp_entity_id"] == idp.entity_id and done["idp_sso_url"] == idp.sso_url
    overview = await admin.ok("GET", "/sso")
    assert overview["saml"]["configured"] and overview["saml"]["role_mapping"] == MAPPING["role_mapping"]
    audit = await admin.ok("GET", "/audit?action=sso.saml.configured")
    assert len(audit) == 1

    # Operators may not touch it.
    forbidden = await api(t, "operator").put("/sso/saml", json={"metadata_xml": idp.metadata()})
    assert forbidden.status_code == 403 and "sso:write" in forbidden.json()["detail"]


async def test_sign_in_before_set_up_is_a_clear_404(client, make_tenant):
    t = await make_tenant()
    response = await client.get(f"/api/v1/t/{t.slug}/sso/saml/login")
    assert response.status_code == 404
    assert "not set up" in response.json()["detail"]


async def test_require_sso_refuses_passwords_except_break_glass(client, make_tenant, api, idp, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    worker = await staff(client, admin, smtp, role="locker_operator")
    rescuer = await staff(client, admin, smtp, role="enterprise_admin")

    # Not before a provider is set up, and not without a break-glass administrator.
    early = await admin.put("/sso/settings", json={"require_sso": True, "break_glass_user_ids": [rescuer.id]})
    assert early.status_code == 422 and "provider" in early.json()["detail"]
    await set_up(api, t, idp)
    alone = await admin.put("/sso/settings", json={"require_sso": True})
    assert alone.status_code == 422 and "break-glass" in alone.json()["detail"]
    weak = await admin.put("/sso/settings", json={"require_sso": True, "break_glass_user_ids": [worker.id]})
    assert weak.status_code == 422 and "sso:write" in weak.json()["detail"]

    assert (await sign_in(client, t.slug, worker.email, worker.password)).status_code == 200
    await admin.ok("PUT", "/sso/settings", {"require_sso": True, "break_glass_user_ids": [rescuer.id]})

    refused = await sign_in(client, t.slug, worker.email, worker.password)
    assert refused.status_code == 403 and "single sign-on" in refused.json()["detail"]
    allowed = await sign_in(client, t.slug, rescuer.email, rescuer.password)
    assert allowed.status_code == 200 and allowed.json()["status"] == "signed_in"
    # SSO itself still works for everyone.
    posted = idp.login(await start(client, t.slug), email=worker.email, attributes={"memberOf": ["mailroom"]})
    assert (await post_to_acs(client, posted)).status_code == 303

    audit = await admin.ok("GET", "/audit?action=sso.settings.changed")
    assert audit and audit[0]["data"]["after"]["require_sso"] is True
    # The only provider cannot be removed while SSO is required.
    blocked = await admin.delete("/sso/saml")
    assert blocked.status_code == 422 and "requires SSO" in blocked.json()["detail"]

    await admin.ok("PUT", "/sso/settings", {"require_sso": False})
    assert (await sign_in(client, t.slug, worker.email, worker.password)).status_code == 200


async def test_single_logout_from_the_idp_ends_the_users_sessions(client, make_tenant, api, idp):
    t = await make_tenant()
    await set_up(api, t, idp)
    email = new_email()
    posted = idp.login(await start(client, t.slug), email=email)
    token = (await post_to_acs(client, posted)).cookies.get("ph_session")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get(f"/api/v1/t/{t.slug}/auth/session", headers=bearer)).status_code == 200

    # An unsigned logout request is refused: anyone could sign users out otherwise.
    unsigned = idp.logout_request_url(
        f"http://127.0.0.1:8000/api/v1/t/{t.slug}/sso/saml/sls", email, "idp-session-7", sign=False
    )
    refused = await client.get(urlsplit(unsigned).path + "?" + urlsplit(unsigned).query)
    assert refused.status_code == 401
    assert (await client.get(f"/api/v1/t/{t.slug}/auth/session", headers=bearer)).status_code == 200

    signed = idp.logout_request_url(
        f"http://127.0.0.1:8000/api/v1/t/{t.slug}/sso/saml/sls", email, "idp-session-7", sign=True
    )
    answer = await client.get(urlsplit(signed).path + "?" + urlsplit(signed).query)
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"].startswith(idp.slo_url + "?SAMLResponse=")
    assert (
        idp.read_logout_response(answer.headers["location"]) == "urn:oasis:names:tc:SAML:2.0:status:Success"
    )
    gone = await client.get(f"/api/v1/t/{t.slug}/auth/session", headers=bearer)
    assert gone.status_code == 401


async def test_the_user_signs_out_here_and_at_the_idp(client, make_tenant, api, idp):
    t = await make_tenant()
    await set_up(api, t, idp)
    email = new_email()
    posted = idp.login(await start(client, t.slug), email=email)
    token = (await post_to_acs(client, posted)).cookies.get("ph_session")
    bearer = {"Authorization": f"Bearer {token}"}

    out = await client.post(f"/api/v1/t/{t.slug}/sso/saml/logout", headers=bearer)
    assert out.status_code == 200, out.text
    redirect = out.json()["redirect"]
    assert redirect.startswith(idp.slo_url + "?SAMLRequest=")
    assert idp.read_logout_request(redirect) == email
    assert (await client.get(f"/api/v1/t/{t.slug}/auth/session", headers=bearer)).status_code == 401


async def test_a_mapping_to_a_role_deleted_since_refuses_the_sign_in(client, make_tenant, api, idp, caplog):
    t = await make_tenant()
    admin = api(t, "admin")
    temp = await admin.ok("POST", "/roles", {"name": "Temporary staff", "permissions": ["packages:read"]})
    await set_up(api, t, idp, attributes={"role": "memberOf"}, role_mapping={"temps": "Temporary staff"})
    await admin.ok("DELETE", f"/roles/{temp['id']}")
    caplog.set_level(logging.WARNING, logger="pigeonhole.sso")
    before = await counts(t.slug)

    posted = idp.login(await start(client, t.slug), email=new_email(), attributes={"memberOf": ["temps"]})
    refused = await post_to_acs(client, posted)
    assert refused.status_code == 401, refused.text
    assert "Temporary staff" in refused.json()["detail"]
    assert refusal_logged(caplog, "Temporary staff")
    assert await counts(t.slug) == before


async def test_another_tenants_admin_reads_and_changes_nothing(client, make_tenant, api, idp, smtp):
    a, b = await make_tenant("a"), await make_tenant("b")
    await set_up(api, a, idp)
    a_admin = api(a, "admin")
    a_user = await a_admin.ok(
        "POST", "/users", {"email": new_email(), "name": "A admin", "role": "enterprise_admin"}
    )
    before = await a_admin.ok("GET", "/sso")
    b_key = {"Authorization": f"Bearer {b.keys['admin']}"}
    base = f"/api/v1/t/{a.slug}/sso"

    # B's key means nothing at A's URLs.
    for method, path, body in [
        ("GET", "", None),
        ("PUT", "/settings", {"require_sso": False}),
        ("PUT", "/saml", {"metadata_xml": idp.metadata()}),
        ("DELETE", "/saml", None),
        ("DELETE", "/oidc", None),
        ("POST", "/saml/logout", None),
    ]:
        response = await client.request(method, base + path, json=body, headers=b_key)
        assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text}"
    # A's user does not exist for B.
    named = await api(b, "admin").put(
        "/sso/settings", json={"require_sso": False, "break_glass_user_ids": [a_user["id"]]}
    )
    assert named.status_code == 404 and a_user["email"] not in named.text
    assert await a_admin.ok("GET", "/sso") == before
    assert (await api(b, "admin").ok("GET", "/sso"))["saml"]["configured"] is False
