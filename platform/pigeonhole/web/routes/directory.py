"""The directory (issue #6): contacts, departments, custom fields.

Custom field values are filtered with query parameters ``custom.<key>=value``
(text fields by prefix, other types by equality).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, Meta, UnsetType

from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.directory import contacts, custom_fields, departments, search
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require

BASE = "/api/v1/t/{tenant:str}/directory"
Short = Annotated[str, Meta(max_length=320)]


class ContactIn(s.Strict):
    name: s.Name
    email: Short | None = None
    phone: Short | None = None
    personnel_id: Short | None = None
    employee_id: Short | None = None
    accessibility: Annotated[str, Meta(max_length=500)] = ""
    language: Literal["en", "fr"] = "en"
    active: bool = True
    department_ids: list[UUID] = []
    custom: dict[str, Any] = {}
    #: The channels this person chose to be told on (["email", "sms"]); null: every channel that reaches them.
    notify_channels: list[str] | None = None


class ContactPatch(s.Strict):
    name: s.Name | UnsetType = UNSET
    email: Short | None | UnsetType = UNSET
    phone: Short | None | UnsetType = UNSET
    personnel_id: Short | None | UnsetType = UNSET
    employee_id: Short | None | UnsetType = UNSET
    accessibility: Annotated[str, Meta(max_length=500)] | UnsetType = UNSET
    language: Literal["en", "fr"] | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    department_ids: list[UUID] | UnsetType = UNSET
    custom: dict[str, Any] | UnsetType = UNSET
    notify_channels: list[str] | None | UnsetType = UNSET


class DepartmentRef(msgspec.Struct):
    id: UUID
    name: str


class Contact(msgspec.Struct):
    id: UUID
    name: str
    email: str | None
    phone: str | None
    personnel_id: str | None
    employee_id: str | None
    accessibility: str
    language: str
    active: bool
    deactivated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    departments: list[DepartmentRef]
    custom: dict[str, Any]
    notify_channels: list[str] | None = None


class DepartmentIn(s.Strict):
    name: s.Name
    key_contact_id: UUID | None = None
    member_ids: list[UUID] = []


class DepartmentPatch(s.Strict):
    name: s.Name | UnsetType = UNSET
    key_contact_id: UUID | None | UnsetType = UNSET


class MembersIn(s.Strict):
    contact_ids: list[UUID]


class MembersChange(s.Strict):
    add: list[UUID] = []
    remove: list[UUID] = []


class MemberOut(msgspec.Struct):
    id: UUID
    name: str
    email: str | None
    active: bool


class Department(msgspec.Struct):
    id: UUID
    name: str
    key_contact_id: UUID | None
    key_contact: MemberOut | None
    member_count: int
    waiting_packages: int
    created_at: datetime
    updated_at: datetime
    members: list[MemberOut] | None = None


class CustomFieldIn(s.Strict):
    screen: Literal["users", "contacts", "packages", "locations"]
    key: Annotated[str, Meta(min_length=1, max_length=40)]
    label: Annotated[str, Meta(min_length=1, max_length=100)]
    type: Literal["text", "number", "date", "choice", "yes_no"]
    choices: list[Annotated[str, Meta(max_length=100)]] = []
    required: bool = False


class CustomFieldPatch(s.Strict):
    label: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    required: bool | None = None
    choices: list[Annotated[str, Meta(max_length=100)]] | None = None


class CustomField(msgspec.Struct):
    id: UUID
    screen: str
    key: str
    label: str
    type: str
    choices: list[str]
    required: bool
    position: int
    created_at: datetime


def given(data: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carries."""
    return {f: v for f in data.__struct_fields__ if (v := getattr(data, f)) is not UNSET}


def custom_filters(request: Request) -> dict[str, str]:
    return {k[len("custom.") :]: v for k, v in request.query_params.items() if k.startswith("custom.")}


