"""SAML 2.0 single sign-on per tenant, with python3-saml (``onelogin.saml2``).

Each tenant is its own service provider: entity id, assertion consumer
service and single logout service all live under ``/api/v1/t/{tenant}/sso/saml``
on the public URL (``PIGEONHOLE_PUBLIC_URL``). The URLs python3-saml checks
responses against (Destination, Recipient, Audience) come from that setting,
never from the request's Host header, which a client controls.

What python3-saml checks for us in strict mode: the XML signature with the
IdP's certificate from the uploaded metadata (an unsigned response is refused,
and only the signed Response/Assertion elements are read, which defeats
signature wrapping), Destination, Recipient, Audience, the validity window,
InResponseTo against the request we sent, and the issuer. What it does not
keep is the set of assertion ids already accepted: :func:`consume` stores each
one until it expires, so a captured response posted twice is refused.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import msgspec
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import SsoAssertion, SsoProvider
from pigeonhole.domain import clock
from pigeonhole.domain.context import TenantInfo
from pigeonhole.domain.errors import Invalid, NotFound
from pigeonhole.domain.identity import audit, roles, sessions, sso_settings, sso_signin
from pigeonhole.domain.identity.sso_signin import SsoMalformed, SsoTooLarge, refuse

log = logging.getLogger("pigeonhole.sso")

PROTOCOL = "saml"
#: A POSTed SAMLResponse larger than this is refused before it is decoded.
MAX_RESPONSE_BYTES = 256 * 1024
#: Uploaded IdP metadata larger than this is refused (federation-wide aggregates are not supported).
MAX_METADATA_BYTES = 512 * 1024
#: How long an accepted assertion id is kept at least (beyond its own NotOnOrAfter).
REPLAY_MARGIN = timedelta(seconds=OneLogin_Saml2_Constants.ALLOWED_CLOCK_DRIFT)
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


class SamlConfig(msgspec.Struct, kw_only=True):
    """What the tenant administrator sets, besides the metadata itself."""

    #: user field -> SAML attribute (Name or FriendlyName). The email falls back to the NameID.
    attributes: dict[str, str] = {}
    #: IdP attribute value -> role name; the first value (in this order) the user has wins.
    role_mapping: dict[str, str] = {}
    #: Role for a user no mapping matches (None: existing users keep theirs, new ones get the tenant default).
    default_role: str | None = None


def urls(tenant: TenantInfo) -> dict[str, str]:
    return {
        "entity_id": sso_signin.endpoint(tenant, "saml/metadata"),
        "metadata": sso_signin.endpoint(tenant, "saml/metadata"),
        "acs": sso_signin.endpoint(tenant, "saml/acs"),
        "sls": sso_signin.endpoint(tenant, "saml/sls"),
        "login": sso_signin.endpoint(tenant, "saml/login"),
    }


def _sp(tenant: TenantInfo) -> dict:
    u = urls(tenant)
    return {
        "entityId": u["entity_id"],
        "assertionConsumerService": {"url": u["acs"], "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST},
        "singleLogoutService": {"url": u["sls"], "binding": OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT},
        "NameIDFormat": EMAIL_FORMAT,
    }


SECURITY = {
    "requestedAuthnContext": False,
    "rejectUnsolicitedResponsesWithInResponseTo": True,
    "wantNameId": True,
    "rejectDeprecatedAlgorithm": True,
    "wantXMLValidation": True,
}


def _settings(tenant: TenantInfo, idp: dict | None, **security) -> OneLogin_Saml2_Settings:
    data = {
        "strict": True,
        "debug": False,
        "sp": _sp(tenant),
        "security": {**SECURITY, **security},
    }
    if idp is None:
        return OneLogin_Saml2_Settings(data, sp_validation_only=True)
    return OneLogin_Saml2_Settings({**data, "idp": idp})


def sp_metadata(tenant: TenantInfo) -> str:
    """The SP metadata the tenant administrator gives their IdP (available before any IdP is set)."""
    meta = _settings(tenant, None).get_sp_metadata()
    return meta.decode() if isinstance(meta, bytes) else meta


def parse_idp_metadata(xml: str) -> dict:
    """The IdP settings from uploaded metadata; a clear 400 naming what is wrong."""
    if not xml or not xml.strip():
        raise SsoMalformed("The IdP metadata is empty: upload the XML your identity provider publishes")
    if len(xml.encode()) > MAX_METADATA_BYTES:
        raise SsoMalformed(f"The IdP metadata is larger than {MAX_METADATA_BYTES // 1024} KB")
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(
            xml, required_sso_binding=OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT
        )
    except Exception as exc:  # lxml syntax errors, forbidden DTDs/entities, ...
        raise SsoMalformed(f"The IdP metadata is not well-formed XML: {exc}") from exc
    idp = parsed.get("idp") or {}
    if not idp.get("entityId"):
        raise SsoMalformed("The IdP metadata has no IDPSSODescriptor with an entityID")
    if not (idp.get("singleSignOnService") or {}).get("url"):
        raise SsoMalformed("The IdP metadata has no SingleSignOnService with the HTTP-Redirect binding")
    if not idp.get("x509cert") and not (idp.get("x509certMulti") or {}).get("signing"):
        raise SsoMalformed("The IdP metadata has no signing certificate (KeyDescriptor use='signing')")
    return idp


def describe(tenant: TenantInfo, row: dict | None) -> dict:
    base = {"configured": row is not None, **urls(tenant)}
    if row is None:
        return base
    config = msgspec.json.decode(row["config"])
    idp = config["idp"]
    return {
        **base,
        "enabled": row["enabled"],
        "idp_entity_id": idp["entityId"],
        "idp_sso_url": idp["singleSignOnService"]["url"],
        "idp_slo_url": (idp.get("singleLogoutService") or {}).get("url"),
        "attributes": config["mapping"]["attributes"],
        "role_mapping": config["mapping"]["role_mapping"],
        "default_role": config["mapping"]["default_role"],
        "updated_at": row["updated_at"],
    }


async def configure(ctx, *, metadata_xml: str, mapping: SamlConfig, enabled: bool = True) -> dict:
    idp = parse_idp_metadata(metadata_xml)
    await roles.ensure_builtin(ctx.scope)
    for role in {*mapping.role_mapping.values(), *([mapping.default_role] if mapping.default_role else [])}:
        if await roles.by_name(ctx.scope, role) is None:
            raise Invalid(f"The role mapping names a role this tenant does not have: '{role}'")
    unknown = set(mapping.attributes) - {"email", "name", "employee_id", "role"}
    if unknown:
        raise Invalid(
            f"Unknown user field(s) in the attribute mapping: {', '.join(sorted(unknown))} "
            "(use email, name, employee_id, role)"
        )
    config = msgspec.json.encode({"idp": idp, "mapping": mapping}).decode()
    row = await sso_signin.save_provider(
        ctx.scope,
        PROTOCOL,
        enabled=enabled,
        config=config,
        metadata_xml=metadata_xml,
        client_secret_sealed=None,
    )
    await audit.record(
        ctx,
        "sso.saml.configured",
        target_type="sso",
        target_id="saml",
        data={"idp_entity_id": idp["entityId"], "enabled": enabled, "mapping": msgspec.to_builtins(mapping)},
    )
    return describe(ctx.tenant, row)


async def remove(ctx) -> None:
    row = await ctx.scope.select(SsoProvider).where(SsoProvider.protocol == PROTOCOL).first()
    if row is None:
        raise NotFound("SSO provider", PROTOCOL)
    others = await ctx.scope.count(SsoProvider).where(
        (SsoProvider.protocol != PROTOCOL) & (SsoProvider.enabled == True)  # noqa: E712
    )
    if (await sso_settings.current(ctx.scope))["require_sso"] and not others:
        raise Invalid("The tenant requires SSO: turn that off before removing its only provider")
    await ctx.scope.delete(SsoProvider).where(SsoProvider.id == row["id"])
    await audit.record(ctx, "sso.saml.removed", target_type="sso", target_id="saml")


# --- the sign-in --------------------------------------------------------------------


def _request_data(url: str, *, get: dict | None = None, post: dict | None = None) -> dict:
    """What python3-saml needs to know about "this" request: always our configured URL."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    return {
        "https": "on" if https else "off",
        "http_host": parts.netloc,
        "script_name": parts.path,
        "get_data": get or {},
        "post_data": post or {},
    }


