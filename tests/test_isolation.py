"""Tenant isolation, first wall: every endpoint, called by another tenant, reads and changes nothing.

The list of endpoints comes from the application (tests/support/isolation.py),
plugin routes included, so an endpoint added later is walked without anyone
remembering to add it here. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import textwrap
import uuid

import pytest
from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody
from pigeonhole.domain.context import require_tenant

from tests.flows import compartment, deposit, deposit_and_close, directory_rows, new_email
from tests.support import accounts, isolation, signin
from tests.support.access import carrier_values
from tests.support.directory_io import directory_io_values
from tests.support.edge import edge_values
from tests.support.smtp import pickup_code
from tests.support.storage import storage_values

# Tenant B runs without the workplace plugin, so the plugin name the walk uses
# is one that A enabled and B did not.
B_PLUGINS = textwrap.dedent(
    """
    [plugins.pin]
    [plugins.email]
    from_address = "Mailroom <mailroom@example.test>"
    [plugins.simulator]
    """
)


def _tag() -> str:
    return uuid.uuid4().hex[:8]


async def _ready(op, admin, smtp, bank_id: str) -> tuple[dict, str]:
    """A package deposited, its door closed, its recipient told the code."""
    email = new_email()
    package = await deposit_and_close(op, admin, bank_id, email=email, name=f"Recipient {_tag()}", size="s")
    [mail] = await smtp.wait_for(email)
    return package, pickup_code(mail)


async def _identity(admin) -> dict[str, list]:
    """Identity rows (#3): a custom role and a staff user holding it."""
    role = await admin.ok("POST", "/roles", {"name": f"Role {_tag()}", "permissions": ["packages:read"]})
    staff = await admin.ok(
        "POST", "/users", {"email": new_email(), "name": f"Staff {_tag()}", "role_id": role["id"]}
    )
    return {"user_id": [staff["id"]], "role_id": [role["id"]]}


async def _messages(admin, op, package) -> dict[str, list]:
    """Messages (#5): a wording of the tenant's own, and the package's messages."""
    await admin.ok(
        "PUT", "/message-templates/package.ready/en", {"subject": "Ready", "body": f"Wording {_tag()} $code"}
    )
    notes = await op.ok("GET", f"/packages/{package['id']}/notifications")
    return {"notification_id": [n["id"] for n in notes], "event": ["package.ready"], "language": ["en"]}


async def populate_a(t, api, smtp) -> tuple[dict[str, list], dict[str, str]]:
    """Tenant A with something in every table and a package in every state.

    Returns the values the walk fills requests with, and query filters.
    """
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    lobby = t.banks["Lobby"]

    picked, code = await _ready(op, admin, smtp, lobby)
    await kiosk.ok("POST", f"/banks/{lobby}/pickup", {"code": code})
    ready, ready_code = await _ready(op, admin, smtp, lobby)
    # Mid-deposit, door still open: a stranger closing it would complete the deposit.
    depositing = await deposit(op, lobby, size="s", name=f"Recipient {_tag()}")
    received = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": f"TRK-{_tag()}",
            "carrier": "FedEx",
            "size": "l",
            "recipient": {"name": f"Recipient {_tag()}", "email": new_email()},
        },
    )

    division = await admin.ok("POST", "/divisions", {"name": f"Division {_tag()}"})
    location = await admin.ok(
        "POST",
        "/locations",
        {"division_id": division["id"], "name": f"Vault {_tag()}", "address": f"{_tag()} Hidden Lane"},
    )
    await admin.ok("POST", "/api-keys", {"name": f"integration-{_tag()}", "role": "operator"})
    await admin.ok("PUT", "/plugins/workplace", {"config": {"hold_hours": 48}})
    directory = await directory_rows(admin, op)
    identity = await _identity(admin)
    directory_io = await directory_io_values(admin)
    edge = await edge_values(api, t)
    edge.update(await carrier_values(api, t))  # access (#5, E7): a carrier code and session
    # signing in (#3): a user with a password, a second factor, a session and a trusted device
    signed = await signin.fill_signin_tables(admin.client, t, api, smtp)
    identity["user_id"] += signed.pop("user_id")
    messages = await _messages(admin, op, ready)
    stored = await storage_values(admin, op, lobby, directory["contact_id"][0])

    bank = await op.ok("GET", f"/banks/{lobby}")
    available = next(c for c in bank["compartments"] if c["status"] == "available")
    occupied = await compartment(op, lobby, ready["door"]["door"])
    reserved = await compartment(op, lobby, depositing["door"]["door"])
    assert (occupied["status"], reserved["status"]) == ("occupied", "reserved")
    keys = await admin.ok("GET", "/api-keys")
    main = next(d for d in await admin.ok("GET", "/divisions") if d["name"] == "Main")
    head_office = next(x for x in await admin.ok("GET", "/locations") if x["name"] == "Head Office")

    values = {
        "bank_id": [lobby],
        "compartment_id": [occupied["id"], reserved["id"], available["id"]],
        "package_id": [ready["id"], depositing["id"], received["id"], picked["id"]],
        "division_id": [main["id"], division["id"]],
        "location_id": [head_office["id"], location["id"]],
        "key_id": [k["id"] for k in keys if k["name"] in ("operator", "kiosk-lobby")],
        "name": ["workplace"],
        "door": [ready["door"]["door"], depositing["door"]["door"]],
        "code": [ready_code],
        **directory,
        **identity,
        **directory_io,
        **edge,
        **signed,
        **messages,
        **stored,
    }
    query = {
        "location_id": head_office["id"],
        "division_id": main["id"],
        "tracking_id": ready["tracking_id"],
        "department_id": directory["department_id"][0],
        "recipient_contact_id": directory["contact_id"][0],
    }
    return values, query


