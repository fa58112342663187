"""Staff users who sign in as a person would: added by an admin, password set from the welcome mail.

Every helper goes through the HTTP API and the real SMTP sink: the welcome
mail's link is read from the message and used, so a test that signs someone
in has also proven the welcome path.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from pigeonhole.domain import clock

from tests.support.smtp import body_text

PASSWORD = "correct horse battery staple"


def new_email(prefix: str = "staff") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.test"


def link_in(message) -> str:
    match = re.search(r"https?://\S+/auth/password/set\?token=\S+", body_text(message))
    assert match, f"no set-password link in the mail:\n{body_text(message)}"
    return match.group(0)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


@dataclass
class Staff:
    slug: str
    id: str
    email: str
    password: str
    role: str


@dataclass
class Session:
    """A signed-in user's credentials, as the sign-in answer gave them."""

    slug: str
    token: str
    csrf: str
    body: dict = field(default_factory=dict)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def add_user(
    admin, smtp, *, role: str = "locker_operator", email: str | None = None
) -> tuple[dict, str]:
    """An admin adds a user; returns (user, the link from their welcome mail)."""
    email = email or new_email()
    user = await admin.ok("POST", "/users", {"email": email, "name": f"Staff {email[:12]}", "role": role})
    [mail] = await smtp.wait_for(email)
    return user, link_in(mail)


async def staff(client, admin, smtp, *, role: str = "locker_operator", password: str = PASSWORD) -> Staff:
    """A user with a password, set from the welcome mail's link."""
    user, link = await add_user(admin, smtp, role=role)
    path = urlsplit(link).path
    response = await client.post(path, json={"token": token_of(link), "password": password})
    assert response.status_code == 200, response.text
    return Staff(slug=admin.slug, id=user["id"], email=user["email"], password=password, role=role)


async def sign_in(client, slug: str, email: str, password: str, **kw):
    return await client.post(
        f"/api/v1/t/{slug}/auth/signin", json={"email": email, "password": password}, **kw
    )


async def session_for(client, person: Staff) -> Session:
    response = await sign_in(client, person.slug, person.email, person.password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "signed_in", body
    return Session(slug=person.slug, token=body["token"], csrf=body["session"]["csrf_token"], body=body)


def totp(secret: str) -> str:
    """What the authenticator app shows now, by the platform's clock."""
    return pyotp.TOTP(secret).at(clock.now())


async def enrolled(client, person: Staff) -> tuple[str, list[str]]:
    """Turn TOTP on for a user through the API; returns (secret, recovery codes)."""
    session = await session_for(client, person)
    prefix = f"/api/v1/t/{person.slug}"
    enrol = await client.post(f"{prefix}/auth/mfa/enrol", headers=session.bearer)
    assert enrol.status_code == 200, enrol.text
    secret = enrol.json()["secret"]
    confirm = await client.post(
        f"{prefix}/auth/mfa/confirm", json={"code": totp(secret)}, headers=session.bearer
    )
    assert confirm.status_code == 200, confirm.text
    # The code used to confirm is spent: the next sign-in needs the next period's.
    clock.advance(timedelta(seconds=30))
    return secret, confirm.json()["recovery_codes"]


# --- for the isolation walk (tests/test_isolation.py) ---------------------------------------

#: Ids the sign-in routes take in their path, besides user_id.
WALK_OWNED = frozenset({"session_id", "device_id"})

#: Bodies for the sign-in routes, in the walk's BODIES format.
WALK_BODIES: dict[tuple[str, str], Callable[[Mapping[str, Any]], dict]] = {
    ("POST", "/auth/signin"): lambda ids: {"email": "walker@example.test", "password": "walking password"},
    ("POST", "/auth/signin/mfa"): lambda ids: {"challenge": "phc_walker", "code": "123456"},
    ("POST", "/auth/signin/mfa/enrol"): lambda ids: {"challenge": "phc_walker"},
    ("POST", "/auth/signin/mfa/enrol/confirm"): lambda ids: {"challenge": "phc_walker", "code": "123456"},
    ("POST", "/auth/password/forgot"): lambda ids: {"email": "walker@example.test"},
    ("POST", "/auth/password/set"): lambda ids: {"token": "phl_walker", "password": "walking password"},
    ("POST", "/auth/password/change"): lambda ids: {
        "current_password": "walking password",
        "new_password": "walking password 2",
    },
    ("POST", "/auth/mfa/confirm"): lambda ids: {"code": "123456"},
    ("POST", "/auth/mfa/disable"): lambda ids: {"password": "walking password"},
    ("POST", "/auth/mfa/recovery-codes"): lambda ids: {"password": "walking password"},
    ("PATCH", "/auth/settings"): lambda ids: {"session_idle_minutes": 45},
}

#: Routes that take no credential (they are how one gets one). Called with
#: another tenant's key they answer as to anyone, and the only rows they may
#: add are failure counters (table signin_throttle): the walk checks these
#: statuses instead of 401 and leaves signin_throttle out of its comparison.
PUBLIC_ROUTES: dict[tuple[str, str], int] = {
    ("POST", "/auth/signin"): 401,
    ("POST", "/auth/signin/mfa"): 401,
    ("POST", "/auth/signin/mfa/enrol"): 401,
    ("POST", "/auth/signin/mfa/enrol/confirm"): 401,
    ("POST", "/auth/password/forgot"): 202,
    ("POST", "/auth/password/set"): 410,
    ("GET", "/auth/password/set"): 400,  # no token in the walk's query
}
PUBLIC_MAY_CHANGE = frozenset({"signin_throttle"})


async def fill_signin_tables(client, t, api, smtp) -> dict[str, list]:
    """A row of tenant ``t`` in every sign-in table; returns the ids the isolation walk needs.

    A user with a password (welcome link), a second factor (recovery codes), a
    session opened in two steps (challenge) on a remembered device, and one
    failed sign-in (throttle counter).
    """
    person = await staff(client, api(t, "admin"), smtp)
    secret, _ = await enrolled(client, person)
    prefix = f"/api/v1/t/{t.slug}"
    first = await sign_in(client, t.slug, person.email, person.password)
    done = await client.post(
        f"{prefix}/auth/signin/mfa",
        json={"challenge": first.json()["challenge"], "code": totp(secret), "remember_device": True},
    )
    assert done.status_code == 200, done.text
    client.cookies.clear()
    assert (await sign_in(client, t.slug, person.email, "not the password")).status_code == 401
    bearer = {"Authorization": f"Bearer {done.json()['token']}"}
    devices = (await client.get(f"{prefix}/auth/devices", headers=bearer)).json()
    return {
        "user_id": [person.id],
        "session_id": [done.json()["session"]["id"]],
        "device_id": [d["id"] for d in devices],
    }
