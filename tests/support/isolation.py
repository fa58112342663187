"""Machinery for walking every tenant endpoint with another tenant's credentials.

The walk takes its list of endpoints from the Litestar application itself, so
a new route is walked the day it is added; a route whose path parameter or
body this module cannot fill fails the walk instead of being skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Litestar
from litestar.constants import RESERVED_KWARGS
from litestar.routes import HTTPRoute

from tests.support import signin
from tests.support.directory_io import paused_schedule

PREFIX = "/api/v1/t/{tenant}"

#: Parameters naming a row of the tenant. A request from another tenant that
#: carries one of these (in its path or its body) must be answered 404: the
#: row does not exist for that tenant.
OWNED = frozenset(
    {"bank_id", "compartment_id", "package_id", "division_id", "location_id", "key_id", "user_id", "role_id"}
    # directory (#6)
    | {"contact_id", "department_id", "field_id"}
    # directory imports (#6): import runs and SFTP schedules
    | {"import_id", "schedule_id"}
    # the edge (#4): site agents, enrolment tokens, alerts, door commands
    | {"agent_id", "token_id", "alert_id", "command_id"}
    # signing in (#3): a user's sessions and trusted devices
    | signin.WALK_OWNED
    # access (#5, E7): carrier codes
    | {"carrier_code_id"}
    # messages (#5): a message's delivery status
    | {"notification_id"}
    # reservations and storage (#5, G1-G5)
    | {"reservation_id"}
)

#: Parameters that are not a tenant's rows: the slug is the tenant itself, a
#: door number means something only with its bank, a plugin name is the
#: platform's catalogue and a code is a secret presented, not a key looked up.
COORDINATES = frozenset({"tenant", "door", "name", "code", "tracking_id"})
#: messages (#5): an event name and a language are the catalog's, not rows of a tenant.
COORDINATES |= {"event", "language"}

#: The only handlers not walked: Litestar answers OPTIONS itself, from the
#: route table, without running any code of ours.
AUTO_OPTIONS_MODULE = "litestar.routes.http"

#: WebSocket routes cannot be walked over HTTP. Each one listed here has its own
#: test with another tenant's key, named beside it; any other fails the walk.
WEBSOCKETS_TESTED_ELSEWHERE = {
    "/api/v1/t/{tenant}/agent": "tests/test_agent_process.py::test_only_agent_keys_of_the_tenant_may_connect",
}


def _unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


#: A plausible, valid body for every route that takes one, keyed by
#: (method, path under the tenant prefix). Each builder reads the ids it needs
#: from the mapping it is given, so the walk knows which ids the body carries.
BODIES: dict[tuple[str, str], Callable[[Mapping[str, Any]], dict]] = {
    ("PUT", "/"): lambda ids: {"name": _unique("Renamed")},
    ("POST", "/divisions"): lambda ids: {"name": _unique("Division")},
    ("PATCH", "/divisions/{division_id}"): lambda ids: {"name": _unique("Division")},
    ("POST", "/locations"): lambda ids: {"division_id": ids["division_id"], "name": _unique("Location")},
    ("PATCH", "/locations/{location_id}"): lambda ids: {
        "division_id": ids["division_id"],
        "name": _unique("Location"),
    },
    ("POST", "/banks"): lambda ids: {
        "location_id": ids["location_id"],
        "name": _unique("Bank"),
        "driver": "simulator",
        "compartments": [{"door": 1, "size": "m"}],
    },
    ("PATCH", "/banks/{bank_id}"): lambda ids: {
        "name": _unique("Bank"),
        "settings": {"kiosk_max_failures": 1},
    },
    ("POST", "/banks/{bank_id}/compartments"): lambda ids: {"compartments": [{"door": 900, "size": "s"}]},
    ("POST", "/banks/{bank_id}/compartments/{compartment_id}/service"): lambda ids: {
        "in_service": False,
        "note": "isolation walk",
    },
    ("POST", "/banks/{bank_id}/pickup"): lambda ids: {"code": ids["code"], "package_id": ids["package_id"]},
    ("POST", "/packages"): lambda ids: {
        "tracking_id": _unique("TRK").replace(" ", "-"),
        "carrier": "UPS",
        "size": "s",
        "recipient": {"name": "Walker", "email": "walker@example.test"},
        "bank_id": ids["bank_id"],
    },
    ("POST", "/packages/{package_id}/deposit"): lambda ids: {"bank_id": ids["bank_id"]},
    # deposit (#5): reserve ahead (E3), dedicate a compartment (D5; {} clears it)
    ("POST", "/banks/{bank_id}/reservations"): lambda ids: {
        "package_id": ids["package_id"],
        "compartment_id": ids["compartment_id"],
    },
    ("PATCH", "/banks/{bank_id}/compartments/{compartment_id}"): lambda ids: {},
    ("PUT", "/plugins/{name}"): lambda ids: {"config": {}},
    ("POST", "/api-keys"): lambda ids: {"name": _unique("key"), "role": "kiosk", "bank_id": ids["bank_id"]},
    ("PUT", "/ext/simulator/banks/{bank_id}/doors/{door}/fault"): lambda ids: {"fault": "jammed"},
    # the edge (#4)
    ("POST", "/agents/enrolment-tokens"): lambda ids: {"name": _unique("site"), "bank_id": ids["bank_id"]},
    ("POST", "/alerts/{alert_id}/acknowledge"): lambda ids: {"note": "isolation walk"},
    ("POST", "/commands/{command_id}/resolve"): lambda ids: {"door_opened": True, "note": "isolation walk"},
    ("POST", "/banks/{bank_id}/compartments/{compartment_id}/open"): lambda ids: {"reason": "isolation walk"},
    # identity (#3): users and roles
    ("POST", "/users"): lambda ids: {
        "email": f"walker-{uuid.uuid4().hex[:8]}@example.test",
        "name": _unique("Walker"),
        "role": "carrier",
    },
    ("PATCH", "/users/{user_id}"): lambda ids: {"name": _unique("Walker")},
    ("POST", "/roles"): lambda ids: {"name": _unique("Role"), "permissions": ["packages:read"]},
    ("PATCH", "/roles/{role_id}"): lambda ids: {"name": _unique("Role")},
    # directory (#6): contacts, departments, custom fields
    ("POST", "/directory/contacts"): lambda ids: {
        "name": _unique("Contact"),
        "department_ids": [ids["department_id"]],
    },
    ("PATCH", "/directory/contacts/{contact_id}"): lambda ids: {
        "name": _unique("Contact"),
        "department_ids": [ids["department_id"]],
        "active": False,
    },
    ("POST", "/directory/departments"): lambda ids: {
        "name": _unique("Department"),
        "key_contact_id": ids["contact_id"],
        "member_ids": [ids["contact_id"]],
    },
    ("PATCH", "/directory/departments/{department_id}"): lambda ids: {
        "name": _unique("Department"),
        "key_contact_id": ids["contact_id"],
    },
    ("PUT", "/directory/departments/{department_id}/members"): lambda ids: {
        "contact_ids": [ids["contact_id"]]
    },
    ("POST", "/directory/departments/{department_id}/members"): lambda ids: {
        "add": [ids["contact_id"]],
        "remove": [ids["contact_id"]],
    },
    ("POST", "/directory/custom-fields"): lambda ids: {
        "screen": "contacts",
        "key": f"walk_{uuid.uuid4().hex[:8]}",
        "label": _unique("Field"),
        "type": "text",
    },
    ("PATCH", "/directory/custom-fields/{field_id}"): lambda ids: {
        "label": _unique("Field"),
        "required": True,
    },
    # directory imports (#6): a schedule pointing at a port where nothing listens, never polled by itself
    ("POST", "/directory/import-schedules"): lambda ids: paused_schedule(),
    ("PATCH", "/directory/import-schedules/{schedule_id}"): lambda ids: {"interval_minutes": 1440},
    # single sign-on (#3): bodies the handlers refuse or that change only the caller's own tenant
    ("PUT", "/sso/settings"): lambda ids: {"require_sso": False, "break_glass_user_ids": [ids["user_id"]]},
    ("PUT", "/sso/saml"): lambda ids: {"metadata_xml": "<not-idp-metadata/>"},
    ("PUT", "/sso/oidc"): lambda ids: {
        "discovery_url": "http://127.0.0.1:9/",
        "client_id": "walker",
        "client_secret": "walker",
    },
    # partner API (#5, J2): pre-advise, arrival, redelivery, returns, exchanges; drop-off and collection
    ("POST", "/partner/deliveries"): lambda ids: {
        "tracking_id": _unique("PRE").replace(" ", "-"),
        "carrier": "UPS",
        "recipient": {"name": "Walker", "email": "walker@example.test"},
        "bank_id": ids["bank_id"],
    },
    ("POST", "/partner/deliveries/arrive"): lambda ids: {
        "tracking_id": _unique("PRE").replace(" ", "-"),
        "bank_id": ids["bank_id"],
    },
    ("POST", "/partner/packages/{package_id}/redelivery"): lambda ids: {"bank_id": ids["bank_id"]},
    ("POST", "/partner/returns"): lambda ids: {
        "bank_id": ids["bank_id"],
        "carrier": "UPS",
        "recipient": {"name": "Walker", "email": "walker@example.test"},
    },
    ("POST", "/partner/exchanges"): lambda ids: {
        "bank_id": ids["bank_id"],
        "delivery": {"tracking_id": _unique("EXC").replace(" ", "-"), "carrier": "UPS"},
        "recipient": {"name": "Walker", "email": "walker@example.test"},
    },
    ("POST", "/banks/{bank_id}/dropoff"): lambda ids: {"code": ids["code"]},
    ("POST", "/banks/{bank_id}/returns/collect"): lambda ids: {"package_id": ids["package_id"]},
    # access (#5): forgotten codes (F5), carrier codes and carrier sessions (E7)
    ("POST", "/recipient/new-code"): lambda ids: {"tracking_id": "TRK-WALK", "email": "walker@example.test"},
    ("POST", "/carrier-codes"): lambda ids: {"carrier": "Walker Express", "bank_ids": [ids["bank_id"]]},
    ("POST", "/banks/{bank_id}/carrier-sessions"): lambda ids: {"code": ids["code"]},
    # signing in (#3)
    **signin.WALK_BODIES,
    # messages (#5): the tenant's wording, and a preview (changes nothing)
    ("PUT", "/message-templates/{event}/{language}"): lambda ids: {
        "subject": "Walk $tracking_id",
        "body": "Walker wording $name",
    },
    ("POST", "/message-templates/preview"): lambda ids: {"event": "package.ready", "language": "en"},
    # reservations and storage (#5, G1-G5)
    ("POST", "/storage/reservations"): lambda ids: {
        "bank_id": ids["bank_id"],
        "size": "m",
        "mode": "flexible",
        "hours": 2,
        "contact_id": ids["contact_id"],
    },
    ("POST", "/storage/reservations/{reservation_id}/extend"): lambda ids: {"hours": 1},
    ("POST", "/storage/reservations/{reservation_id}/open"): lambda ids: {},
    ("POST", "/banks/{bank_id}/storage/open"): lambda ids: {"code": ids["code"]},
}

#: Routes that take no credential, by design, and what another tenant's
#: credential gets from them at A's URL instead of 401 (an int: that status;
#: None: any answer but a 5xx). Either way the answer must show nothing of A's
#: and change nothing of A's (but the tables in PUBLIC_MAY_CHANGE).
PUBLIC_ROUTES: dict[tuple[str, str], int | None] = {
    **signin.PUBLIC_ROUTES,
    # single sign-on (#3): what browsers and identity providers reach
    ("GET", "/sso/saml/metadata"): None,
    ("GET", "/sso/saml/login"): None,
    ("POST", "/sso/saml/acs"): None,
    ("GET", "/sso/saml/sls"): None,
    ("GET", "/sso/oidc/login"): None,
    ("GET", "/sso/oidc/callback"): None,
    # access (#5, F5): the recipient app asks for a new code without signing in; the answer is the
    # same whatever was asked (no enumeration), the rate limit counts in signin_throttle.
    ("POST", "/recipient/new-code"): 202,
}

#: Tables a public route may add to whoever calls it (failure counters).
PUBLIC_MAY_CHANGE = signin.PUBLIC_MAY_CHANGE


class _Recorder(Mapping[str, Any]):
    """A mapping that remembers which keys were read (to learn what a body carries)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.values[key]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # Litestar's path format: /api/v1/t/{tenant}/banks/{bank_id}
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body: Callable[[Mapping[str, Any]], dict] | None
    body_keys: frozenset[str]
    handler: str

    @property
    def relative(self) -> str:
        return self.path[len(PREFIX) :] or "/"

    @property
    def keys(self) -> tuple[str, ...]:
        """The ids the request carries, in its path and in its body."""
        return tuple(sorted({p for p in self.path_params if p != "tenant"} | self.body_keys))

    @property
    def owned(self) -> tuple[str, ...]:
        return tuple(k for k in self.keys if k in OWNED)

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.handler})"