async def populate_b(t, api, smtp) -> dict[str, list]:
    """Tenant B: enough of its own for its own requests to succeed."""
    admin, op = api(t, "admin"), api(t, "operator")
    lobby = t.banks["Lobby"]
    ready, code = await _ready(op, admin, smtp, lobby)
    received = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": f"TRK-{_tag()}", "carrier": "DHL", "size": "s", "recipient": {"name": "Bea"}},
    )
    keys = await admin.ok("GET", "/api-keys")
    divisions = await admin.ok("GET", "/divisions")
    locations = await admin.ok("GET", "/locations")
    directory = await directory_rows(admin, op)
    identity = await _identity(admin)
    signed = await signin.fill_signin_tables(admin.client, t, api, smtp)
    identity["user_id"] += signed.pop("user_id")
    return {
        **directory,
        **identity,
        **signed,
        **await _messages(admin, op, ready),
        **await storage_values(admin, op, lobby, directory["contact_id"][0]),
        **await directory_io_values(admin),
        **await edge_values(api, t),
        **await carrier_values(api, t),  # access (#5, E7)
        "bank_id": [lobby],
        "compartment_id": [(await compartment(op, lobby, ready["door"]["door"]))["id"]],
        "package_id": [received["id"]],
        "division_id": [divisions[0]["id"]],
        "location_id": [locations[0]["id"]],
        "key_id": [next(k["id"] for k in keys if k["name"] == "operator")],
        "name": ["workplace"],
        "door": [ready["door"]["door"]],
        "code": [code],
    }


async def read_back(client, endpoints, slug: str, key: str, values) -> tuple[dict, list[str]]:
    """Every GET that names rows, with the tenant's own key and ids: what the tenant itself sees."""
    seen, problems = {}, []
    for endpoint in endpoints:
        if endpoint.method != "GET" or not endpoint.owned:
            continue
        for ids in isolation.combinations(endpoint, values):
            request = isolation.build(endpoint, slug, ids, {})
            response = await isolation.send(client, request, key)
            if response.status_code != 200:
                problems.append(f"{request}: {response.status_code} {response.text}")
            seen[request.url] = response.json()
    return seen, problems


