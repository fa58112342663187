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

PREFIX = "/api/v1/t/{tenant}"

#: Parameters naming a row of the tenant. A request from another tenant that
#: carries one of these (in its path or its body) must be answered 404: the
#: row does not exist for that tenant.
OWNED = frozenset({"bank_id", "compartment_id", "package_id", "division_id", "location_id", "key_id"})

#: Parameters that are not a tenant's rows: the slug is the tenant itself, a
#: door number means something only with its bank, a plugin name is the
#: platform's catalogue and a code is a secret presented, not a key looked up.
COORDINATES = frozenset({"tenant", "door", "name", "code", "tracking_id"})

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
    ("PUT", "/plugins/{name}"): lambda ids: {"config": {}},
    ("POST", "/api-keys"): lambda ids: {"name": _unique("key"), "role": "kiosk", "bank_id": ids["bank_id"]},
    ("PUT", "/plugins/simulator/banks/{bank_id}/doors/{door}/fault"): lambda ids: {"fault": "jammed"},
}


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
    "credential": ("digest",),
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