def tenant_endpoints(app: Litestar, sample_ids: Mapping[str, Any]) -> list[Endpoint]:
    """Every (method, path) the app serves under the tenant prefix.

    Raises AssertionError naming each route the walk cannot fill: an unknown
    path parameter, a body without a builder, a websocket route.
    """
    problems: list[str] = []
    found: list[Endpoint] = []
    used_bodies: set[tuple[str, str]] = set()
    for route in app.routes:
        if not route.path_format.startswith(PREFIX):
            continue
        if not isinstance(route, HTTPRoute):
            if route.path_format in WEBSOCKETS_TESTED_ELSEWHERE:
                continue
            problems.append(f"{route.path}: a {type(route).__name__} is not walked; teach the walk about it")
            continue
        for handler in route.route_handlers:
            if handler.fn.__module__ == AUTO_OPTIONS_MODULE:
                continue
            params = set(handler.parsed_fn_signature.parameters)
            dependencies = set(handler.resolve_dependencies())
            path_params = tuple(route.path_parameters)
            query = tuple(sorted(params - set(path_params) - dependencies - RESERVED_KWARGS))
            for p in path_params:
                if p not in OWNED and p not in COORDINATES:
                    problems.append(f"{route.path}: no filler for path parameter '{p}'")
            for method in sorted(handler.http_methods):
                relative = route.path_format[len(PREFIX) :] or "/"
                body = None
                body_keys: frozenset[str] = frozenset()
                if "data" in params:
                    body = BODIES.get((method, relative))
                    if body is None:
                        problems.append(f"{method} {route.path}: no body in BODIES")
                        continue
                    used_bodies.add((method, relative))
                    recorder = _Recorder(sample_ids)
                    body(recorder)
                    body_keys = frozenset(recorder.read)
                    unknown = body_keys - OWNED - COORDINATES
                    if unknown:
                        problems.append(f"{method} {route.path}: body reads unknown ids {sorted(unknown)}")
                found.append(
                    Endpoint(
                        method=method,
                        path=route.path_format,
                        path_params=path_params,
                        query_params=query,
                        body=body,
                        body_keys=body_keys,
                        handler=f"{handler.fn.__module__}.{handler.handler_name}",
                    )
                )
    stale = set(BODIES) - used_bodies
    if stale:
        problems.append(f"BODIES names routes that no longer exist: {sorted(stale)}")
    assert not problems, "the isolation walk cannot cover:\n" + "\n".join(problems)
    return found


