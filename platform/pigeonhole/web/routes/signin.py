"""Signing in and out, passwords, sessions, second factor: ``/api/v1/t/{tenant}/auth/...``.

Three kinds of routes. Sign-in steps and set-password links need no
credential (they are how one gets a credential) and are throttled instead.
"My" routes act on the signed-in user's own sessions, password, second factor
and trusted devices; they need a user session, not an API key. Administrator
routes act on another user of the tenant (permission ``users:write``,
``users:read`` to look), within the administrator's scope: a user outside it
answers 404 like one that does not exist, and the changing ones refuse (403) a
user who holds a permission the administrator lacks, as editing a user does.

Browsers get the session in the ``ph_session`` cookie (HttpOnly, SameSite=Lax,
Secure over https) and the CSRF token in the body; API clients use the token
from the body as ``Authorization: Bearer``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from pigeonhole.db.tables import Tenant
from pigeonhole.domain.context import TenantInfo, require_tenant, tenant_context
from pigeonhole.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from pigeonhole.domain.identity import audit, mfa, reset, roles, sessions, signin, signin_settings, users
from pigeonhole.web.auth import Caller, require

Email = Annotated[str, Meta(min_length=1, max_length=320)]
Secret = Annotated[str, Meta(min_length=1, max_length=1024)]
Token = Annotated[str, Meta(min_length=1, max_length=512)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class SigninIn(Strict):
    email: Email
    password: Secret


class ChallengeIn(Strict):
    challenge: Token


class CodeIn(Strict):
    challenge: Token
    code: Annotated[str, Meta(max_length=32)] | None = None
    recovery_code: Annotated[str, Meta(max_length=64)] | None = None
    remember_device: bool = False


class EnrolConfirmIn(Strict):
    challenge: Token
    code: Annotated[str, Meta(min_length=1, max_length=32)]


class ForgotIn(Strict):
    email: Email


class SetPasswordIn(Strict):
    token: Token
    password: Secret


class ChangePasswordIn(Strict):
    current_password: Secret
    new_password: Secret


class ConfirmCodeIn(Strict):
    code: Annotated[str, Meta(min_length=1, max_length=32)]


class PasswordIn(Strict):
    password: Secret


class SettingsPatch(Strict):
    lockout_attempts: int | None = None
    lockout_minutes: int | None = None
    session_idle_minutes: int | None = None
    session_max_hours: int | None = None
    password_min_length: int | None = None
    mfa_required_roles: list[str] | None = None
    mfa_remember_days: int | None = None
    welcome_link_days: int | None = None
    reset_link_minutes: int | None = None
    signin_ip_max_failures: int | None = None


class SessionOut(msgspec.Struct):
    id: UUID
    user_id: UUID
    method: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    idle_minutes: int
    ip: str
    user_agent: str
    csrf_token: str | None = None
    current: bool = False


class SigninOut(msgspec.Struct, omit_defaults=True):
    status: Literal["signed_in", "mfa_required", "mfa_enrolment_required"]
    token: str | None = None
    session: SessionOut | None = None
    challenge: str | None = None
    challenge_expires_at: datetime | None = None
    device_token: str | None = None
    recovery_codes: list[str] | None = None


class EnrolmentOut(msgspec.Struct):
    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodesOut(msgspec.Struct):
    recovery_codes: list[str]


class MfaStatusOut(msgspec.Struct):
    enabled: bool
    recovery_codes_left: int
    required_for_role: bool


class DeviceOut(msgspec.Struct):
    id: UUID
    label: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class LinkOut(msgspec.Struct):
    purpose: str
    email: str
    expires_at: datetime
    password_min_length: int


class Message(msgspec.Struct):
    detail: str


class Ended(msgspec.Struct):
    ended: int


class SigninStatusOut(msgspec.Struct):
    user_id: UUID
    has_password: bool
    password_set_at: datetime | None
    locked: bool
    locked_until: datetime | None
    failed_attempts: int
    mfa_enabled: bool
    recovery_codes_left: int
    live_sessions: int


# --- helpers -------------------------------------------------------------------------------


def _meta(request: Request) -> dict[str, Any]:
    client = request.client
    return {
        "ip": client.host if client else "unknown",
        "user_agent": request.headers.get("user-agent", "")[:300],
    }


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _signed_in(request: Request, result: dict[str, Any], status_code: int = 200) -> Response[SigninOut]:
    if result.get("session"):
        result = {**result, "session": {**result["session"], "current": True}}
    body = msgspec.convert(result, SigninOut)
    cookies = []
    if result.get("token"):
        cookies.append(
            Cookie(
                key=sessions.COOKIE,
                value=result["token"],
                path="/",
                httponly=True,
                samesite="lax",
                secure=_secure(request),
            )
        )
    if result.get("device_token"):
        days = signin_settings.of(request.scope["pigeonhole_tenant"]).mfa_remember_days
        cookies.append(
            Cookie(
                key=mfa.DEVICE_COOKIE,
                value=result["device_token"],
                path="/",
                max_age=days * 86400,
                httponly=True,
                samesite="lax",
                secure=_secure(request),
            )
        )
    return Response(body, status_code=status_code, cookies=cookies)


async def _tenant(request: Request) -> TenantInfo:
    tenant = await require_tenant(request.path_params["tenant"])
    request.scope["pigeonhole_tenant"] = tenant
    return tenant


def _user_caller(caller: Caller) -> UUID:
    if caller.actor.user_id is None:
        raise Forbidden("This route is for a signed-in user, not an API key.")
    return caller.actor.user_id


def _session_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip().startswith(sessions.PREFIX):
        return token.strip()
    return request.cookies.get(sessions.COOKIE)


async def _current_session(request: Request, caller: Caller) -> dict | None:
    token = _session_token(request)
    return await sessions.find(caller.tenant, token) if token else None


def _device_token(request: Request) -> str | None:
    return request.headers.get(mfa.DEVICE_HEADER) or request.cookies.get(mfa.DEVICE_COOKIE)


# --- signing in ------------------------------------------------------------------------------


class SigninController(Controller):
    path = "/api/v1/t/{tenant:str}/auth"
    tags = ["signing in"]
    security = [{}]

    @post(
        "/signin",
        status_code=200,
        summary="Sign in with email and password",
        description=(
            "Answers a session (token, CSRF token, cookie) or, when a second factor is on, a challenge "
            "to spend at /auth/signin/mfa. Wrong passwords count: at the tenant's lockout_attempts the "
            "account locks (423, 'This user account is locked. Too many unsuccessful login attempts.')."
        ),
    )
    async def signin(self, request: Request, data: JSONBody[SigninIn]) -> Response[SigninOut]:
        tenant = await _tenant(request)
        result = await signin.password_step(
            tenant, data.email, data.password, meta=_meta(request), device_token=_device_token(request)
        )
        return _signed_in(request, result)

    @post("/signin/mfa", status_code=200, summary="Second step: a TOTP code or a recovery code")
    async def signin_mfa(self, request: Request, data: JSONBody[CodeIn]) -> Response[SigninOut]:
        tenant = await _tenant(request)
        if bool(data.code) == bool(data.recovery_code):
            raise Invalid("Send either 'code' (from your authenticator app) or 'recovery_code'.")
        result = await signin.code_step(
            tenant,
            data.challenge,
            code=data.code,
            recovery_code=data.recovery_code,
            remember_device=data.remember_device,
            meta=_meta(request),
        )
        return _signed_in(request, result)

    @post(
        "/signin/mfa/enrol",
        status_code=200,
        summary="When your role requires a second factor: get a secret and QR code to scan",
    )
    async def signin_enrol(self, request: Request, data: JSONBody[ChallengeIn]) -> EnrolmentOut:
        tenant = await _tenant(request)
        return msgspec.convert(await signin.enrolment_begin(tenant, data.challenge), EnrolmentOut)

    @post(
        "/signin/mfa/enrol/confirm",
        status_code=200,
        summary="Confirm the new second factor with a code: signs you in, shows recovery codes once",
    )
    async def signin_enrol_confirm(
        self, request: Request, data: JSONBody[EnrolConfirmIn]
    ) -> Response[SigninOut]:
        tenant = await _tenant(request)
        result = await signin.enrolment_finish(tenant, data.challenge, data.code, meta=_meta(request))
        return _signed_in(request, result)

    @post(
        "/password/forgot",
        status_code=202,
        summary="Forgot your password? Mails a reset link; the answer is the same for any address",
    )
    async def forgot(self, request: Request, data: JSONBody[ForgotIn]) -> Message:
        tenant = await _tenant(request)
        return Message(detail=await reset.forgot(tenant, data.email, ip=_meta(request)["ip"]))

    @get("/password/set", summary="What a welcome or reset link is for (410 when used or expired)")
    async def describe_link(self, request: Request, token: FromQuery[str]) -> LinkOut:
        tenant = await _tenant(request)
        return msgspec.convert(await reset.describe(tenant, token), LinkOut)

    @post("/password/set", status_code=200, summary="Set a password with a welcome or reset link (once)")
    async def set_password(self, request: Request, data: JSONBody[SetPasswordIn]) -> Message:
        tenant = await _tenant(request)
        await reset.set_password(tenant, data.token, data.password)
        return Message(detail="Your password is set. Sign in with it now.")


# --- the signed-in user ------------------------------------------------------------------------


class MySessionController(Controller):
    path = "/api/v1/t/{tenant:str}/auth"
    tags = ["signing in"]

    @get("/session", summary="The current session (with its idle period)")
    async def current(self, request: Request, caller: NamedDependency[Caller]) -> SessionOut:
        _user_caller(caller)
        row = await _current_session(request, caller)
        if row is None:
            raise Unauthenticated("This request does not carry a session.")
        idle = signin_settings.of(caller.tenant).session_idle_minutes
        token = _session_token(request)
        info = sessions.info(row, idle_minutes=idle, csrf=sessions.csrf_token(token) if token else None)
        return msgspec.convert({**info, "current": True}, SessionOut)

    @post("/signout", status_code=204, summary="Sign out: end this session")
    async def signout(self, request: Request, caller: NamedDependency[Caller]) -> Response[None]:
        _user_caller(caller)
        token = _session_token(request)
        if token:
            await sessions.end(caller.tenant, token)
        response: Response[None] = Response(None, status_code=204)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    @post("/signout-everywhere", status_code=200, summary="Sign out everywhere: end all your sessions")
    async def signout_everywhere(self, request: Request, caller: NamedDependency[Caller]) -> Response[Ended]:
        user_id = _user_caller(caller)
        ended = await sessions.end_all(caller.tenant, user_id, reason="signed out everywhere")
        response = Response(Ended(ended=ended), status_code=200)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    @get("/sessions", summary="Your sessions that are still open")
    async def my_sessions(self, request: Request, caller: NamedDependency[Caller]) -> list[SessionOut]:
        user_id = _user_caller(caller)
        current = await _current_session(request, caller)
        rows = await sessions.live(caller.tenant, user_id)
        return [
            msgspec.convert({**r, "current": bool(current and current["id"] == r["id"])}, SessionOut)
            for r in rows
        ]

    @delete("/sessions/{session_id:uuid}", summary="End one of your sessions (e.g. a lost laptop)")
    async def end_session(self, caller: NamedDependency[Caller], session_id: FromPath[UUID]) -> None:
        if caller.actor.user_id is None:  # an API key has no sessions: none of them is its own
            raise NotFound("Session", session_id)
        user_id = caller.actor.user_id
        await sessions.end_one(caller.tenant, user_id, session_id, reason="ended by the user")

    @post(
        "/password/change",
        status_code=204,
        summary="Change your password; your other sessions end",
    )
    async def change_password(
        self, request: Request, caller: NamedDependency[Caller], data: JSONBody[ChangePasswordIn]
    ) -> None:
        user_id = _user_caller(caller)
        current = await _current_session(request, caller)
        await signin.change_password(
            caller.tenant,
            user_id,
            data.current_password,
            data.new_password,
            keep_session=current["id"] if current else None,
        )

    # --- second factor -----------------------------------------------------------------------

    @get("/mfa", summary="Whether your second factor is on")
    async def mfa_status(self, caller: NamedDependency[Caller]) -> MfaStatusOut:
        user_id = _user_caller(caller)
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            state = await signin.status(ctx.scope, caller.tenant, user_id)
        required = caller.actor.role in signin_settings.of(caller.tenant).mfa_required_roles
        return MfaStatusOut(
            enabled=state["mfa_enabled"],
            recovery_codes_left=state["recovery_codes_left"],
            required_for_role=required,
        )

    @post("/mfa/enrol", status_code=200, summary="Start enrolling an authenticator app: secret and QR code")
    async def mfa_enrol(self, caller: NamedDependency[Caller]) -> EnrolmentOut:
        user_id = _user_caller(caller)
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            user = await users.get(ctx, user_id)
            return msgspec.convert(await mfa.begin_enrolment(ctx.scope, caller.tenant, user), EnrolmentOut)

    @post(
        "/mfa/confirm",
        status_code=200,
        summary="Confirm the enrolment with a code; shows ten recovery codes once",
    )
    async def mfa_confirm(
        self, caller: NamedDependency[Caller], data: JSONBody[ConfirmCodeIn]
    ) -> RecoveryCodesOut:
        user_id = _user_caller(caller)
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            codes = await mfa.confirm_enrolment(ctx.scope, user_id, data.code)
            await audit.record(ctx, "user.mfa_enabled", target_type="user", target_id=user_id)
        return RecoveryCodesOut(recovery_codes=codes)

    @post("/mfa/disable", status_code=204, summary="Turn your second factor off (needs your password)")
    async def mfa_disable(self, caller: NamedDependency[Caller], data: JSONBody[PasswordIn]) -> None:
        user_id = _user_caller(caller)
        if caller.actor.role in signin_settings.of(caller.tenant).mfa_required_roles:
            raise Forbidden(
                f"Your role '{caller.actor.role}' requires a second factor; it cannot be turned off."
            )
        if not await signin.check_password(caller.tenant, user_id, data.password):
            raise Forbidden("The password is not correct; nothing was changed.")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await mfa.disable(ctx.scope, user_id, by=caller.actor.label)
            await audit.record(ctx, "user.mfa_disabled", target_type="user", target_id=user_id)

    @post(
        "/mfa/recovery-codes",
        status_code=200,
        summary="Replace your recovery codes (needs your password); the old ones stop working",
    )
    async def mfa_recovery_codes(
        self, caller: NamedDependency[Caller], data: JSONBody[PasswordIn]
    ) -> RecoveryCodesOut:
        user_id = _user_caller(caller)
        if not await signin.check_password(caller.tenant, user_id, data.password):
            raise Forbidden("The password is not correct; nothing was changed.")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            if not mfa.enabled(await mfa.credential(ctx.scope, user_id)):
                raise Conflict("Your second factor is off: there are no recovery codes to replace.")
            codes = await mfa.new_recovery_codes(ctx.scope, user_id)
        return RecoveryCodesOut(recovery_codes=codes)

    @get("/devices", summary="Devices where you asked not to be challenged again")
    async def my_devices(self, caller: NamedDependency[Caller]) -> list[DeviceOut]:
        user_id = _user_caller(caller)
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return msgspec.convert(await mfa.devices(ctx.scope, user_id), list[DeviceOut])

    @delete("/devices/{device_id:uuid}", summary="Forget a trusted device: it is challenged again")
    async def forget_device(self, caller: NamedDependency[Caller], device_id: FromPath[UUID]) -> None:
        if caller.actor.user_id is None:  # an API key has no trusted devices
            raise NotFound("Trusted device", device_id)
        user_id = caller.actor.user_id
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await mfa.revoke_device(ctx.scope, user_id, device_id, by=caller.actor.label)


# --- administrators ------------------------------------------------------------------------------


class SigninAdminController(Controller):
    path = "/api/v1/t/{tenant:str}/auth"
    tags = ["signing in"]

    @get("/users/{user_id:uuid}", summary="A user's sign-in state: password, lockout, second factor")
    async def user_status(self, caller: NamedDependency[Caller], user_id: FromPath[UUID]) -> SigninStatusOut:
        require(caller, "users:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await users.get(ctx, user_id)
            state = await signin.status(ctx.scope, caller.tenant, user_id)
        live = await sessions.live(caller.tenant, user_id)
        return msgspec.convert({**state, "live_sessions": len(live)}, SigninStatusOut)

    @post(
        "/users/{user_id:uuid}/unlock", status_code=200, summary="Unlock an account locked by failed sign-ins"
    )
    async def unlock(self, caller: NamedDependency[Caller], user_id: FromPath[UUID]) -> Message:
        require(caller, "users:write")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            user = await users.manageable(ctx, user_id)
        was_locked = await signin.unlock(caller.tenant, user_id)
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await audit.record(
                ctx, "user.unlocked", target_type="user", target_id=user_id, data={"was_locked": was_locked}
            )
        if not was_locked:
            return Message(detail=f"{user['email']} was not locked.")
        return Message(detail=f"{user['email']} is unlocked and can sign in again.")

    @delete("/users/{user_id:uuid}/sessions", status_code=200, summary="End every session of a user")
    async def end_sessions(self, caller: NamedDependency[Caller], user_id: FromPath[UUID]) -> Ended:
        require(caller, "users:write")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await users.manageable(ctx, user_id)
        ended = await sessions.end_all(caller.tenant, user_id, reason=f"ended by {caller.actor.label}")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await audit.record(
                ctx, "user.sessions_ended", target_type="user", target_id=user_id, data={"ended": ended}
            )
        return Ended(ended=ended)

    @get("/users/{user_id:uuid}/devices", summary="A user's trusted devices")
    async def user_devices(self, caller: NamedDependency[Caller], user_id: FromPath[UUID]) -> list[DeviceOut]:
        require(caller, "users:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await users.get(ctx, user_id)
            return msgspec.convert(await mfa.devices(ctx.scope, user_id), list[DeviceOut])

    @delete("/users/{user_id:uuid}/devices/{device_id:uuid}", summary="Revoke a user's trusted device")
    async def revoke_device(
        self, caller: NamedDependency[Caller], user_id: FromPath[UUID], device_id: FromPath[UUID]
    ) -> None:
        require(caller, "users:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await users.manageable(ctx, user_id)
            await mfa.revoke_device(ctx.scope, user_id, device_id, by=caller.actor.label)
            await audit.record(
                ctx,
                "user.device_revoked",
                target_type="user",
                target_id=user_id,
                data={"device_id": str(device_id)},
            )

    @delete(
        "/users/{user_id:uuid}/mfa",
        status_code=204,
        summary="Turn off a user's second factor (lost phone); they enrol again at next sign-in if required",
    )
    async def reset_mfa(self, caller: NamedDependency[Caller], user_id: FromPath[UUID]) -> None:
        require(caller, "users:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await users.manageable(ctx, user_id)
            await mfa.disable(ctx.scope, user_id, by=caller.actor.label)
            await audit.record(ctx, "user.mfa_reset", target_type="user", target_id=user_id)

    @get("/settings", summary="The tenant's sign-in settings")
    async def get_settings(self, caller: NamedDependency[Caller]) -> dict[str, Any]:
        require(caller, "settings:write")
        return signin_settings.as_dict(signin_settings.of(caller.tenant))

    @patch("/settings", summary="Change sign-in settings (lockout, idle period, MFA for roles...)")
    async def patch_settings(
        self, caller: NamedDependency[Caller], data: JSONBody[SettingsPatch]
    ) -> dict[str, Any]:
        require(caller, "settings:write")
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        signin_settings.validate(changes)
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            if changes.get("mfa_required_roles"):
                await roles.ensure_builtin(ctx.scope)
                unknown = [
                    n for n in changes["mfa_required_roles"] if await roles.by_name(ctx.scope, n) is None
                ]
                if unknown:
                    raise Invalid(f"mfa_required_roles: no role named {', '.join(repr(n) for n in unknown)}")
            row = await Tenant.select(Tenant.settings).where(Tenant.id == caller.tenant.id).first()
            current = msgspec.json.decode(row["settings"])
            current.update(changes)
            await Tenant.update({Tenant.settings: msgspec.json.encode(current).decode()}).where(
                Tenant.id == caller.tenant.id
            )
            await audit.record(
                ctx, "signin.settings_changed", target_type="tenant", target_id=caller.tenant.id, data=changes
            )
        return signin_settings.as_dict(
            signin_settings.of(TenantInfo(**{**caller.tenant.__dict__, "settings": current}))
        )


SIGNIN_CONTROLLERS = [SigninController, MySessionController, SigninAdminController]