async def _loaded(tenant: TenantInfo) -> tuple[dict, SamlConfig]:
    row = await sso_signin.provider(tenant, PROTOCOL)
    config = msgspec.json.decode(row["config"])
    return config["idp"], msgspec.convert(config["mapping"], SamlConfig)


async def start_login(tenant: TenantInfo, return_to: str | None) -> str:
    """The IdP URL (HTTP-Redirect binding) carrying our AuthnRequest; the request is remembered."""
    idp, _ = await _loaded(tenant)
    auth = OneLogin_Saml2_Auth(_request_data(urls(tenant)["login"]), _settings(tenant, idp))
    state = secrets.token_urlsafe(32)
    url = auth.login(return_to=state)
    await sso_signin.remember_login(
        tenant, PROTOCOL, state=state, return_to=return_to, request_id=auth.get_last_request_id()
    )
    return url


def _form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise SsoMalformed("The SAML response form is not URL-encoded text") from exc
    return {k: v[0] for k, v in fields.items()}


def _attribute(auth: OneLogin_Saml2_Auth, name: str | None) -> list[str]:
    if not name:
        return []
    values = auth.get_attribute(name) or auth.get_friendlyname_attribute(name) or []
    return [str(v) for v in values if v is not None]


async def consume(tenant: TenantInfo, body: bytes, request_meta: dict) -> sso_signin.Signed:
    """The assertion consumer service: check the response, then provision and open a session."""
    if len(body) > MAX_RESPONSE_BYTES:
        log.warning("SAML sign-in refused for tenant %s: response of %d bytes", tenant.slug, len(body))
        raise SsoTooLarge(
            f"The SAML response is larger than {MAX_RESPONSE_BYTES // 1024} KB; nothing was created"
        )
    form = _form(body)
    raw = form.get("SAMLResponse")
    if not raw:
        raise refuse(tenant, PROTOCOL, "the request carries no SAMLResponse", SsoMalformed)
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise refuse(tenant, PROTOCOL, "the SAMLResponse is not valid base64", SsoMalformed) from exc
    idp, mapping = await _loaded(tenant)
    login = await sso_signin.find_login(tenant, PROTOCOL, form.get("RelayState"))
    auth = OneLogin_Saml2_Auth(_request_data(urls(tenant)["acs"], post=form), _settings(tenant, idp))
    try:
        auth.process_response(request_id=login["request_id"])
    except Exception as exc:  # OneLogin_Saml2_Error, lxml: not XML, a DTD or entities, ...
        raise refuse(tenant, PROTOCOL, f"the SAML response cannot be read ({exc})", SsoMalformed) from exc
    if auth.get_errors():
        raise refuse(tenant, PROTOCOL, auth.get_last_error_reason() or ", ".join(auth.get_errors()))
    if not auth.is_authenticated():
        raise refuse(tenant, PROTOCOL, "the identity provider did not authenticate the user")
    assertion_id = auth.get_last_assertion_id()
    not_on_or_after = auth.get_last_assertion_not_on_or_after()
    await _remember_assertion(tenant, assertion_id, not_on_or_after)
    await sso_signin.use_login(tenant, PROTOCOL, login)

    name_id = auth.get_nameid() or ""
    email = (_attribute(auth, mapping.attributes.get("email")) or [None])[0]
    if email is None and auth.get_nameid_format() == EMAIL_FORMAT:
        email = name_id
    if not email:
        raise refuse(tenant, PROTOCOL, "the assertion carries no email address (map the 'email' attribute)")
    name = (_attribute(auth, mapping.attributes.get("name")) or [""])[0]
    employee_id = (_attribute(auth, mapping.attributes.get("employee_id")) or [None])[0]
    role = sso_signin.pick_role(
        _attribute(auth, mapping.attributes.get("role")), mapping.role_mapping, mapping.default_role
    )
    return await sso_signin.finish(
        tenant,
        PROTOCOL,
        subject=name_id,
        email=email,
        name=name,
        role_name=role,
        attributes={"employee_id": employee_id} if employee_id else {},
        return_to=login["return_to"],
        request_meta=request_meta,
        session_index=auth.get_session_index(),
        name_id_format=auth.get_nameid_format(),
    )


