"""Carrier codes (E7): a carrier delivers straight to a bank with an access code or its QR form.

An administrator creates a code for a carrier and the banks where it is
valid; the code is shown once (with a QR code of the same secret, for the
kiosk's scanner) and kept as a keyed digest only, like an API key. It may
expire, can be revoked, and records when and where it was last used.

At a bank's kiosk the carrier enters or scans the code: the kiosk gets a
*carrier session*, a short-lived bearer token (``phcs_``...) whose caller has
the ``carrier`` role, bound to that bank: it may receive and deposit packages
there (E1, E2) and nowhere else. A code entered at a bank it is not valid for
is refused naming the bank, and nothing changes; a wrong code counts against
the kiosk and the bank like a wrong pickup code (domain/pickup.py).
See docs/decisions/0025-access-sessions-and-carrier-codes.md.
"""

from __future__ import annotations

import io
import secrets
import uuid
from datetime import datetime, timedelta
from uuid import UUID

import segno

from pigeonhole.api import BASE32_ALPHABET, fold_base32
from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import Bank, CarrierCode, CarrierCodeBank, CarrierSession
from pigeonhole.domain import clock, custody, lockers, packages, pickup
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.errors import DomainError, Forbidden, Invalid, NotFound, Unauthenticated
from pigeonhole.domain.identity import audit, scopes
from pigeonhole.security.secrets import keyed_digest

#: A code is PHC and 16 base32 characters (80 random bits), shown in groups of four.
PREFIX = "PHC"
LENGTH = 16
#: Bearer tokens of carrier sessions.
SESSION_PREFIX = "phcs_"
#: How long a carrier session lasts after the code was entered at the kiosk.
SESSION_MINUTES = 15
#: What a carrier session may do: see its bank, receive and deposit packages there.
SESSION_PERMISSIONS = frozenset({"banks:read", "packages:write"})


def _digest(tenant_id: UUID, normalized: str) -> str:
    return keyed_digest("carrier_code", tenant_id, normalized)


def _session_digest(token: str) -> str:
    return keyed_digest("carrier_session", token)


def new_code() -> str:
    body = "".join(secrets.choice(BASE32_ALPHABET) for _ in range(LENGTH))
    return f"{PREFIX}-" + "-".join(body[i : i + 4] for i in range(0, LENGTH, 4))


def normalize(presented: str) -> str:
    """What the carrier typed or the scanner read, canonical; raise Invalid when it cannot be a code."""
    code = fold_base32(presented or "")
    if not code.startswith(PREFIX) and len(code) == LENGTH:
        code = PREFIX + code
    body = code[len(PREFIX) :]
    if not code.startswith(PREFIX) or len(body) != LENGTH or any(c not in BASE32_ALPHABET for c in body):
        raise Invalid(f"A carrier code looks like {PREFIX}-XXXX-XXXX-XXXX-XXXX (letters and digits)")
    return code


def qr_svg(code: str) -> str:
    """The QR form of the same secret, for the kiosk's scanner."""
    out = io.BytesIO()
    segno.make(code, error="m").save(out, kind="svg", scale=4, xmldecl=False)
    return out.getvalue().decode()


async def _bank_ids(ctx: Ctx, code_ids: list[UUID]) -> dict[UUID, list[UUID]]:
    out: dict[UUID, list[UUID]] = {cid: [] for cid in code_ids}
    if not code_ids:
        return out
    rows = await ctx.scope.select(CarrierCodeBank.carrier_code_id, CarrierCodeBank.bank_id).where(
        CarrierCodeBank.carrier_code_id.is_in(code_ids)
    )
    for r in rows:
        out[r["carrier_code_id"]].append(r["bank_id"])
    return out


def _status(row: dict) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= clock.now():
        return "expired"
    return "active"


def _out(row: dict, banks: list[UUID]) -> dict:
    return {
        **{k: v for k, v in row.items() if k not in ("digest", "tenant_id")},
        "bank_ids": sorted(banks, key=str),
        "status": _status(row),
    }