def combinations(endpoint: Endpoint, values: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of the given values for the ids this endpoint carries."""
    keys = list(endpoint.keys)
    for combo in itertools.product(*(values[k] for k in keys)):
        yield dict(zip(keys, combo, strict=True))


@dataclass
class Request:
    method: str
    url: str
    params: dict[str, str]
    body: dict | None

    def text(self) -> str:
        return " ".join([self.url, json.dumps(self.params), json.dumps(self.body, default=str)])

    def __str__(self) -> str:
        extra = f" body={json.dumps(self.body, default=str)}" if self.body is not None else ""
        query = f" query={self.params}" if self.params else ""
        return f"{self.method} {self.url}{query}{extra}"


def build(endpoint: Endpoint, slug: str, ids: Mapping[str, Any], query: Mapping[str, Any]) -> Request:
    path_values = {p: ids[p] for p in endpoint.path_params if p != "tenant"}
    url = endpoint.path.format(tenant=slug, **{k: str(v) for k, v in path_values.items()})
    params = {q: str(query[q]) for q in endpoint.query_params if q in query}
    body = json.loads(json.dumps(endpoint.body(ids), default=str)) if endpoint.body else None
    return Request(endpoint.method, url, params, body)


async def send(client, request: Request, key: str):
    return await client.request(
        request.method,
        request.url,
        params=request.params,
        json=request.body,
        headers={"Authorization": f"Bearer {key}"},
    )


def leaks(response, request: Request, needles: set[str]) -> list[str]:
    """Which of another tenant's values the response shows, beyond what the request itself said."""
    said = request.text().lower()
    shown = (response.text + " " + " ".join(response.headers.values())).lower()
    return sorted(n for n in needles if n.lower() not in said and n.lower() in shown)


# --- a tenant's rows, as the database holds them ------------------------------------


def tenant_tables():
    from pigeonhole.db.tables import ALL_TABLES

    return [t for t in ALL_TABLES if any(c._meta.name == "tenant_id" for c in t._meta.columns)]


async def snapshot(tenant_id: UUID) -> dict[str, list[dict]]:
    """Every row the tenant owns, table by table, plus its tenant row."""
    from pigeonhole.db.engine import tenant_tx
    from pigeonhole.db.tables import Tenant

    out: dict[str, list[dict]] = {}
    async with tenant_tx(tenant_id, write=False) as scope:
        out["tenant"] = await Tenant.select().where(Tenant.id == tenant_id)
        for table in tenant_tables():
            rows = await scope.select(table)
            out[table._meta.tablename] = sorted(rows, key=lambda r: str(r["id"]))
    return out


#: Text columns whose values identify a tenant's rows to a reader.
NEEDLE_COLUMNS = {
    "tenant": ("slug", "name"),
    "division": ("name",),
    "location": ("name", "address"),
    "bank": ("name",),
    "package": ("tracking_id", "recipient_name", "recipient_email", "recipient_phone"),
    "api_key": ("name", "prefix", "digest"),
    "app_user": ("email", "name", "employee_id"),
    "role": ("name",),
    "credential": ("digest",),
    # directory (#6) and its imports
    "contact": ("name", "email", "phone", "personnel_id", "employee_id"),
    "department": ("name",),
    "custom_field": ("label",),
    "import_schedule": ("name", "username", "private_key", "remote_path"),
    "import_run": ("filename",),
    # the edge (#4)
    "enrolment_token": ("name", "prefix", "digest"),
    "site_agent": ("name",),
    # signing in (#3): no hash or secret of A's may ever show
    "user_credential": ("password_hash", "totp_secret"),
    "user_session": ("digest",),
    "signin_link": ("digest",),
    "mfa_challenge": ("digest",),
    "mfa_recovery_code": ("digest",),
    "trusted_device": ("label",),
    # access (#5, E7)
    "carrier_code": ("name", "prefix", "digest"),
    "carrier_session": ("digest",),
    # messages (#5)
    "message_template": ("body",),
}


def needles(mine: dict[str, list[dict]], theirs: dict[str, list[dict]]) -> set[str]:
    """Strings that only the tenant's own data contains: every id, and its distinctive names.

    Names the other tenant also has (both made from one manifest) are left
    out: seeing them proves nothing.
    """
    found: set[str] = set()
    for rows in mine.values():
        for row in rows:
            found.update(str(v) for v in row.values() if isinstance(v, UUID))
    other = {str(v) for rows in theirs.values() for row in rows for v in row.values() if v is not None}
    for table, columns in NEEDLE_COLUMNS.items():
        for row in mine.get(table, []):
            for column in columns:
                value = row.get(column)
                if isinstance(value, str) and len(value) >= 6 and value not in other:
                    found.add(value)
    return found


async def drained(tenant_id: UUID, timeout: float = 60.0) -> None:
    """Wait until the tenant's outbox is done: no background work will touch its rows."""
    from pigeonhole.db.engine import tenant_tx
    from pigeonhole.db.tables import Outbox

    deadline = time.monotonic() + timeout
    while True:
        async with tenant_tx(tenant_id, write=False) as scope:
            pending = await scope.count(Outbox).where(Outbox.done_at.is_null())
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending} outbox row(s) of tenant {tenant_id} never finished")
        await asyncio.sleep(0.05)


