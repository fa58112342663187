"""The tenant's sign-in settings, with their defaults, in one typed place.

They live in the tenant's settings document (``tenant.settings``, set by the
manifest or ``PUT /auth/settings``) under their own names, so an
administrator reads them as ``lockout_attempts``, ``session_idle_minutes`` and
so on. Anything missing takes the default below.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from pigeonhole.domain.context import TenantInfo
from pigeonhole.domain.errors import Invalid


class SigninSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: Failed passwords in a row before the account locks (B2).
    lockout_attempts: Annotated[int, Meta(ge=1, le=100)] = 5
    #: How long a locked account stays locked unless an administrator unlocks it.
    lockout_minutes: Annotated[int, Meta(ge=1, le=100_000)] = 30
    #: Enterprise-wide idle period after which a session ends (B5).
    session_idle_minutes: Annotated[int, Meta(ge=1, le=10_080)] = 30
    #: A session ends after this long whatever the activity.
    session_max_hours: Annotated[int, Meta(ge=1, le=720)] = 12
    password_min_length: Annotated[int, Meta(ge=8, le=128)] = 12
    #: Roles whose users must use a second factor (their first sign-in enrols one).
    mfa_required_roles: list[str] = []
    #: How long "Do not challenge me on this device again" lasts.
    mfa_remember_days: Annotated[int, Meta(ge=1, le=365)] = 30
    welcome_link_days: Annotated[int, Meta(ge=1, le=60)] = 7
    reset_link_minutes: Annotated[int, Meta(ge=5, le=1440)] = 60
    #: Failed sign-ins from one address, across accounts, before that address waits.
    signin_ip_max_failures: Annotated[int, Meta(ge=3, le=10_000)] = 30


FIELDS = SigninSettings.__struct_fields__


def of(tenant: TenantInfo) -> SigninSettings:
    """The tenant's settings; a value the tenant mistyped falls back to the default."""
    raw = {k: v for k, v in (tenant.settings or {}).items() if k in FIELDS}
    try:
        return msgspec.convert(raw, SigninSettings)
    except msgspec.ValidationError:
        values = {}
        for key, value in raw.items():
            try:
                msgspec.convert({key: value}, SigninSettings)
            except msgspec.ValidationError:
                continue
            values[key] = value
        return msgspec.convert(values, SigninSettings)


def validate(changes: dict) -> dict:
    """Check a partial update; the message names the setting that is wrong."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise Invalid(f"Unknown sign-in setting(s): {', '.join(unknown)}")
    try:
        msgspec.convert(changes, SigninSettings)
    except msgspec.ValidationError as exc:
        raise Invalid(f"Invalid sign-in setting: {exc}") from exc
    return changes


def as_dict(settings: SigninSettings) -> dict:
    return msgspec.structs.asdict(settings)