async def create(
    ctx: Ctx, carrier: str, bank_ids: list[UUID], *, name: str = "", expires_at: datetime | None = None
) -> tuple[dict, str]:
    """A new code for ``carrier`` at ``bank_ids``; returns (row, the code in clear: shown once)."""
    carrier = (carrier or "").strip()
    if not carrier:
        raise Invalid("A carrier code needs the carrier's name")
    if len(carrier) > 100:
        raise Invalid("A carrier name has at most 100 characters")
    wanted = list(dict.fromkeys(bank_ids))
    if not wanted:
        raise Invalid("A carrier code needs at least one locker bank where it is valid")
    for bank_id in wanted:
        await scopes.check_bank(ctx, bank_id)
        await lockers.get_bank(ctx, bank_id)
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise Invalid("expires_at must be in the future")
    code = new_code()
    row = dict(
        id=uuid.uuid4(),
        carrier=carrier,
        name=(name or "").strip()[:200],
        prefix=code[:8],
        digest=_digest(ctx.tenant_id, normalize(code)),
        created_at=now,
        created_by=ctx.actor.label,
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
        last_used_bank_id=None,
    )
    await ctx.scope.insert(CarrierCode, row)
    await ctx.scope.insert(
        CarrierCodeBank,
        *[dict(id=uuid.uuid4(), carrier_code_id=row["id"], bank_id=b) for b in wanted],
    )
    await audit.record(
        ctx,
        "carrier_code.created",
        target_type="carrier_code",
        target_id=row["id"],
        data={"carrier": carrier, "bank_ids": [str(b) for b in wanted]},
    )
    return _out(row, wanted), code


async def _visible(ctx: Ctx, banks: list[UUID]) -> bool:
    allowed = await scopes.allowed_banks(ctx)
    return allowed is None or any(b in allowed for b in banks)


async def list_codes(ctx: Ctx) -> list[dict]:
    rows = await ctx.scope.select(CarrierCode).order_by(CarrierCode.created_at)
    banks = await _bank_ids(ctx, [r["id"] for r in rows])
    return [_out(r, banks[r["id"]]) for r in rows if await _visible(ctx, banks[r["id"]])]


async def revoke(ctx: Ctx, code_id: UUID) -> dict:
    row = await ctx.scope.select(CarrierCode).where(CarrierCode.id == code_id).first()
    banks = (await _bank_ids(ctx, [code_id]))[code_id] if row else []
    if row is None or not await _visible(ctx, banks):
        raise NotFound("Carrier code", code_id)
    if row["revoked_at"] is None:
        now = clock.now()
        await ctx.scope.update(CarrierCode, {CarrierCode.revoked_at: now}).where(CarrierCode.id == code_id)
        await ctx.scope.update(CarrierSession, {CarrierSession.ended_at: now}).where(
            (CarrierSession.carrier_code_id == code_id) & CarrierSession.ended_at.is_null()
        )
        await audit.record(
            ctx, "carrier_code.revoked", target_type="carrier_code", target_id=code_id, data={"carrier": row["carrier"]}
        )
        row = {**row, "revoked_at": now}
    return _out(row, banks)


# --- at the kiosk ---------------------------------------------------------------------------


