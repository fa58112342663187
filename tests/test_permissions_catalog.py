"""The permission catalog is the one list: every permission checked anywhere is in it, documented.

(tests/test_roles_scopes.py proves every route checks one.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pigeonhole.domain.context import Actor, TenantInfo
from pigeonhole.domain.identity import permissions
from pigeonhole.web.auth import ROLE_PERMISSIONS, Caller, require

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "platform", ROOT / "plugins", ROOT / "hardware_drivers"]
CHECKS = [
    re.compile(r"""require\(\s*\w+\s*,\s*["']([^"']+)["']"""),
    re.compile(r"""["']permission["']\s*:\s*["']([^"']+)["']"""),
]


def _checked_names() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            if "/tests/" in str(path) or ".venv" in str(path):
                continue
            text = path.read_text()
            for pattern in CHECKS:
                for name in pattern.findall(text):
                    found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_permission_checked_in_the_code_is_in_the_catalog():
    found = _checked_names()
    assert len(found) >= 15, "the scan finds the permission checks"
    unknown = {name: where for name, where in found.items() if name not in permissions.CATALOG}
    assert not unknown, f"permissions checked but not in the catalog: {unknown}"


def test_every_catalog_entry_is_described_and_roles_hold_only_catalog_names():
    for name, description in permissions.CATALOG.items():
        assert re.fullmatch(r"[a-z]+(:[a-z]+)?", name), name
        assert len(description) > 15 and description[0].isupper(), name
    for role, perms in permissions.BUILTIN.items():
        assert perms <= permissions.ALL, role
    assert permissions.BUILTIN["enterprise_admin"] == permissions.ALL
    assert set(permissions.USER_ROLES) == {
        "enterprise_admin",
        "mailroom_admin",
        "locker_operator",
        "carrier",
        "recipient",
    }


def test_the_device_and_api_key_roles_keep_their_permissions():
    assert ROLE_PERMISSIONS["kiosk"] == {"banks:read", "pickup"}
    assert ROLE_PERMISSIONS["agent"] == {"banks:read"}
    assert ROLE_PERMISSIONS["admin"] == permissions.ALL
    assert {"packages:write", "banks:write", "doors:open"} <= ROLE_PERMISSIONS["operator"]
    assert not {"users:write", "apikeys:write", "plugins:write"} & ROLE_PERMISSIONS["operator"]


def test_a_check_of_a_name_outside_the_catalog_is_a_bug_not_a_refusal():
    tenant = TenantInfo(id=None, slug="x", name="X", status="active", plugins_version=0)
    caller = Caller(tenant=tenant, actor=Actor(name="k", role="admin"))
    require(caller, "packages:read")
    with pytest.raises(RuntimeError, match="not in the permission catalog"):
        require(caller, "packages:reed")


def test_the_reference_documents_every_permission_and_role():
    doc = (ROOT / "docs" / "admin" / "roles.md").read_text()
    missing = [n for n in permissions.CATALOG if f"`{n}`" not in doc]
    assert not missing, f"docs/admin/roles.md does not document {missing}"
    missing_roles = [r for r in permissions.BUILTIN if f"`{r}`" not in doc]
    assert not missing_roles, f"docs/admin/roles.md does not document the roles {missing_roles}"


async def test_the_catalog_is_served(make_tenant, api):
    t = await make_tenant()
    served = await api(t, "admin").ok("GET", "/permissions")
    assert {p["name"]: p["description"] for p in served} == permissions.CATALOG
    assert (await api(t, "kiosk").get("/permissions")).status_code == 403