async def test_another_tenant_reads_and_changes_nothing(client, settings, services, make_tenant, api, smtp):
    from pigeonhole.web.app import create_app

    a = await make_tenant("a")
    b = await make_tenant("b", plugins=B_PLUGINS)
    a_values, a_query = await populate_a(a, api, smtp)
    b_values = await populate_b(b, api, smtp)
    a_info, b_info = await require_tenant(a.slug), await require_tenant(b.slug)
    await isolation.drained(a_info.id)
    await isolation.drained(b_info.id)

    app = create_app(settings, services=services)
    first = {k: v[0] for k, v in a_values.items()}
    endpoints = isolation.tenant_endpoints(app, first)
    walked = {(e.method, e.relative) for e in endpoints}
    assert ("GET", "/ext/simulator/banks/{bank_id}/doors") in walked, "plugin routes are walked too"
    assert ("POST", "/banks/{bank_id}/pickup") in walked

    # The ids are real: each tenant reads its own rows through every GET that names one.
    a_view, problems = await read_back(client, endpoints, a.slug, a.keys["admin"], a_values)
    assert not problems, "tenant A cannot read its own rows:\n" + "\n".join(problems)
    _, problems = await read_back(client, endpoints, b.slug, b.keys["admin"], b_values)
    assert not problems, "tenant B cannot read its own rows:\n" + "\n".join(problems)

    before = await isolation.snapshot(a_info.id)
    secrets = isolation.needles(before, await isolation.snapshot(b_info.id))
    b_key = b.keys["admin"]
    # A signed-in enterprise administrator of B: a session, besides B's key (#3).
    b_admin = await accounts.add_user(api(b, "admin"), role="enterprise_admin")
    b_session = await accounts.session(b.slug, b_admin["id"])
    failures: list[str] = []
    requests = 0

    async def check(request, expect: int | None, key: str | None = None):
        nonlocal requests
        requests += 1
        response = await isolation.send(client, request, key or b_key)
        status = response.status_code
        if expect is not None and status != expect:
            failures.append(f"{request}: expected {expect}, got {status} {response.text[:300]}")
        elif expect is None and status >= 500:
            failures.append(f"{request}: {status} {response.text[:300]}")
        shown = isolation.leaks(response, request, secrets)
        if shown:
            failures.append(f"{request}: the answer shows tenant A's {shown}")

    def at_a(endpoint) -> int | None:
        """What B's credential gets at A's URL: 401, but from a route that takes none, its own answer."""
        return isolation.PUBLIC_ROUTES.get((endpoint.method, endpoint.relative), 401)

    # (a) A's URL, B's key: B's key means nothing to A.
    for endpoint in endpoints:
        for ids in isolation.combinations(endpoint, a_values):
            await check(isolation.build(endpoint, a.slug, ids, a_query), at_a(endpoint))

    # (b) B's URL and key, A's ids: A's rows do not exist for B.
    for endpoint in endpoints:
        for ids in isolation.combinations(endpoint, a_values):
            # A route that names no row of A is B acting on its own data: it
            # may succeed, but must not show or touch A.
            await check(isolation.build(endpoint, b.slug, ids, a_query), 404 if endpoint.owned else None)

    # (c) B's own ids with one of A's slipped in: a mix is refused as a whole.
    for endpoint in endpoints:
        if len(endpoint.owned) < 2:
            continue
        for slot in endpoint.owned:
            for value in a_values[slot]:
                ids = {k: (b_values if k in isolation.OWNED else a_values)[k][0] for k in endpoint.keys}
                ids[slot] = value
                await check(isolation.build(endpoint, b.slug, ids, a_query), 404)

    # (d) B's user session: at A's URLs it means nothing; at B's, A's rows do not exist.
    for endpoint in endpoints:
        ids = next(isolation.combinations(endpoint, a_values))
        # A fresh session each time: signing out (a route walked like any other) ends the last one.
        b_session = await accounts.session(b.slug, b_admin["id"])
        await check(isolation.build(endpoint, a.slug, ids, a_query), at_a(endpoint), b_session)
        await check(
            isolation.build(endpoint, b.slug, ids, a_query), 404 if endpoint.owned else None, b_session
        )

    assert not failures, f"{len(failures)} of {requests} requests broke isolation:\n" + "\n".join(failures)
    await isolation.drained(a_info.id)
    after = await isolation.snapshot(a_info.id)
    for table in before:
        if table in isolation.PUBLIC_MAY_CHANGE:
            continue
        assert after[table] == before[table], f"tenant A's {table} rows changed during the walk"
    a_view_after, _ = await read_back(client, endpoints, a.slug, a.keys["admin"], a_values)
    assert a_view_after == a_view, "tenant A sees something different after the walk"


def test_the_walk_refuses_a_route_it_cannot_fill():
    """A new endpoint the walk does not understand fails it instead of going unwalked."""

    @get("/api/v1/t/{tenant:str}/widgets/{widget_id:uuid}")
    async def widget(widget_id: FromPath[uuid.UUID]) -> None: ...

    @post("/api/v1/t/{tenant:str}/gadgets")
    async def gadget(data: JSONBody[dict]) -> None: ...

    with pytest.raises(AssertionError) as refused:
        isolation.tenant_endpoints(Litestar([widget, gadget]), {})
    assert "no filler for path parameter 'widget_id'" in str(refused.value)
    assert "POST /api/v1/t/{tenant:str}/gadgets: no body in BODIES" in str(refused.value)


async def test_a_code_opens_nothing_at_another_tenants_bank(make_tenant, api, smtp):
    """The realistic attempt: A's recipient types A's valid code at B's kiosk."""
    a = await make_tenant("a")
    b = await make_tenant("b", plugins=B_PLUGINS)
    a_op, a_admin = api(a, "operator"), api(a, "admin")
    package, code = await _ready(a_op, a_admin, smtp, a.banks["Lobby"])

    refused = await api(b, "kiosk").post(f"/banks/{b.banks['Lobby']}/pickup", json={"code": code})
    assert refused.status_code == 403
    assert "not valid" in refused.json()["detail"]
    assert package["id"] not in refused.text and package["tracking_id"] not in refused.text

    still = await a_op.ok("GET", f"/packages/{package['id']}")
    assert still["status"] == "ready"
    door = (await compartment(a_op, a.banks["Lobby"], package["door"]["door"]))["status"]
    assert door == "occupied"
    # The code still works where it belongs.
    picked = await api(a, "kiosk").ok("POST", f"/banks/{a.banks['Lobby']}/pickup", {"code": code})
    assert picked["package_id"] == package["id"]