async def _open(ctx: Ctx, bank_id: UUID, presented: str) -> tuple[DomainError | None, dict | None]:
    bank = await lockers.get_bank(ctx, bank_id)
    if ctx.actor.bank_id is not None and ctx.actor.bank_id != bank_id:
        raise NotFound("Locker bank", bank_id)
    await pickup.check_locks(ctx, bank)
    normalized = normalize(presented)
    row = await ctx.scope.select(CarrierCode).where(CarrierCode.digest == _digest(ctx.tenant_id, normalized)).first()
    if row is None:
        return await pickup.record_failure(ctx, bank, "This carrier code is not valid"), None
    location = await ctx.scope.select(Bank.location_id).where(Bank.id == bank_id).first()
    _, place = await packages.bank_and_location(ctx, bank_id)
    if row["revoked_at"] is not None:
        when = pickup.local_time(row["revoked_at"], place)
        return await pickup.record_failure(ctx, bank, f"This carrier code was revoked on {when}"), None
    now = clock.now()
    if row["expires_at"] is not None and row["expires_at"] <= now:
        when = pickup.local_time(row["expires_at"], place)
        return await pickup.record_failure(ctx, bank, f"This carrier code expired on {when}"), None
    valid_here = await ctx.scope.exists(CarrierCodeBank).where(
        (CarrierCodeBank.carrier_code_id == row["id"]) & (CarrierCodeBank.bank_id == bank_id)
    )
    if not valid_here:
        # A real code at the wrong bank: refused, and nothing changes (not a guess).
        raise Forbidden(f"This carrier code is not valid at locker bank '{bank['name']}'")
    await pickup.good_attempt(ctx)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = now + timedelta(minutes=SESSION_MINUTES)
    if row["expires_at"] is not None and row["expires_at"] < expires:
        expires = row["expires_at"]
    session_id = uuid.uuid4()
    await ctx.scope.insert(
        CarrierSession,
        dict(
            id=session_id,
            carrier_code_id=row["id"],
            bank_id=bank_id,
            digest=_session_digest(token),
            created_at=now,
            expires_at=expires,
            ended_at=None,
        ),
    )
    await ctx.scope.update(
        CarrierCode, {CarrierCode.last_used_at: now, CarrierCode.last_used_bank_id: bank_id}
    ).where(CarrierCode.id == row["id"])
    await custody.append(
        ctx,
        "carrier.session_started",
        bank_id=bank_id,
        data={
            "carrier": row["carrier"],
            "carrier_code_id": str(row["id"]),
            "session_id": str(session_id),
            "expires_at": expires.isoformat(),
            "location_id": str(location["location_id"]) if location else None,
        },
    )
    return None, {
        "token": token,
        "carrier": row["carrier"],
        "carrier_code_id": row["id"],
        "bank_id": bank_id,
        "expires_at": expires,
        "permissions": sorted(SESSION_PERMISSIONS),
    }


async def start_session(tenant: TenantInfo, actor: Actor, bank_id: UUID, code: str, check=None) -> dict:
    """The kiosk takes a carrier code: a short-lived carrier credential for this bank."""
    async with tenant_context(tenant, actor) as ctx:
        if check is not None:
            await check(ctx, bank_id)
        error, session = await _open(ctx, bank_id, code)
    if error is not None:
        raise error
    return session


async def session_actor(tenant: TenantInfo, token: str) -> Actor:
    """The caller behind a carrier session token (web/auth.py), or 401 saying why not."""
    async with tenant_tx(tenant.id, write=False) as scope:
        row = None
        if len(token) < 200:
            row = await scope.select(CarrierSession).where(CarrierSession.digest == _session_digest(token)).first()
        if row is None:
            raise Unauthenticated("This carrier session is not valid; enter the carrier code at the kiosk again")
        code = await scope.select(CarrierCode).where(CarrierCode.id == row["carrier_code_id"]).first()
        bank = await scope.select(Bank.location_id).where(Bank.id == row["bank_id"]).first()
    now = clock.now()
    if row["ended_at"] is not None or code is None or code["revoked_at"] is not None:
        raise Unauthenticated("This carrier session has ended; enter the carrier code at the kiosk again")
    if row["expires_at"] <= now or (code["expires_at"] is not None and code["expires_at"] <= now):
        raise Unauthenticated("This carrier session has expired; enter the carrier code at the kiosk again")
    return Actor(
        name=code["carrier"],
        role="carrier",
        bank_id=row["bank_id"],
        permissions=SESSION_PERMISSIONS,
        scope=scopes.AccessScope(locations=frozenset({bank["location_id"]})),
    )
