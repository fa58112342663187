"""CSV imports through the API (A2, A4, C2, C5): all or nothing, every problem by line, dry runs.

Each test uploads a file the way an administrator would (raw text/csv body or a
multipart form) and checks what the directory then shows through the API.
"""

from __future__ import annotations

import pytest

HEADER = "name,email,phone,personnel_id,employee_id,department,accessibility,language\n"
CSV = {"Content-Type": "text/csv"}


async def upload(admin, kind: str, body: bytes | str, *, params: dict | None = None, **kw):
    data = body.encode("utf-8") if isinstance(body, str) else body
    return await admin.request(
        "POST", f"/directory/imports/{kind}", content=data, headers={**CSV, **kw.pop("headers", {})},
        params=params or {}, **kw,
    )  # fmt: skip


async def contacts_of(admin, **params) -> dict[str, dict]:
    rows = await admin.ok(
        "GET", "/directory/contacts?limit=500" + "".join(f"&{k}={v}" for k, v in params.items())
    )
    return {c["name"]: c for c in rows}


async def department(admin, name: str) -> dict:
    return await admin.ok("POST", "/directory/departments", {"name": name})


async def test_import_contacts_then_update_them(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await department(admin, "Research")
    await department(admin, "Navy")
    body = HEADER + (
        "Ada Lovelace,ada@example.test,+44 20 7946 0001,P-1,E-1,Research,,en\n"
        'Grace Hopper,grace@example.test,,P-2,E-2,"Research; Navy",wheelchair,fr\n'
        "Alan Turing,alan@example.test,,,,,,en\n"
    )
    r = await upload(admin, "contacts", body, headers={"X-Filename": "people.csv"})
    assert r.status_code == 201, r.text
    report = r.json()
    assert (report["status"], report["rows"], report["created"], report["updated"]) == ("applied", 3, 3, 0)
    assert report["errors"] == [] and report["encoding"] == "utf-8"

    people = await contacts_of(admin)
    assert set(people) == {"Ada Lovelace", "Grace Hopper", "Alan Turing"}
    grace = people["Grace Hopper"]
    assert (grace["personnel_id"], grace["language"], grace["accessibility"]) == ("P-2", "fr", "wheelchair")
    assert sorted(d["name"] for d in grace["departments"]) == ["Navy", "Research"]
    assert people["Ada Lovelace"]["phone"] == "+44 20 7946 0001"

    # The same people again, one changed: matched by Personnel ID (Ada), by email (Alan).
    again = HEADER + (
        "Ada King,ada@example.test,+44 20 7946 0001,P-1,E-1,Research,,en\n"
        'Grace Hopper,grace@example.test,,P-2,E-2,"Research; Navy",wheelchair,fr\n'
        "Alan Turing,alan@example.test,,,,,,en\n"
    )
    r = await upload(admin, "contacts", again)
    assert r.status_code == 201, r.text
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 1, 2)
    people = await contacts_of(admin)
    assert set(people) == {"Ada King", "Grace Hopper", "Alan Turing"}

    history = await admin.ok("GET", "/directory/imports")
    assert [h["status"] for h in history[:2]] == ["applied", "applied"]
    first = await admin.ok("GET", f"/directory/imports/{report['import_id']}")
    assert (first["filename"], first["source"], first["created"], first["created_by"]) == (
        "people.csv", "upload", 3, "admin:admin",
    )  # fmt: skip


