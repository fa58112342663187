"""The permission catalog: every permission a route can require, and the built-in roles.

A permission is the right to do one kind of task; a role is a named set of
them. This module is the one list: routes call ``web.auth.require(caller,
name)`` with a name from :data:`CATALOG` (tests/test_permissions_catalog.py
fails for a name that is not here, and for a route that checks none), custom
roles may only hold names from it, and docs/admin/roles.md is checked against
it. Plugins reuse these names for their own routes.
"""

from __future__ import annotations

CATALOG: dict[str, str] = {
    # hierarchy, lockers, packages
    "hierarchy:read": "See the enterprise, its divisions and locations",
    "hierarchy:write": "Create, rename, move and delete divisions and locations; rename the enterprise",
    "banks:read": "See locker banks, compartments, door commands and reservations",
    "banks:write": "Create, change and delete locker banks and compartments; take compartments out of service",
    "packages:read": "See packages, their chain of custody and their notifications",
    "packages:write": "Receive packages and deposit them into lockers",
    "pickup": "Open a compartment with a pickup code (kiosks)",
    "doors:open": "Open locker doors outside a delivery or a pickup",
    "events:read": "Read the tenant's event streams",
    # partner API (#5, J2): shipping and retail software
    "partner:write": "Pre-advise deliveries, request redeliveries, create returns and exchanges (partner API)",
    "storage:read": "See storage reservations of belongings (G1-G3)",
    "storage:write": "Reserve, extend, open, end and empty storage compartments for contacts and departments",
    # hardware and agents
    "agents:read": "See site agents and their health",
    "agents:write": "Register, change and remove site agents and their hardware",
    # tenant configuration
    "plugins:read": "See which plugins the tenant enabled and their configuration",
    "plugins:write": "Enable, configure and disable plugins",
    "settings:write": "Change tenant-wide settings",
    # messages (#5, H2): the tenant's wording of its messages
    "messages:read": "See the message events and the tenant's wording of its messages",
    "messages:write": "Change the tenant's wording of its messages (per event, language and channel)",
    # identity
    "users:read": "See and search staff users",
    "users:write": "Add, edit and delete staff users; unlock accounts",
    "roles:read": "See roles and the permissions they hold",
    "roles:write": "Create, edit and delete custom roles",
    "apikeys:read": "See API keys and device credentials (never the keys themselves)",
    "apikeys:write": "Create and revoke API keys and device credentials",
    "sso:write": "Configure single sign-on (SAML, OpenID Connect) and require it",
    "audit:read": "Read the tenant's audit log",
    # directory (address book)
    "directory:read": "See the address book",
    "directory:write": "Add, edit and delete address book entries",
    "directory:import": "Import the address book from CSV or a directory service",
}

ALL = frozenset(CATALOG)

_STAFF_READ = {"hierarchy:read", "banks:read", "packages:read", "directory:read"}

#: Built-in roles users can hold: name -> (description, permissions).
USER_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    "enterprise_admin": ("Enterprise administrator: every permission in the tenant", ALL),
    "mailroom_admin": (
        "Mailroom administrator: runs mailrooms and lockers, manages staff of their scope",
        frozenset(
            _STAFF_READ
            | {
                "banks:write",
                "packages:write",
                "doors:open",
                "events:read",
                "agents:read",
                "plugins:read",
                "users:read",
                "users:write",
                "roles:read",
                "apikeys:read",
                "apikeys:write",
                "audit:read",
                "directory:write",
                "messages:read",
                "storage:read",
                "storage:write",
            }
        ),
    ),
    "locker_operator": (
        "Locker operator: receives and deposits packages, services compartments",
        frozenset(
            _STAFF_READ
            | {"packages:write", "doors:open", "events:read", "agents:read", "storage:read", "storage:write"}
        ),
    ),
    "carrier": (
        "Carrier: delivers packages into lockers",
        frozenset({"banks:read", "packages:read", "packages:write"}),
    ),
    # No staff permission: packages:read would show everyone's packages. The
    # recipient's own view (their packages only) comes with the recipient portal.
    "recipient": (
        "Recipient: no staff permission; the default for people signed in by single sign-on",
        frozenset(),
    ),
}

#: Built-in roles of API keys and devices (kept from the first release).
KEY_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    "admin": ("Integration key with every permission", ALL),
    "operator": (
        "Integration key for mailroom software",
        frozenset(
            {
                "hierarchy:read",
                "banks:read",
                "banks:write",
                "packages:read",
                "packages:write",
                "doors:open",
                "agents:read",
                "events:read",
                "directory:read",
                "storage:read",
                "storage:write",
            }
        ),
    ),
    "kiosk": ("Device credential of a kiosk, bound to one bank", frozenset({"banks:read", "pickup"})),
    "agent": ("Device credential of a site agent, bound to one bank", frozenset({"banks:read"})),
}

#: Every built-in role by name.
BUILTIN: dict[str, frozenset[str]] = {name: perms for name, (_, perms) in (USER_ROLES | KEY_ROLES).items()}


def unknown(names) -> list[str]:
    """The names that are not in the catalog, sorted."""
    return sorted(set(names) - ALL)


def held(actor) -> frozenset[str]:
    """What an actor may do: its own list, else its built-in role's; the system may do anything."""
    if actor.permissions is not None:
        return actor.permissions
    if actor.role == "system":
        return ALL
    return BUILTIN.get(actor.role, frozenset())