# --- every route, whatever it carries: for walks that need no exact ids -------------


def sample_value(info, name: str = "", ids: Mapping[str, Any] | None = None) -> Any:
    """A value msgspec accepts for a body type: enough to reach the handler's first line.

    A field named like an id in ``ids`` gets that id, so a walk can slip a
    chosen row into bodies it has no builder for.
    """
    from msgspec import inspect as mi

    ids = ids or {}
    if name in ids:
        return str(ids[name])
    if isinstance(info, mi.StructType):
        return {
            f.encode_name: sample_value(f.type, f.name, ids)
            for f in info.fields
            if f.required or f.name in ids
        }
    if isinstance(info, mi.UnionType):
        options = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return sample_value(options[0], name, ids) if options else None
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    if isinstance(info, mi.EnumType):
        return next(iter(info.cls)).value
    if isinstance(info, mi.StrType):
        return "x" * max(info.min_length or 1, 1)
    if isinstance(info, mi.IntType):
        return info.ge if info.ge is not None else (info.gt + 1 if info.gt is not None else 1)
    if isinstance(info, mi.FloatType):
        return float(info.ge if info.ge is not None else 1)
    if isinstance(info, mi.BoolType):
        return False
    if isinstance(info, mi.UUIDType):
        return str(uuid.uuid4())
    if isinstance(info, mi.DateTimeType):
        return "2030-01-01T00:00:00Z"
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return [sample_value(info.item_type, "", ids) for _ in range(info.min_length or 0)]
    if isinstance(info, (mi.DictType, mi.AnyType)):
        return {}
    return None