async def test_every_problem_is_reported_by_line_and_nothing_is_imported(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await department(admin, "Research")
    body = HEADER + (
        "Ada Lovelace,ada@example.test,,P-1,,Research,,en\n"  # line 2: fine
        "Bad Email,not-an-email,,P-2,,,,en\n"  # line 3
        "Grace Hopper,grace@example.test,,P-1,,Marketing,,de\n"  # line 4: dup P-1, unknown dept, language
        ",nobody@example.test,,P-4,,,,en\n"  # line 5: no name
        "Extra Cell,x@example.test,,P-5,,,,en,surplus\n"  # line 6: too many values
    )
    r = await upload(admin, "contacts", body)
    assert r.status_code == 422, r.text
    report = r.json()["report"]
    assert report["status"] == "refused" and report["created"] == 0
    by_line: dict[int, list[str]] = {}
    for problem in report["errors"]:
        by_line.setdefault(problem["line"], []).append(problem["message"])
    assert sorted(by_line) == [3, 4, 5, 6]
    assert any("not-an-email" in m for m in by_line[3])
    assert any("Duplicate Personnel ID 'P-1' (lines 2 and 4)" == m for m in by_line[4])
    assert any("Unknown department 'Marketing'" == m for m in by_line[4])
    assert any("language" in m.lower() and "de" in m for m in by_line[4])
    assert len(by_line[4]) == 3, "every problem of a row, not just the first"
    assert by_line[5] == ["A contact needs a name"]
    assert "9 values for 8 columns" in by_line[6][0]
    assert "nothing was imported" in r.json()["detail"]
    assert await contacts_of(admin) == {}, "not even the good row was written"
    [run] = await admin.ok("GET", "/directory/imports?status=refused")
    assert run["error_count"] == 6 and run["message"] == r.json()["detail"]


async def test_a_duplicate_personnel_id_names_both_rows_whatever_their_case(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    body = (
        HEADER
        + "A One,a@example.test,,ab-1,,,,en\nB Two,b@example.test,,,,,,en\nC Three,c@example.test,,AB-1,,,,en\n"
    )
    r = await upload(admin, "contacts", body)
    assert r.status_code == 422
    [problem] = r.json()["report"]["errors"]
    assert problem == {
        "line": 4,
        "column": "personnel_id",
        "message": "Duplicate Personnel ID 'AB-1' (lines 2 and 4)",
    }


async def test_dry_run_reports_the_same_counts_and_changes_nothing(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    body = HEADER + "Ada Lovelace,ada@example.test,,P-1,,,,en\nGrace Hopper,grace@example.test,,P-2,,,,en\n"
    dry = await upload(admin, "contacts", body, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["status"], dry.json()["created"]) == ("dry_run", 2)
    assert "nothing was changed" in dry.json()["message"]
    assert await contacts_of(admin) == {}
    real = await upload(admin, "contacts", body)
    assert real.status_code == 201 and real.json()["created"] == 2
    assert set(await contacts_of(admin)) == {"Ada Lovelace", "Grace Hopper"}


async def test_directory_sync_deactivates_people_missing_from_the_file(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    body = HEADER + "".join(f"Person {i},p{i}@example.test,,P-{i},,,,en\n" for i in range(1, 5))
    assert (await upload(admin, "contacts", body)).status_code == 201
    leavers = HEADER + "".join(f"Person {i},p{i}@example.test,,P-{i},,,,en\n" for i in (1, 2))
    plain = await upload(admin, "contacts", leavers)
    assert plain.json()["deactivated"] == 0, "without the flag nobody is deactivated"
    dry = await upload(admin, "contacts", leavers, params={"deactivate_missing": "true", "dry_run": "true"})
    assert dry.json()["deactivated"] == 2
    assert all(c["active"] for c in (await contacts_of(admin)).values())
    r = await upload(admin, "contacts", leavers, params={"deactivate_missing": "true"})
    assert r.status_code == 201, r.text
    assert (r.json()["deactivated"], r.json()["unchanged"]) == (2, 2)
    people = await contacts_of(admin)
    assert {n: c["active"] for n, c in people.items()} == {
        "Person 1": True, "Person 2": True, "Person 3": False, "Person 4": False,
    }  # fmt: skip
    # Someone who comes back in the source is active again.
    back = HEADER + "".join(f"Person {i},p{i}@example.test,,P-{i},,,,en\n" for i in (1, 2, 3))
    r = await upload(admin, "contacts", back, params={"deactivate_missing": "true"})
    assert r.status_code == 201, r.text
    assert (await contacts_of(admin))["Person 3"]["active"] is True


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "The file is empty"),
        (b"\n\n  \n", "The file is empty"),
        (HEADER.encode(), "The file has a header but no rows"),
        (
            b"name,email\nAda,ada@example.test\n",
            "Line 1: missing columns: phone, personnel_id, employee_id, department, accessibility, language",
        ),
        (
            HEADER.strip().encode() + b",shoe_size\nAda,a@example.test,,P-1,,,,en,42\n",
            "Line 1: unknown column: shoe_size",
        ),
        (
            "name,email,phone,personnel_id,employee_id,department,accessibility,language\nZoë,z@example.test,,P-1,,,,en\n".encode(
                "utf-16"
            ),
            "UTF-16",
        ),
        (HEADER.encode() + b"Zo\x93,z@example.test,,P-1,,,,en\n", "Line 2: byte 0x93"),
        (
            HEADER.encode() + b"Zo\xc3\xab,z@example.test,,P-1,,,,en\nB\xe9a,b@example.test,,P-2,,,,en\n",
            "Line 3: byte 0xE9 is not UTF-8",
        ),
        (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet workbook (.xlsx)"),
        (HEADER.encode() + b"Ada\x00,a@example.test,,P-1,,,,en\n", "Line 2: the line contains NUL bytes"),
        (HEADER.encode() + b'"Ada,a@example.test,,P-1,,,,en\n', "Line 2: the CSV cannot be read"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "missing-columns",
        "extra-column",
        "utf16",
        "cp1252",
        "mixed",
        "xlsx",
        "nul",
        "quote",
    ],
)
async def test_a_file_that_cannot_be_read_is_refused_naming_the_problem(make_tenant, api, body, expected):
    t = await make_tenant()
    admin = api(t, "admin")
    r = await upload(admin, "contacts", body)
    assert r.status_code == 422, r.text
    assert expected in r.json()["detail"]
    assert "nothing was imported" in r.json()["detail"]
    assert r.json()["report"]["status"] == "refused"
    assert await contacts_of(admin) == {}


@pytest.mark.parametrize(
    "encoded",
    [
        ("\ufeff" + HEADER + "Zoë Müller,zoe@example.test,,P-1,,,,en\n").encode("utf-8"),
        (HEADER + "Zoë Müller,zoe@example.test,,P-1,,,,en\n").encode("utf-8"),
        (HEADER + "Zoë Müller,zoe@example.test,,P-1,,,,en\n").encode("latin-1"),
    ],
    ids=["utf-8-bom", "utf-8", "latin-1"],
)
async def test_utf8_with_or_without_bom_and_latin1_are_read(make_tenant, api, encoded):
    t = await make_tenant()
    admin = api(t, "admin")
    r = await upload(admin, "contacts", encoded)
    assert r.status_code == 201, r.text
    assert "Zoë Müller" in await contacts_of(admin)


async def test_semicolons_and_crlf_from_a_french_spreadsheet(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    body = HEADER.replace(",", ";").replace("\n", "\r\n") + "Zoé Dupont;zoe@example.test;;P-1;;;;fr\r\n"
    r = await upload(admin, "contacts", body)
    assert r.status_code == 201, r.text
    assert (await contacts_of(admin))["Zoé Dupont"]["language"] == "fr"


async def test_a_file_over_the_size_cap_is_refused_with_413(make_tenant, api, monkeypatch):
    monkeypatch.setenv("PIGEONHOLE_IMPORT_MAX_BYTES", "4096")
    t = await make_tenant()
    admin = api(t, "admin")
    rows = "".join(f"Person {i},p{i}@example.test,,P-{i},,,,en\n" for i in range(200))
    r = await upload(admin, "contacts", HEADER + rows)
    assert r.status_code == 413, r.text
    assert "larger than the import limit" in r.json()["detail"]
    assert await contacts_of(admin) == {}
    [run] = await admin.ok("GET", "/directory/imports")
    assert run["status"] == "refused"


async def test_a_50_mb_upload_is_refused_before_it_is_all_read(make_tenant, api):
    """The default cap: the body is streamed and refused once the cap is passed."""
    t = await make_tenant()
    admin = api(t, "admin")
    line = b"Person,p@example.test,,P,,,,en\n"
    chunk = HEADER.encode() + line * (1024 * 1024 // len(line))
    sent = 0

    async def body():
        nonlocal sent
        while sent < 50 * 1024 * 1024:
            sent += len(chunk)
            yield chunk

    r = await admin.request("POST", "/directory/imports/contacts", content=body(), headers=CSV)
    assert r.status_code == 413
    assert "32 MB" in r.json()["detail"]
    assert sent < 50 * 1024 * 1024, "the server stopped reading at the cap"
    assert await contacts_of(admin) == {}


async def test_multipart_upload(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    body = HEADER + "Ada Lovelace,ada@example.test,,P-1,,,,en\n"
    r = await admin.request(
        "POST", "/directory/imports/contacts",
        files={"file": ("people.csv", body.encode(), "text/csv")}, data={"note": "monthly"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "people.csv", "the form's file name is kept in the history"
    assert "Ada Lovelace" in await contacts_of(admin)
    missing = await admin.request(
        "POST", "/directory/imports/contacts", files={"document": ("p.csv", body.encode(), "text/csv")}
    )
    assert missing.status_code == 422 and "field named 'file'" in missing.json()["detail"]


async def test_custom_fields_are_imported_and_checked(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok(
        "POST", "/directory/custom-fields",
        {"screen": "contacts", "key": "floor", "label": "Floor", "type": "number"},
    )  # fmt: skip
    await admin.ok(
        "POST", "/directory/custom-fields",
        {"screen": "contacts", "key": "shift", "label": "Shift", "type": "choice", "choices": ["Day", "Night"]},
    )  # fmt: skip
    template = await admin.get("/directory/imports/templates/contacts.csv")
    header = template.content.decode("utf-8-sig").splitlines()[0]
    assert header.endswith(",active,floor,shift")
    body = (
        HEADER.strip()
        + ",floor,shift\nAda,ada@example.test,,P-1,,,,en,3,night\nBob,bob@example.test,,P-2,,,,en,three,Evening\n"
    )
    r = await upload(admin, "contacts", body)
    assert r.status_code == 422
    messages = [p["message"] for p in r.json()["report"]["errors"]]
    assert len(messages) == 1 and "Floor" in messages[0] and "three" in messages[0]
    ok = body.replace("three,Evening", "4,Day")
    assert (await upload(admin, "contacts", ok)).status_code == 201
    people = await contacts_of(admin)
    assert people["Ada"]["custom"] == {"floor": 3, "shift": "Night"}
    assert people["Bob"]["custom"] == {"floor": 4, "shift": "Day"}


async def test_import_locations(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok("POST", "/divisions", {"name": "North"})
    body = (
        "division,name,address,region,timezone\n"
        "Main,Head Office,1 Test Street Testville,WA,America/Los_Angeles\n"  # exists: unchanged
        "North,Depot 7,7 Quay Road,OR,America/Los_Angeles\n"
        "north,Depot 8,8 Quay Road,OR,\n"
    )
    r = await upload(admin, "locations", body)
    assert r.status_code == 201, r.text
    assert (r.json()["created"], r.json()["updated"]) == (2, 1), "Head Office's address differs: updated"
    locations = {x["name"]: x for x in await admin.ok("GET", "/locations")}
    assert locations["Depot 8"]["timezone"] == "UTC"
    assert locations["Head Office"]["address"] == "1 Test Street Testville"
    bad = (
        "division,name,address,region,timezone\n"
        "South,Depot 9,,,UTC\n"
        "North,Depot 7,,,Mars/Olympus\n"
        "North,Depot 7,,,UTC\n"
    )
    r = await upload(admin, "locations", bad)
    assert r.status_code == 422
    messages = [(p["line"], p["message"]) for p in r.json()["report"]["errors"]]
    assert (2, "Unknown division 'South'") in messages
    assert any(line == 3 and "Mars/Olympus" in m for line, m in messages)
    assert (4, "Duplicate location 'Depot 7' in division 'North' (lines 3 and 4)") in messages
    assert len(await admin.ok("GET", "/locations")) == 3


async def test_import_users(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    body = (
        "email,name,employee_id,role\n"
        "Ada@Example.test,Ada Lovelace,E-1,mailroom_admin\n"
        "grace@example.test,Grace Hopper,E-2,locker_operator\n"
    )
    r = await upload(admin, "users", body)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 2
    users = {u["email"]: u for u in await admin.ok("GET", "/users")}
    assert users["ada@example.test"]["role"] == "mailroom_admin"
    bad = "email,name,employee_id,role\nnot-mail,X,,mailroom_admin\nz@example.test,Z,,wizard\n"
    r = await upload(admin, "users", bad)
    assert r.status_code == 422
    lines = sorted(p["line"] for p in r.json()["report"]["errors"])
    assert lines == [2, 3]
    assert "wizard" in r.json()["report"]["errors"][1]["message"]
    assert "z@example.test" not in {u["email"] for u in await admin.ok("GET", "/users")}


async def test_who_may_import(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    body = HEADER + "Ada,ada@example.test,,P-1,,,,en\n"
    for kind in ("contacts", "users", "locations"):
        r = await upload(op, kind, body)
        assert r.status_code == 403, kind
    assert (await op.get("/directory/imports")).status_code == 403
    assert await contacts_of(api(t, "admin")) == {}


async def test_templates_can_be_downloaded_and_imported_back(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await department(admin, "Research")
    await department(admin, "Navy")
    for kind, expected in (
        ("contacts", HEADER.strip() + ",active"),
        ("users", "email,name,employee_id,role"),
        ("locations", "division,name,address,region,timezone"),
    ):
        r = await admin.get(f"/directory/imports/templates/{kind}.csv")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert f'filename="{kind}-template.csv"' in r.headers["content-disposition"]
        assert r.content.startswith(b"\xef\xbb\xbf")
        assert r.content.decode("utf-8-sig").splitlines()[0] == expected
    template = (await admin.get("/directory/imports/templates/contacts.csv")).content
    r = await upload(admin, "contacts", template)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 2


async def test_signed_in_staff_import_only_with_access_to_the_whole_tenant(client, make_tenant, api):
    from tests.support.accounts import signed_in

    t = await make_tenant()
    admin = api(t, "admin")
    main = next(d for d in await admin.ok("GET", "/divisions") if d["name"] == "Main")
    body = HEADER + "Ada,ada@example.test,,P-1,,,,en\n"
    user, boss = await signed_in(client, admin, role="enterprise_admin")
    r = await upload(boss, "contacts", body)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 1
    [run] = await admin.ok("GET", "/directory/imports")
    assert run["created_by"] == f"enterprise_admin:{user['name']}", "the history names who imported"
    _, scoped = await signed_in(client, admin, role="enterprise_admin", divisions=[main["id"]])
    refused = await upload(scoped, "contacts", body.replace("Ada", "Bea").replace("P-1", "P-2"))
    assert refused.status_code == 403 and "whole tenant" in refused.json()["detail"]
    assert set(await contacts_of(admin)) == {"Ada"}