async def _remember_assertion(tenant: TenantInfo, assertion_id: str | None, not_on_or_after) -> None:
    """Refuse an assertion id seen before; keep this one until it can no longer be valid."""
    if not assertion_id:
        raise refuse(tenant, PROTOCOL, "the assertion has no ID")
    now = clock.now()
    until = (
        datetime.fromtimestamp(not_on_or_after, UTC) if not_on_or_after else now + timedelta(hours=24)
    ) + REPLAY_MARGIN
    async with tenant_tx(tenant.id) as scope:
        await scope.delete(SsoAssertion).where(SsoAssertion.expires_at < now)
        seen = await scope.exists(SsoAssertion).where(SsoAssertion.assertion_id == assertion_id)
        if not seen:
            await scope.insert(
                SsoAssertion, dict(id=uuid.uuid4(), assertion_id=assertion_id, expires_at=max(until, now))
            )
    if seen:
        raise refuse(tenant, PROTOCOL, f"the assertion {assertion_id} was already used (replayed response)")


# --- single logout ----------------------------------------------------------------------


async def logout_url(tenant: TenantInfo, user_id, return_to: str | None) -> str | None:
    """The IdP URL carrying our LogoutRequest for this user, or None when the IdP has no SLO."""
    idp, _ = await _loaded(tenant)
    if not (idp.get("singleLogoutService") or {}).get("url"):
        return None
    identity = await sso_signin.identity_of(tenant, PROTOCOL, user_id)
    if identity is None:
        return None
    auth = OneLogin_Saml2_Auth(_request_data(urls(tenant)["sls"]), _settings(tenant, idp))
    return auth.logout(
        return_to=sso_signin.safe_return_to(return_to),
        name_id=identity["subject"],
        session_index=identity["session_index"],
        name_id_format=identity["name_id_format"],
    )