class ContactController(Controller):
    path = BASE + "/contacts"
    tags = ["directory"]

    @get(
        "/",
        summary="Search contacts",
        description=(
            "q matches the start of the name, family name, email or Personnel ID; name, email, "
            "personnel_id, department_id (or department, a name), active and custom.<key> narrow further."
        ),
    )
    async def search_contacts(
        self,
        caller: NamedDependency[Caller],
        request: Request,
        q: FromQuery[str | None] = None,
        name: FromQuery[str | None] = None,
        email: FromQuery[str | None] = None,
        personnel_id: FromQuery[str | None] = None,
        department_id: FromQuery[UUID | None] = None,
        department: FromQuery[str | None] = None,
        active: FromQuery[bool | None] = None,
        limit: FromQuery[int] = 50,
        offset: FromQuery[int] = 0,
    ) -> list[Contact]:
        require(caller, "directory:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await search.search_contacts(
                ctx,
                q=q,
                name=name,
                email=email,
                personnel_id=personnel_id,
                department_id=department_id,
                department=department,
                active=active,
                custom=custom_filters(request),
                limit=limit,
                offset=offset,
            )
            return s.out(Contact, rows)

    @post("/", summary="Add a contact")
    async def create_contact(self, caller: NamedDependency[Caller], data: JSONBody[ContactIn]) -> Contact:
        require(caller, "directory:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return s.out(Contact, await contacts.create_contact(ctx, msgspec.structs.asdict(data)))

    @get("/{contact_id:uuid}")
    async def get_contact(self, caller: NamedDependency[Caller], contact_id: FromPath[UUID]) -> Contact:
        require(caller, "directory:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(Contact, await contacts.get_contact(ctx, contact_id))

    @patch(
        "/{contact_id:uuid}",
        summary="Edit a contact; active=false deactivates (their waiting packages are flagged for the mailroom)",
    )
    async def update_contact(
        self, caller: NamedDependency[Caller], contact_id: FromPath[UUID], data: JSONBody[ContactPatch]
    ) -> Contact:
        require(caller, "directory:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return s.out(Contact, await contacts.update_contact(ctx, contact_id, given(data)))

    @delete("/{contact_id:uuid}", summary="Delete a contact (refused while packages wait for them)")
    async def delete_contact(self, caller: NamedDependency[Caller], contact_id: FromPath[UUID]) -> None:
        require(caller, "directory:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await contacts.delete_contact(ctx, contact_id)


class DepartmentController(Controller):
    path = BASE + "/departments"
    tags = ["directory"]

    @get("/")
    async def list_departments(self, caller: NamedDependency[Caller]) -> list[Department]:
        require(caller, "directory:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(Department, await departments.list_departments(ctx))

    @post("/", summary="Add a department, optionally with members and a key contact")
    async def create_department(
        self, caller: NamedDependency[Caller], data: JSONBody[DepartmentIn]
    ) -> Department:
        require(caller, "directory:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await departments.create_department(
                ctx, data.name, key_contact_id=data.key_contact_id, member_ids=data.member_ids
            )
            return s.out(Department, row)

    @get("/{department_id:uuid}")
    async def get_department(
        self, caller: NamedDependency[Caller], department_id: FromPath[UUID]
    ) -> Department:
        require(caller, "directory:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(Department, await departments.get_department(ctx, department_id))

    @patch("/{department_id:uuid}", summary="Rename a department or change its key contact (null removes it)")
    async def update_department(
        self, caller: NamedDependency[Caller], department_id: FromPath[UUID], data: JSONBody[DepartmentPatch]
    ) -> Department:
        require(caller, "directory:write")
        changes = given(data)
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await departments.update_department(
                ctx,
                department_id,
                name=changes.get("name"),
                key_contact_id=changes.get("key_contact_id", departments.UNSET),
            )
            return s.out(Department, row)

    @put("/{department_id:uuid}/members", summary="Replace the department's members")
    async def set_members(
        self, caller: NamedDependency[Caller], department_id: FromPath[UUID], data: JSONBody[MembersIn]
    ) -> Department:
        require(caller, "directory:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return s.out(Department, await departments.set_members(ctx, department_id, data.contact_ids))

    @post("/{department_id:uuid}/members", summary="Add and remove members", status_code=200)
    async def change_members(
        self, caller: NamedDependency[Caller], department_id: FromPath[UUID], data: JSONBody[MembersChange]
    ) -> Department:
        require(caller, "directory:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await departments.change_members(ctx, department_id, add=data.add, remove=data.remove)
            return s.out(Department, row)

    @delete("/{department_id:uuid}", summary="Delete a department (refused while packages wait for it)")
    async def delete_department(self, caller: NamedDependency[Caller], department_id: FromPath[UUID]) -> None:
        require(caller, "directory:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await departments.delete_department(ctx, department_id)


class CustomFieldController(Controller):
    path = BASE + "/custom-fields"
    tags = ["directory"]

    @get("/", summary="Custom field definitions, optionally of one screen")
    async def list_fields(
        self, caller: NamedDependency[Caller], screen: FromQuery[str | None] = None
    ) -> list[CustomField]:
        require(caller, "directory:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(CustomField, await custom_fields.list_fields(ctx, screen))

    @post("/", summary="Add a custom field to a screen (at most 10 per screen)")
    async def create_field(
        self, caller: NamedDependency[Caller], data: JSONBody[CustomFieldIn]
    ) -> CustomField:
        require(caller, "settings:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await custom_fields.create_field(
                ctx,
                data.screen,
                data.key,
                data.label,
                data.type,
                choices=data.choices,
                required=data.required,
            )
            return s.out(CustomField, row)

    @get("/{field_id:uuid}")
    async def get_field(self, caller: NamedDependency[Caller], field_id: FromPath[UUID]) -> CustomField:
        require(caller, "directory:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(CustomField, await custom_fields.get_field(ctx, field_id))

    @patch("/{field_id:uuid}", summary="Change a field's label, required flag or choices")
    async def update_field(
        self, caller: NamedDependency[Caller], field_id: FromPath[UUID], data: JSONBody[CustomFieldPatch]
    ) -> CustomField:
        require(caller, "settings:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await custom_fields.update_field(
                ctx, field_id, label=data.label, required=data.required, choices=data.choices
            )
            return s.out(CustomField, row)

    @delete("/{field_id:uuid}", summary="Delete a custom field and its values")
    async def delete_field(self, caller: NamedDependency[Caller], field_id: FromPath[UUID]) -> None:
        require(caller, "settings:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await custom_fields.delete_field(ctx, field_id)


DIRECTORY_CONTROLLERS = [ContactController, DepartmentController, CustomFieldController]
