"""Custom fields on staff users (A5, screen 'users'): checked on every write, returned, searchable.

The same validator and value store as contacts and locations
(domain/directory/custom_fields.py); the CSV users import and export carry
the fields as columns. SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io

from tests.support import accounts
from tests.test_csv_import import upload


async def _fields(admin) -> dict[str, dict]:
    made = {}
    for body in (
        {"screen": "users", "key": "badge", "label": "Badge number", "type": "number", "required": True},
        {"screen": "users", "key": "team", "label": "Team", "type": "choice", "choices": ["Night", "Day"]},
        {"screen": "users", "key": "nickname", "label": "Nickname", "type": "text"},
    ):
        made[body["key"]] = await admin.ok("POST", "/directory/custom-fields", body, status=201)
    return made


async def _emails(admin) -> set[str]:
    return {u["email"] for u in await admin.ok("GET", "/users?limit=1000")}


async def test_values_are_checked_on_add_and_returned(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await _fields(admin)
    before = await _emails(admin)

    missing = await admin.post(
        "/users", json={"email": accounts.email("nobadge"), "name": "No Badge", "role": "carrier"}
    )
    assert missing.status_code == 422, missing.text
    assert missing.json()["detail"] == "Custom field 'Badge number' (badge) is required"

    wrong = await admin.post(
        "/users",
        json={
            "email": accounts.email("wrong"),
            "name": "Wrong Badge",
            "role": "carrier",
            "custom": {"badge": "twelve"},
        },
    )
    assert wrong.status_code == 422, wrong.text
    assert "Badge number" in wrong.json()["detail"] and "number" in wrong.json()["detail"]

    choice = await admin.post(
        "/users",
        json={
            "email": accounts.email("team"),
            "name": "Bad Team",
            "role": "carrier",
            "custom": {"badge": 7, "team": "Evening"},
        },
    )
    assert choice.status_code == 422 and "Night, Day" in choice.json()["detail"], choice.text

    unknown = await admin.post(
        "/users",
        json={
            "email": accounts.email("x"),
            "name": "X",
            "role": "carrier",
            "custom": {"badge": 1, "shoe": 42},
        },
    )
    assert unknown.status_code == 422 and "'shoe'" in unknown.json()["detail"], unknown.text
    assert await _emails(admin) == before, "a refused add writes nothing"

    added = await accounts.add_user(
        admin, role="carrier", name="Bea Badge", custom={"badge": "12", "team": "night", "nickname": "Bee"}
    )
    assert added["custom"] == {"badge": 12, "team": "Night", "nickname": "Bee"}
    assert (await admin.ok("GET", f"/users/{added['id']}"))["custom"] == added["custom"]
    [listed] = [u for u in await admin.ok("GET", "/users") if u["id"] == added["id"]]
    assert listed["custom"] == added["custom"]


async def test_edits_are_checked_against_the_current_values_and_change_nothing_when_refused(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await _fields(admin)
    user = await accounts.add_user(admin, role="carrier", name="Ed Edit", custom={"badge": 5, "team": "Day"})

    # A partial edit keeps the other values; an empty value removes one.
    edited = await admin.ok("PATCH", f"/users/{user['id']}", {"custom": {"nickname": "Eddie", "team": ""}})
    assert edited["custom"] == {"badge": 5, "nickname": "Eddie"}

    for body, words in (
        ({"custom": {"badge": None}}, "is required"),
        ({"custom": {"badge": "five"}}, "takes a number"),
        ({"name": "Renamed", "custom": {"team": "Evening"}}, "must be one of"),
    ):
        refused = await admin.patch(f"/users/{user['id']}", json=body)
        assert refused.status_code == 422, refused.text
        assert words in refused.json()["detail"]
    shown = await admin.ok("GET", f"/users/{user['id']}")
    assert shown["name"] == "Ed Edit" and shown["custom"] == {"badge": 5, "nickname": "Eddie"}

    # A field made required later must be filled at the user's next edit.
    fields = {f["key"]: f for f in await admin.ok("GET", "/directory/custom-fields?screen=users")}
    await admin.ok("PATCH", f"/directory/custom-fields/{fields['team']['id']}", {"required": True})
    later = await admin.patch(f"/users/{user['id']}", json={"name": "Ed Later"})
    assert later.status_code == 422 and later.json()["detail"] == "Custom field 'Team' (team) is required"
    assert (await admin.ok("GET", f"/users/{user['id']}"))["name"] == "Ed Edit"
    done = await admin.ok("PATCH", f"/users/{user['id']}", {"name": "Ed Later", "custom": {"team": "day"}})
    assert done["name"] == "Ed Later" and done["custom"]["team"] == "Day"
    events = [e for e in await admin.ok("GET", "/audit") if e["action"] == "user.updated"]
    assert events, "custom value changes are audited with the user's other changes"


async def test_search_users_by_custom_field(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await _fields(admin)
    night = await accounts.add_user(
        admin, role="carrier", name="Nina Night", custom={"badge": 1, "team": "Night", "nickname": "Ninja"}
    )
    day = await accounts.add_user(
        admin, role="carrier", name="Dan Day", custom={"badge": 2, "team": "Day", "nickname": "Danny"}
    )

    async def ids(query: str) -> list[str]:
        return [u["id"] for u in await admin.ok("GET", f"/users?{query}")]

    assert await ids("custom.team=night") == [night["id"]]
    assert await ids("custom.team=Day") == [day["id"]]
    assert await ids("custom.badge=2") == [day["id"]]
    assert await ids("custom.nickname=nin") == [night["id"]]  # text matches by prefix
    assert await ids("custom.team=Night&custom.badge=2") == []
    assert await ids("custom.team=Day&q=dan") == [day["id"]]

    unknown = await admin.get("/users?custom.shoe=42")
    assert unknown.status_code == 422 and "'shoe'" in unknown.json()["detail"]
    wrong = await admin.get("/users?custom.badge=two")
    assert wrong.status_code == 422 and "takes a number" in wrong.json()["detail"]

    # A deleted user's values go with it.
    await admin.ok("DELETE", f"/users/{day['id']}")
    assert await ids("custom.team=Day") == []


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))  # Excel's BOM


async def test_csv_import_and_export_carry_the_custom_columns(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await _fields(admin)

    template = _rows(await admin.get("/directory/imports/templates/users.csv"))
    assert template[0] == ["email", "name", "employee_id", "role", "badge", "team", "nickname"]

    before = await _emails(admin)
    bad = (
        "email,name,employee_id,role,badge,team,nickname\n"
        "ok@example.test,Ok,E-1,carrier,3,Day,\n"
        "nobadge@example.test,No Badge,E-2,carrier,,Night,\n"
        "letters@example.test,Letters,E-3,carrier,abc,,\n"
    )
    refused = await upload(admin, "users", bad)
    assert refused.status_code == 422, refused.text
    errors = refused.json()["report"]["errors"]
    assert [e["line"] for e in errors] == [3, 4]
    assert "is required" in errors[0]["message"] and "takes a number" in errors[1]["message"]
    assert await _emails(admin) == before, "an import with a bad line writes nothing"

    good = (
        "email,name,employee_id,role,badge,team,nickname\n"
        "ada@example.test,Ada Lovelace,E-1,mailroom_admin,10,night,Countess\n"
        "grace@example.test,Grace Hopper,E-2,locker_operator,11,Day,\n"
    )
    created = await upload(admin, "users", good)
    assert created.status_code == 201, created.text
    users = {u["email"]: u for u in await admin.ok("GET", "/users")}
    assert users["ada@example.test"]["custom"] == {"badge": 10, "team": "Night", "nickname": "Countess"}
    assert users["grace@example.test"]["custom"] == {"badge": 11, "team": "Day"}

    # Changing only a custom value of an existing user is an import too.
    again = good.replace(",11,Day,", ",11,Night,")
    assert (await upload(admin, "users", again)).status_code == 201
    grace = users["grace@example.test"]["id"]
    assert (await admin.ok("GET", f"/users/{grace}"))["custom"]["team"] == "Night"
    # ... and a changed name with a custom value goes through the edit's check.
    renamed = again.replace("Grace Hopper,E-2,locker_operator,11", "Grace B. Hopper,E-2,locker_operator,12")
    assert (await upload(admin, "users", renamed)).status_code == 201
    shown = await admin.ok("GET", f"/users/{grace}")
    assert shown["name"] == "Grace B. Hopper" and shown["custom"]["badge"] == 12

    exported = _rows(await admin.get("/directory/exports/users.csv"))
    assert exported[0] == ["email", "name", "employee_id", "role", "badge", "team", "nickname"]
    by_email = {r[0]: r for r in exported[1:]}
    assert by_email["ada@example.test"][4:] == ["10", "Night", "Countess"]
    assert by_email["grace@example.test"][4:] == ["12", "Night", ""]