async def single_logout(tenant: TenantInfo, query: dict[str, str], raw_query: str) -> str | None:
    """The single logout service (HTTP-Redirect binding).

    A LogoutRequest from the IdP must be signed (otherwise anyone could sign
    users out); it ends every session of the user it names, and the answer is
    the IdP URL with our LogoutResponse. A LogoutResponse (to our own request)
    is checked and the user goes back to the site (None).
    """
    idp, _ = await _loaded(tenant)
    if "SAMLRequest" not in query and "SAMLResponse" not in query:
        raise refuse(
            tenant, PROTOCOL, "the logout request carries no SAMLRequest or SAMLResponse", SsoMalformed
        )
    data = _request_data(urls(tenant)["sls"], get=query)
    data["query_string"] = raw_query
    data["validate_signature_from_qs"] = True
    auth = OneLogin_Saml2_Auth(data, _settings(tenant, idp, wantMessagesSigned="SAMLRequest" in query))
    try:
        redirect = auth.process_slo(keep_local_session=True)
    except Exception as exc:
        raise refuse(tenant, PROTOCOL, f"the logout message cannot be read ({exc})", SsoMalformed) from exc
    if auth.get_errors():
        raise refuse(tenant, PROTOCOL, f"logout: {auth.get_last_error_reason() or auth.get_errors()}")
    if "SAMLRequest" in query:
        name_id = _logout_name_id(auth)
        user_id = await sso_signin.user_of_subject(tenant, PROTOCOL, name_id) if name_id else None
        if user_id is not None:
            await sessions.end_all(tenant, user_id, reason="signed out at the identity provider")
        log.info("SAML single logout from the IdP: tenant=%s user=%s", tenant.slug, user_id)
        return redirect
    return None


def _logout_name_id(auth: OneLogin_Saml2_Auth) -> str | None:
    xml = auth.get_last_request_xml()
    return OneLogin_Saml2_Logout_Request.get_nameid(xml) if xml else None
