"""Single sign-on per tenant: ``/api/v1/t/{tenant}/sso/...``.

Two kinds of routes. The administrator's (permission ``sso:write``, audited)
set up SAML and OpenID Connect and the "require SSO" policy. The protocol
endpoints (SP metadata, login redirects, the SAML assertion consumer and
logout service, the OIDC callback) need no credential: browsers and identity
providers reach them, and what they accept is checked cryptographically. A
successful sign-in sets the ``ph_session`` cookie (as password sign-in does)
and redirects to the page the user started from; the front end then reads
``GET /auth/session`` for the CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect
from msgspec import Meta

from pigeonhole.domain.context import require_tenant, tenant_context
from pigeonhole.domain.errors import Forbidden
from pigeonhole.domain.identity import scopes, sessions, sso_oidc, sso_saml, sso_settings, sso_signin
from pigeonhole.web.auth import Caller, require

ReturnTo = Annotated[str, Meta(max_length=2000)]
RoleName = Annotated[str, Meta(min_length=1, max_length=80)]
FieldMap = dict[Annotated[str, Meta(max_length=40)], Annotated[str, Meta(min_length=1, max_length=300)]]
RoleMap = dict[Annotated[str, Meta(min_length=1, max_length=300)], RoleName]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class SettingsIn(Strict):
    require_sso: bool
    break_glass_user_ids: Annotated[list[UUID], Meta(max_length=20)] = []


class SettingsOut(msgspec.Struct):
    require_sso: bool
    break_glass_user_ids: list[UUID]


class SamlIn(Strict):
    #: The IdP metadata XML, as the identity provider publishes it.
    metadata_xml: Annotated[str, Meta(min_length=1, max_length=sso_saml.MAX_METADATA_BYTES)]
    attributes: FieldMap = {}
    role_mapping: RoleMap = {}
    default_role: RoleName | None = None
    enabled: bool = True


class OidcIn(Strict):
    discovery_url: Annotated[str, Meta(min_length=8, max_length=2000)]
    client_id: Annotated[str, Meta(min_length=1, max_length=300)]
    #: Required the first time; left out, the stored secret is kept.
    client_secret: Annotated[str, Meta(min_length=1, max_length=2000)] | None = None
    scopes: Annotated[list[Annotated[str, Meta(min_length=1, max_length=100)]], Meta(max_length=20)] = (
        msgspec.field(default_factory=lambda: ["openid", "email", "profile"])
    )
    claims: FieldMap = {}
    role_mapping: RoleMap = {}
    default_role: RoleName | None = None
    enabled: bool = True


class LogoutOut(msgspec.Struct):
    #: Where the browser goes next: the IdP's logout page, or null when the IdP has none.
    redirect: str | None


def _meta(request: Request) -> dict[str, Any]:
    client = request.client
    return {
        "ip": client.host if client else "unknown",
        "user_agent": request.headers.get("user-agent", "")[:300],
    }


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or sso_signin.public_base().startswith("https://")


def _signed_in(request: Request, signed: sso_signin.Signed) -> Redirect:
    cookie = Cookie(
        key=sessions.COOKIE,
        value=signed.token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return Redirect(path=signed.return_to, status_code=303, cookies=[cookie])


# --- the administrator's set-up ---------------------------------------------------------


class SsoAdminController(Controller):
    path = "/api/v1/t/{tenant:str}/sso"
    tags = ["single sign-on"]

    @get("/", summary="Single sign-on: the policy, the SAML and OpenID Connect set-up, our URLs")
    async def overview(self, caller: NamedDependency[Caller]) -> dict[str, Any]:
        require(caller, "sso:write")
        scopes.require_whole_tenant(caller, "see the single sign-on set-up")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return await sso_settings.overview(ctx)

    @put("/settings", summary="Require SSO for all staff; name the break-glass administrators")
    async def put_settings(self, caller: NamedDependency[Caller], data: JSONBody[SettingsIn]) -> SettingsOut:
        require(caller, "sso:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            out = await sso_settings.update(
                ctx, require_sso=data.require_sso, break_glass_user_ids=data.break_glass_user_ids
            )
        return SettingsOut(**out)

    @put(
        "/saml",
        summary="Set up SAML: upload the IdP metadata, map attributes and roles",
        description="A malformed metadata document is refused with 400 naming what is wrong; nothing is stored.",
    )
    async def put_saml(self, caller: NamedDependency[Caller], data: JSONBody[SamlIn]) -> dict[str, Any]:
        require(caller, "sso:write")
        scopes.require_whole_tenant(caller, "set up SAML")
        mapping = sso_saml.SamlConfig(
            attributes=data.attributes, role_mapping=data.role_mapping, default_role=data.default_role
        )
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return await sso_saml.configure(
                ctx, metadata_xml=data.metadata_xml, mapping=mapping, enabled=data.enabled
            )

    @delete("/saml", summary="Remove the SAML set-up")
    async def delete_saml(self, caller: NamedDependency[Caller]) -> None:
        require(caller, "sso:write")
        scopes.require_whole_tenant(caller, "remove SAML")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await sso_saml.remove(ctx)

    @put(
        "/oidc",
        summary="Set up OpenID Connect: discovery URL, client id and secret, claim and role mapping",
        description="The discovery document is fetched and checked first; the secret is stored sealed.",
    )
    async def put_oidc(self, caller: NamedDependency[Caller], data: JSONBody[OidcIn]) -> dict[str, Any]:
        require(caller, "sso:write")
        scopes.require_whole_tenant(caller, "set up OpenID Connect")
        settings = sso_oidc.OidcConfig(
            discovery_url=data.discovery_url,
            client_id=data.client_id.strip(),
            scopes=list(data.scopes),
            claims=data.claims,
            role_mapping=data.role_mapping,
            default_role=data.default_role,
        )
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await sso_oidc.check_settings(ctx, settings)
        provider = await sso_oidc.discover(data.discovery_url)  # outside any transaction: it is HTTP
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return await sso_oidc.configure(
                ctx,
                settings=settings,
                client_secret=data.client_secret,
                provider=provider,
                enabled=data.enabled,
            )

    @delete("/oidc", summary="Remove the OpenID Connect set-up")
    async def delete_oidc(self, caller: NamedDependency[Caller]) -> None:
        require(caller, "sso:write")
        scopes.require_whole_tenant(caller, "remove OpenID Connect")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await sso_oidc.remove(ctx)

    @post("/saml/logout", status_code=200, summary="Sign out here and at the SAML identity provider")
    async def saml_logout(self, request: Request, caller: NamedDependency[Caller]) -> Response[LogoutOut]:
        if caller.actor.user_id is None:
            raise Forbidden("This route is for a signed-in user, not an API key.")
        try:
            redirect = await sso_saml.logout_url(
                caller.tenant, caller.actor.user_id, request.query_params.get("return_to")
            )
        except sso_signin.SsoNotConfigured:
            redirect = None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else request.cookies.get(sessions.COOKIE)
        if token:
            await sessions.end(caller.tenant, token)
        response = Response(LogoutOut(redirect=redirect), status_code=200)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response


# --- what browsers and identity providers reach ------------------------------------------------


class SsoProtocolController(Controller):
    path = "/api/v1/t/{tenant:str}/sso"
    tags = ["single sign-on"]
    security = [{}]

    @get(
        "/saml/metadata",
        summary="Our SAML service provider metadata, for the tenant's identity provider",
        media_type="application/samlmetadata+xml",
    )
    async def saml_metadata(self, tenant: FromPath[str]) -> Response[str]:
        info = await require_tenant(tenant)
        return Response(sso_saml.sp_metadata(info), media_type="application/samlmetadata+xml")

    @get("/saml/login", summary="Start a SAML sign-in: redirects to the identity provider", status_code=302)
    async def saml_login(
        self, tenant: FromPath[str], return_to: FromQuery[ReturnTo | None] = None
    ) -> Redirect:
        info = await require_tenant(tenant)
        return Redirect(path=await sso_saml.start_login(info, return_to), status_code=302)

    @post(
        "/saml/acs",
        summary="SAML assertion consumer service (HTTP-POST binding)",
        description="Refused responses answer 401 (400 when unreadable, 413 when too large) and create nothing.",
        status_code=303,
        request_max_body_size=sso_saml.MAX_RESPONSE_BYTES * 2,
    )
    async def saml_acs(self, request: Request, tenant: FromPath[str]) -> Redirect:
        info = await require_tenant(tenant)
        body = await request.body()
        signed = await sso_saml.consume(info, body, _meta(request))
        return _signed_in(request, signed)

    @get("/saml/sls", summary="SAML single logout service (HTTP-Redirect binding)", status_code=302)
    async def saml_sls(self, request: Request, tenant: FromPath[str]) -> Response[Any]:
        info = await require_tenant(tenant)
        query = {k: v for k, v in request.query_params.items()}
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        redirect = await sso_saml.single_logout(info, query, raw_query)
        if redirect:
            return Redirect(path=redirect, status_code=302)
        target = sso_signin.safe_return_to(query.get("RelayState"))
        response: Response[Any] = Redirect(path=target, status_code=302)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    @get("/oidc/login", summary="Start an OpenID Connect sign-in: redirects to the provider", status_code=302)
    async def oidc_login(
        self, request: Request, tenant: FromPath[str], return_to: FromQuery[ReturnTo | None] = None
    ) -> Redirect:
        info = await require_tenant(tenant)
        url, browser = await sso_oidc.start_login(info, return_to)
        cookie = Cookie(
            key=sso_signin.BROWSER_COOKIE,
            value=browser,
            path=f"/api/v1/t/{info.slug}/sso/oidc",
            max_age=int(sso_signin.LOGIN_TTL.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        return Redirect(path=url, status_code=302, cookies=[cookie])

    @get(
        "/oidc/callback",
        summary="OpenID Connect redirect URI: the provider sends the browser back here",
        description="Refused answers (wrong state, nonce, issuer, expired token...) answer 401 and create nothing.",
        status_code=303,
    )
    async def oidc_callback(self, request: Request, tenant: FromPath[str]) -> Redirect:
        info = await require_tenant(tenant)
        query = {k: v for k, v in request.query_params.items()}
        signed = await sso_oidc.callback(
            info, query, request.cookies.get(sso_signin.BROWSER_COOKIE), _meta(request)
        )
        response = _signed_in(request, signed)
        response.delete_cookie(sso_signin.BROWSER_COOKIE, path=f"/api/v1/t/{info.slug}/sso/oidc")
        return response


SSO_CONTROLLERS = [SsoAdminController, SsoProtocolController]
