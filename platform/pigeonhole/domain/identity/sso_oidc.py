"""OpenID Connect single sign-on per tenant, with authlib (authorization code flow, PKCE).

The tenant administrator gives the provider's discovery URL, a client id and
a client secret (sealed with the server secret, never shown again). A sign-in
sends the browser to the provider with a random ``state`` (single use,
remembered as a keyed digest), a ``nonce`` and a PKCE S256 challenge; a cookie
ties the sign-in to the browser that started it, so a callback URL handed to
someone else signs no one in. The callback exchanges the code (with the PKCE
verifier) and accepts the ID token only if its signature verifies with the
provider's published keys (asymmetric algorithms only), its issuer is the
discovered issuer, its audience is our client id, it has not expired and its
nonce is the one we sent. Only then is the user provisioned.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from urllib.parse import quote, urlsplit

import httpx
import msgspec
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from pigeonhole.db.tables import SsoProvider
from pigeonhole.domain import clock
from pigeonhole.domain.context import TenantInfo
from pigeonhole.domain.errors import Invalid, NotFound
from pigeonhole.domain.identity import audit, roles, sso_settings, sso_signin
from pigeonhole.domain.identity.sso_signin import SsoMalformed, refuse
from pigeonhole.security.secrets import constant_time_equal, keyed_digest, seal, unseal

log = logging.getLogger("pigeonhole.sso")

PROTOCOL = "oidc"
WELL_KNOWN = "/.well-known/openid-configuration"
#: Answers from the provider larger than this are refused (discovery, keys, tokens).
MAX_ANSWER_BYTES = 256 * 1024
#: Seconds of clock difference tolerated on exp / iat.
LEEWAY = 60
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
TIMEOUT = httpx.Timeout(10.0)


class OidcConfig(msgspec.Struct, kw_only=True):
    discovery_url: str
    client_id: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["openid", "email", "profile"])
    #: user field -> claim name (defaults: email, name; employee_id and role have none).
    claims: dict[str, str] = msgspec.field(default_factory=dict)
    #: claim value -> role name; the first value (in this order) the user has wins.
    role_mapping: dict[str, str] = msgspec.field(default_factory=dict)
    default_role: str | None = None


def callback_url(tenant: TenantInfo) -> str:
    return sso_signin.endpoint(tenant, "oidc/callback")


def _check_url(url: str, what: str) -> None:
    """https, or http on a loopback address (a provider on the same machine, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        try:
            if parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname).is_loopback:
                return
        except ValueError:
            pass
    raise Invalid(f"The {what} must be an https:// URL (got '{url}')")


async def _get_json(url: str, what: str) -> dict:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise Invalid(f"Could not fetch the provider's {what} from {url}: {exc}") from exc
    if response.status_code != 200:
        raise Invalid(f"The provider's {what} at {url} answered {response.status_code}")
    if len(response.content) > MAX_ANSWER_BYTES:
        raise Invalid(f"The provider's {what} at {url} is larger than {MAX_ANSWER_BYTES // 1024} KB")
    try:
        data = msgspec.json.decode(response.content)
    except msgspec.DecodeError as exc:
        raise Invalid(f"The provider's {what} at {url} is not JSON") from exc
    if not isinstance(data, dict):
        raise Invalid(f"The provider's {what} at {url} is not a JSON object")
    return data


