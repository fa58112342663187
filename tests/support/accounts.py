"""Staff users for tests: add them over the API, and sign them in without a password.

Signing in is the sign-in module's business (tests/test_signin*.py); tests of
roles and scopes start a session for the user directly, the way a sign-in
would at its end, and call the API with it like a browser's bearer token.
"""

from __future__ import annotations

import uuid

from tests.support.api import Api


def email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.test"


async def add_user(admin: Api, *, role: str = "locker_operator", name: str | None = None, **fields) -> dict:
    body = {
        "email": fields.pop("email", None) or email(role),
        "name": name or f"User {uuid.uuid4().hex[:6]}",
        "role": role,
        **fields,
    }
    if "role_id" in fields:
        body.pop("role")
    return await admin.ok("POST", "/users", body)


async def session(slug: str, user_id) -> str:
    from pigeonhole.domain.context import require_tenant
    from pigeonhole.domain.identity import sessions

    tenant = await require_tenant(slug)
    token, _ = await sessions.start(tenant, uuid.UUID(str(user_id)), method="password", request_meta={})
    return token


async def as_user(client, slug: str, user: dict) -> Api:
    """An Api that calls as this user (a session bearer token)."""
    return Api(client, slug, await session(slug, user["id"]))


async def signed_in(client, admin: Api, **kwargs) -> tuple[dict, Api]:
    user = await add_user(admin, **kwargs)
    return user, await as_user(client, admin.slug, user)