@dataclass(frozen=True)
class Route:
    """One (method, path) under the tenant prefix, with what it takes."""

    method: str
    path: str
    path_params: tuple[str, ...]
    body_type: Any
    handler: str

    @property
    def relative(self) -> str:
        return self.path[len(PREFIX) :] or "/"

    def body_ids(self, ids: Mapping[str, Any]) -> frozenset[str]:
        """The ids of ``ids`` the body would carry."""
        if self.body_type is None:
            return frozenset()
        builder = BODIES.get((self.method, self.relative))
        if builder is not None:
            recorder = _Recorder(ids)
            try:
                builder(recorder)
            except KeyError:
                pass
            return frozenset(recorder.read)
        from msgspec import inspect as mi

        info = mi.type_info(self.body_type)
        if isinstance(info, mi.StructType):
            return frozenset(f.name for f in info.fields if f.name in ids)
        return frozenset()

    def request(self, slug: str, ids: Mapping[str, Any]) -> Request:
        """A request filling path and body from ``ids``, unknown path parameters with new UUIDs."""
        values = {p: ids[p] if p in ids else uuid.uuid4() for p in self.path_params if p != "tenant"}
        url = self.path.format(tenant=slug, **{k: str(v) for k, v in values.items()})
        body = None
        if self.body_type is not None:
            builder = BODIES.get((self.method, self.relative))
            if builder is not None:
                try:
                    body = builder(ids)
                except KeyError:
                    builder = None
            if builder is None:
                from msgspec import inspect as mi

                body = sample_value(mi.type_info(self.body_type), "", ids)
            body = json.loads(json.dumps(body, default=str))
        return Request(self.method, url, {}, body)

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.handler})"


def all_routes(app: Litestar) -> list[Route]:
    """Every HTTP (method, path) under the tenant prefix; never refuses a route."""
    found = []
    for route in app.routes:
        if not route.path_format.startswith(PREFIX) or not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.fn.__module__ == AUTO_OPTIONS_MODULE:
                continue
            data = handler.parsed_fn_signature.parameters.get("data")
            for method in sorted(handler.http_methods):
                found.append(
                    Route(
                        method=method,
                        path=route.path_format,
                        path_params=tuple(route.path_parameters),
                        body_type=data.annotation if data is not None else None,
                        handler=f"{handler.fn.__module__}.{handler.handler_name}",
                    )
                )
    return found