async def discover(discovery_url: str) -> dict:
    """Fetch and check the provider's discovery document (OpenID Connect Discovery 1.0)."""
    url = discovery_url.strip()
    if not url.endswith(WELL_KNOWN):
        url = url.rstrip("/") + WELL_KNOWN
    _check_url(url, "discovery URL")
    doc = await _get_json(url, "discovery document")
    missing = [
        k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)
    ]
    if missing:
        raise Invalid(f"The provider's discovery document lacks {', '.join(missing)}")
    # Discovery 4.3: the issuer is the URL the document was fetched under.
    if doc["issuer"].rstrip("/") + WELL_KNOWN != url:
        raise Invalid(f"The discovery document's issuer '{doc['issuer']}' does not match its URL {url}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        _check_url(doc[key], key.replace("_", " "))
    if "code" not in doc.get("response_types_supported", ["code"]):
        raise Invalid("The provider does not support the authorization code flow")
    return {
        "discovery_url": url,
        "issuer": doc["issuer"],
        "authorization_endpoint": doc["authorization_endpoint"],
        "token_endpoint": doc["token_endpoint"],
        "jwks_uri": doc["jwks_uri"],
        "end_session_endpoint": doc.get("end_session_endpoint"),
        "token_endpoint_auth_methods_supported": doc.get(
            "token_endpoint_auth_methods_supported", ["client_secret_basic"]
        ),
        "id_token_signing_alg_values_supported": doc.get("id_token_signing_alg_values_supported", ["RS256"]),
        "code_challenge_methods_supported": doc.get("code_challenge_methods_supported"),
    }


def describe(tenant: TenantInfo, row: dict | None) -> dict:
    base = {
        "configured": row is not None,
        "redirect_uri": callback_url(tenant),
        "login": sso_signin.endpoint(tenant, "oidc/login"),
    }
    if row is None:
        return base
    config = msgspec.json.decode(row["config"])
    settings = config["settings"]
    return {
        **base,
        "enabled": row["enabled"],
        "discovery_url": settings["discovery_url"],
        "issuer": config["provider"]["issuer"],
        "client_id": settings["client_id"],
        "client_secret_set": bool(row["client_secret_sealed"]),
        "scopes": settings["scopes"],
        "claims": settings["claims"],
        "role_mapping": settings["role_mapping"],
        "default_role": settings["default_role"],
        "updated_at": row["updated_at"],
    }


async def check_settings(ctx, settings: OidcConfig) -> None:
    if not settings.client_id.strip():
        raise Invalid("The client id is empty")
    if "openid" not in settings.scopes:
        raise Invalid("The scopes must include 'openid'")
    unknown = set(settings.claims) - {"email", "name", "employee_id", "role"}
    if unknown:
        raise Invalid(
            f"Unknown user field(s) in the claim mapping: {', '.join(sorted(unknown))} "
            "(use email, name, employee_id, role)"
        )
    await roles.ensure_builtin(ctx.scope)
    for role in {
        *settings.role_mapping.values(),
        *([settings.default_role] if settings.default_role else []),
    }:
        if await roles.by_name(ctx.scope, role) is None:
            raise Invalid(f"The role mapping names a role this tenant does not have: '{role}'")


async def configure(
    ctx, *, settings: OidcConfig, client_secret: str | None, provider: dict, enabled: bool = True
) -> dict:
    """Store the configuration; ``provider`` is the checked discovery (fetched before the transaction)."""
    await check_settings(ctx, settings)
    row = await ctx.scope.select(SsoProvider).where(SsoProvider.protocol == PROTOCOL).first()
    sealed = seal(client_secret) if client_secret else (row or {}).get("client_secret_sealed")
    if not sealed:
        raise Invalid("A client secret is required the first time OpenID Connect is set up")
    settings = msgspec.structs.replace(settings, discovery_url=provider["discovery_url"])
    config = msgspec.json.encode({"settings": settings, "provider": provider}).decode()
    row = await sso_signin.save_provider(
        ctx.scope, PROTOCOL, enabled=enabled, config=config, metadata_xml=None, client_secret_sealed=sealed
    )
    await audit.record(
        ctx,
        "sso.oidc.configured",
        target_type="sso",
        target_id="oidc",
        data={
            "issuer": provider["issuer"],
            "client_id": settings.client_id,
            "client_secret_changed": bool(client_secret),
            "enabled": enabled,
            "role_mapping": settings.role_mapping,
            "default_role": settings.default_role,
        },
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
    await audit.record(ctx, "sso.oidc.removed", target_type="sso", target_id="oidc")


# --- the sign-in --------------------------------------------------------------------


async def _loaded(tenant: TenantInfo) -> tuple[OidcConfig, dict, str]:
    row = await sso_signin.provider(tenant, PROTOCOL)
    config = msgspec.json.decode(row["config"])
    secret = unseal(row["client_secret_sealed"] or "")
    if secret is None:
        raise sso_signin.SsoNotConfigured(
            "The OpenID Connect client secret cannot be read (was the server secret changed?); set it again"
        )
    return msgspec.convert(config["settings"], OidcConfig), config["provider"], secret


def _auth_method(provider: dict) -> str:
    methods = provider.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"


async def _exchange(
    tenant: TenantInfo, settings: OidcConfig, provider: dict, secret: str, code: str, verifier: str
) -> dict:
    """The token request (RFC 6749 4.1.3 with the PKCE verifier); the provider's answer as a dict."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback_url(tenant),
        "code_verifier": verifier,
    }
    auth = None
    if _auth_method(provider) == "client_secret_basic":
        # RFC 6749 2.3.1: both are form-encoded before they go into the Basic header.
        auth = httpx.BasicAuth(quote(settings.client_id, safe=""), quote(secret, safe=""))
    else:
        form.update(client_id=settings.client_id, client_secret=secret)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            response = await client.post(
                provider["token_endpoint"], data=form, auth=auth, headers={"Accept": "application/json"}
            )
    except httpx.HTTPError as exc:
        raise refuse(tenant, PROTOCOL, f"the token endpoint cannot be reached ({exc})") from exc
    if len(response.content) > MAX_ANSWER_BYTES:
        raise refuse(tenant, PROTOCOL, "the token answer is too large", SsoMalformed)
    try:
        data = msgspec.json.decode(response.content)
    except msgspec.DecodeError as exc:
        raise refuse(tenant, PROTOCOL, "the token answer is not JSON", SsoMalformed) from exc
    if response.status_code != 200 or not isinstance(data, dict):
        error = data.get("error_description") or data.get("error") if isinstance(data, dict) else None
        raise refuse(
            tenant, PROTOCOL, f"the token endpoint refused the code ({error or response.status_code})"
        )
    return data


async def start_login(tenant: TenantInfo, return_to: str | None) -> tuple[str, str]:
    """(the provider's authorization URL, the browser-binding cookie value)."""
    settings, provider, secret = await _loaded(tenant)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    url = prepare_grant_uri(
        provider["authorization_endpoint"],
        client_id=settings.client_id,
        response_type="code",
        redirect_uri=callback_url(tenant),
        scope=" ".join(settings.scopes),
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    started = await sso_signin.remember_login(
        tenant,
        PROTOCOL,
        state=state,
        return_to=return_to,
        nonce=nonce,
        code_verifier_sealed=seal(verifier),
        bind_browser=True,
    )
    assert started.browser is not None
    return url, started.browser


async def _keys(tenant: TenantInfo, provider: dict) -> KeySet:
    try:
        data = await _get_json(provider["jwks_uri"], "signing keys")
        return KeySet.import_key_set(data)
    except Invalid as exc:
        raise refuse(tenant, PROTOCOL, exc.message) from exc
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise refuse(tenant, PROTOCOL, f"the provider's signing keys cannot be read ({exc})") from exc


def _claim_values(claims: dict, name: str | None) -> list[str]:
    if not name or name not in claims:
        return []
    value = claims[name]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


async def callback(
    tenant: TenantInfo, query: dict[str, str], browser: str | None, request_meta: dict
) -> sso_signin.Signed:
    """The redirect back from the provider: check everything, then provision and open a session."""
    if any(len(v) > 4096 for v in query.values()):
        raise refuse(tenant, PROTOCOL, "a parameter of the answer is longer than 4 KB", SsoMalformed)
    settings, provider, secret = await _loaded(tenant)
    login = await sso_signin.find_login(tenant, PROTOCOL, query.get("state"))
    if login["used_at"] is not None:
        raise refuse(tenant, PROTOCOL, "this sign-in was already completed")
    if (
        not browser
        or not login["browser_digest"]
        or not constant_time_equal(keyed_digest("sso-browser", browser), login["browser_digest"])
    ):
        raise refuse(tenant, PROTOCOL, "the answer reached a different browser than the one that signed in")
    await sso_signin.use_login(tenant, PROTOCOL, login)
    if query.get("error"):
        described = query.get("error_description") or query["error"]
        raise refuse(tenant, PROTOCOL, f"the provider answered '{described}'")
    code = query.get("code")
    if not code:
        raise refuse(tenant, PROTOCOL, "the answer carries no authorization code", SsoMalformed)
    verifier = unseal(login["code_verifier_sealed"] or "")
    if verifier is None:
        raise refuse(tenant, PROTOCOL, "the sign-in's PKCE verifier cannot be read")
    token = await _exchange(tenant, settings, provider, secret, code, verifier)
    id_token = token.get("id_token")
    if not id_token or not isinstance(id_token, str) or len(id_token) > 16 * 1024:
        raise refuse(tenant, PROTOCOL, "the token answer carries no usable ID token", SsoMalformed)
    claims = await _verified_claims(tenant, settings, provider, id_token, login["nonce"], token)

    email = (_claim_values(claims, settings.claims.get("email", "email")) or [None])[0]
    if not email:
        raise refuse(tenant, PROTOCOL, "the ID token carries no email address (map the 'email' claim)")
    if claims.get("email_verified") is False:
        raise refuse(tenant, PROTOCOL, f"the provider says the email address {email} is not verified")
    name = (_claim_values(claims, settings.claims.get("name", "name")) or [""])[0]
    employee_id = (_claim_values(claims, settings.claims.get("employee_id")) or [None])[0]
    role = sso_signin.pick_role(
        _claim_values(claims, settings.claims.get("role")), settings.role_mapping, settings.default_role
    )
    return await sso_signin.finish(
        tenant,
        PROTOCOL,
        subject=f"{claims['iss']}|{claims['sub']}",
        email=email,
        name=name,
        role_name=role,
        attributes={"employee_id": employee_id} if employee_id else {},
        return_to=login["return_to"],
        request_meta=request_meta,
    )


async def _verified_claims(
    tenant: TenantInfo, settings: OidcConfig, provider: dict, id_token: str, nonce: str | None, token: dict
) -> dict:
    allowed = [a for a in provider.get("id_token_signing_alg_values_supported", ["RS256"]) if a in ALGORITHMS]
    keys = await _keys(tenant, provider)
    try:
        decoded = jwt.decode(id_token, keys, algorithms=allowed or ["RS256"])
    except JoseError as exc:
        raise refuse(tenant, PROTOCOL, f"the ID token's signature does not verify ({exc.error})") from exc
    except ValueError as exc:
        raise refuse(tenant, PROTOCOL, f"the ID token cannot be read ({exc})", SsoMalformed) from exc
    claims = dict(decoded.claims)
    # Clear reasons for the checks that matter most, then authlib's full validation.
    if claims.get("iss") != provider["issuer"]:
        raise refuse(
            tenant,
            PROTOCOL,
            f"the ID token was issued by '{claims.get('iss')}', not by '{provider['issuer']}'",
        )
    if claims.get("nonce") != nonce:
        raise refuse(tenant, PROTOCOL, "the ID token's nonce is not the one this sign-in sent")
    now = int(clock.now().timestamp())
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + LEEWAY <= now:
        raise refuse(tenant, PROTOCOL, "the ID token has expired")
    checked = CodeIDToken(
        claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": provider["issuer"]},
            "aud": {"essential": True, "value": settings.client_id},
            "sub": {"essential": True},
        },
        params={"nonce": nonce, "client_id": settings.client_id, "access_token": token.get("access_token")},
    )
    try:
        checked.validate(now=now, leeway=LEEWAY)
    except ExpiredTokenError as exc:
        raise refuse(tenant, PROTOCOL, "the ID token has expired") from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        raise refuse(tenant, PROTOCOL, f"the ID token's claims are not valid ({exc.description})") from exc
    except JoseError as exc:
        raise refuse(tenant, PROTOCOL, f"the ID token is not valid ({exc.error})") from exc
    return claims
