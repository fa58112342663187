"""CSV imports and exports of the directory and the hierarchy, and scheduled SFTP imports.

An upload is the raw CSV as the request body (``Content-Type: text/csv``) or a
``multipart/form-data`` form with the file in the field ``file``. The body is
read as it arrives, under the import size cap (413 with the report beyond it),
not with Litestar's own 10 MB limit, so a refusal always carries a report.
Downloads (templates and exports) are UTF-8 with a byte order mark, which
spreadsheets need to show accents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, Meta, UnsetType
from multipart import MultipartSegment, ParserError, PushMultipartParser

from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.directory import csvfile, exports, imports, schedule
from pigeonhole.domain.errors import Invalid
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require

BASE = "/api/v1/t/{tenant:str}/directory"
BOM = "\ufeff"

#: Who may import each kind: the permission that would let them make the same changes one by one.
IMPORT_PERMISSION = {"contacts": "directory:import", "users": "users:write", "locations": "hierarchy:write"}
EXPORT_PERMISSION = {
    "contacts": "directory:read",
    "users": "users:read",
    "locations": "hierarchy:read",
    "divisions": "hierarchy:read",
}


class ImportProblem(msgspec.Struct):
    line: int | None
    message: str
    column: str | None = None


class ImportRun(msgspec.Struct):
    id: UUID
    kind: str
    source: str
    filename: str
    schedule_id: UUID | None
    status: str
    dry_run: bool
    deactivate_missing: bool
    created_by: str
    started_at: datetime
    finished_at: datetime
    rows: int
    created: int
    updated: int
    unchanged: int
    deactivated: int
    error_count: int
    message: str


class ImportRunDetail(ImportRun):
    errors: list[ImportProblem] = []
    encoding: str | None = None


class ImportReport(msgspec.Struct):
    import_id: UUID | None
    kind: str
    source: str
    filename: str
    status: str
    dry_run: bool
    deactivate_missing: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    deactivated: int
    error_count: int
    errors: list[ImportProblem]
    message: str
    encoding: str | None


Text100 = Annotated[str, Meta(max_length=100)]
Text1000 = Annotated[str, Meta(max_length=1000)]
Key = Annotated[str, Meta(max_length=20000)]


class ScheduleIn(s.Strict):
    name: Text100
    host: Annotated[str, Meta(max_length=255)]
    username: Text100
    private_key: Key
    host_key: Key
    remote_path: Text1000
    interval_minutes: int
    kind: str = "contacts"
    port: int = 22
    deactivate_missing: bool = False
    alert_emails: list[Annotated[str, Meta(max_length=320)]] = []
    enabled: bool = True


class SchedulePatch(s.Strict):
    name: Text100 | UnsetType = UNSET
    host: Annotated[str, Meta(max_length=255)] | UnsetType = UNSET
    username: Text100 | UnsetType = UNSET
    private_key: Key | UnsetType = UNSET
    host_key: Key | UnsetType = UNSET
    remote_path: Text1000 | UnsetType = UNSET
    interval_minutes: int | UnsetType = UNSET
    kind: str | UnsetType = UNSET
    port: int | UnsetType = UNSET
    deactivate_missing: bool | UnsetType = UNSET
    alert_emails: list[Annotated[str, Meta(max_length=320)]] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class Schedule(msgspec.Struct):
    id: UUID
    name: str
    kind: str
    source: str
    host: str
    port: int
    username: str
    host_key: str
    remote_path: str
    interval_minutes: int
    deactivate_missing: bool
    alert_emails: list[str]
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_status: str | None
    last_message: str | None
    created_at: datetime
    updated_at: datetime


class PollResult(msgspec.Struct):
    status: str
    message: str
    import_id: UUID | None


def _given(data: msgspec.Struct) -> dict[str, Any]:
    return {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not UNSET}


# --- reading an upload ---------------------------------------------------------------------


async def _read_upload(request: Request) -> csvfile.Table:
    limit = csvfile.max_bytes()
    reader = csvfile.CsvReader(limit=limit)
    content_type, options = request.content_type
    if content_type != "multipart/form-data":
        async for chunk in request.stream():
            reader.feed(chunk)
        return reader.finish()
    boundary = options.get("boundary")
    if not boundary:
        raise Invalid("multipart/form-data without a boundary: send the file as the field 'file'")
    found = False
    filename = ""
    received = 0
    segment: MultipartSegment | None = None
    try:
        with PushMultipartParser(boundary.encode()) as parser:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit + 1024 * 1024:
                    raise csvfile.FileTooLarge(limit)
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment = part
                        if part.name == "file":
                            found, filename = True, part.filename or ""
                    elif part and segment is not None and segment.name == "file":
                        reader.feed(part)
                    elif part is None:
                        segment = None
                if parser.closed:
                    break
    except ParserError as exc:
        raise Invalid(f"The multipart form cannot be read: {exc}") from None
    if not found:
        raise Invalid("The form has no field 'file': send the CSV file in a field named 'file'")
    table = reader.finish()
    table.filename = filename
    return table


def _filename(request: Request) -> str:
    return request.headers.get("x-filename", "")[:300]


def _csv(kind: str, pieces) -> Response:
    return Response(
        content=(BOM + "".join(pieces)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'},
    )


async def _import(caller: Caller, request: Request, kind: str, dry_run: bool, deactivate_missing: bool):
    require(caller, IMPORT_PERMISSION[kind])
    scopes.require_whole_tenant(caller, f"import {kind}")  # a file may name any division or person
    report = await imports.run(
        caller.tenant,
        caller.actor,
        kind,
        lambda: _read_upload(request),
        source="upload",
        filename=_filename(request),
        dry_run=dry_run,
        deactivate_missing=deactivate_missing,
    )
    return Response(msgspec.convert(report.as_dict(), ImportReport), status_code=200 if dry_run else 201)


async def _template(caller: Caller, kind: str) -> Response:
    require(caller, IMPORT_PERMISSION[kind])
    async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
        columns, rows = await imports.template(ctx, kind)
    return _csv(f"{kind}-template", csvfile.write_rows(columns, rows))


async def _export(caller: Caller, kind: str) -> Response:
    require(caller, EXPORT_PERMISSION[kind])
    if kind in ("users", "locations", "divisions"):
        # identity (#3): these files list the whole tenant; a caller limited
        # to some locations would see beyond them.
        scopes.require_whole_tenant(caller, f"export {kind}")
    async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
        pieces = list(await exports.export(ctx, kind))
    return _csv(kind, pieces)


IMPORT_DOC = (
    "The CSV file is the body (Content-Type text/csv) or the field 'file' of a multipart form. "
    "All or nothing: a file with any wrong row imports nothing and answers 422 with every problem "
    "by line; over the size cap, 413. dry_run=true checks and counts without changing anything."
)


class DirectoryImportController(Controller):
    path = BASE + "/imports"
    tags = ["directory: import and export"]
    request_max_body_size = None  # our own cap, enforced while reading, with a report

    @get("/", summary="Import history, most recent first (status and counts of each run)")
    async def list_runs(
        self,
        caller: NamedDependency[Caller],
        kind: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        limit: FromQuery[int] = 50,
    ) -> list[ImportRun]:
        require(caller, "directory:import")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(ImportRun, await imports.list_runs(ctx, kind=kind, status=status, limit=limit))

    @get("/{import_id:uuid}", summary="One import run with its report (every problem by line)")
    async def get_run(self, caller: NamedDependency[Caller], import_id: FromPath[UUID]) -> ImportRunDetail:
        require(caller, "directory:import")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return msgspec.convert(await imports.get_run(ctx, import_id), ImportRunDetail)

    @post("/contacts", summary="Import contacts from CSV", description=IMPORT_DOC)
    async def import_contacts(
        self,
        caller: NamedDependency[Caller],
        request: Request,
        dry_run: FromQuery[bool] = False,
        deactivate_missing: FromQuery[bool] = False,
    ) -> Response:
        return await _import(caller, request, "contacts", dry_run, deactivate_missing)

    @post("/users", summary="Import staff users from CSV", description=IMPORT_DOC)
    async def import_users(
        self, caller: NamedDependency[Caller], request: Request, dry_run: FromQuery[bool] = False
    ) -> Response:
        return await _import(caller, request, "users", dry_run, False)

    @post("/locations", summary="Import locations from CSV", description=IMPORT_DOC)
    async def import_locations(
        self, caller: NamedDependency[Caller], request: Request, dry_run: FromQuery[bool] = False
    ) -> Response:
        return await _import(caller, request, "locations", dry_run, False)

    @get("/templates/contacts.csv", summary="The contacts import template (with the tenant's custom fields)")
    async def contacts_template(self, caller: NamedDependency[Caller]) -> Response:
        return await _template(caller, "contacts")

    @get("/templates/users.csv", summary="The users import template")
    async def users_template(self, caller: NamedDependency[Caller]) -> Response:
        return await _template(caller, "users")

    @get("/templates/locations.csv", summary="The locations import template")
    async def locations_template(self, caller: NamedDependency[Caller]) -> Response:
        return await _template(caller, "locations")


class DirectoryExportController(Controller):
    path = BASE + "/exports"
    tags = ["directory: import and export"]

    @get("/contacts.csv", summary="Every contact, in the columns of the import template")
    async def contacts(self, caller: NamedDependency[Caller]) -> Response:
        return await _export(caller, "contacts")

    @get("/users.csv", summary="Every active staff user, in the columns of the import template")
    async def users(self, caller: NamedDependency[Caller]) -> Response:
        return await _export(caller, "users")

    @get("/locations.csv", summary="Every location, in the columns of the import template")
    async def locations(self, caller: NamedDependency[Caller]) -> Response:
        return await _export(caller, "locations")

    @get("/divisions.csv", summary="Every division with its number of locations")
    async def divisions(self, caller: NamedDependency[Caller]) -> Response:
        return await _export(caller, "divisions")


class ImportScheduleController(Controller):
    path = BASE + "/import-schedules"
    tags = ["directory: scheduled SFTP imports"]

    @get("/")
    async def list_schedules(self, caller: NamedDependency[Caller]) -> list[Schedule]:
        require(caller, "directory:import")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(Schedule, await schedule.list_schedules(ctx))

    @post(
        "/",
        summary="Add a scheduled SFTP import",
        description="Key authentication; host_key is the server's public key (OpenSSH format) and is checked "
        "on every connection. The private key is stored sealed and never shown again.",
    )
    async def create_schedule(self, caller: NamedDependency[Caller], data: JSONBody[ScheduleIn]) -> Schedule:
        require(caller, "directory:import")
        scopes.require_whole_tenant(caller, "schedule imports")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return msgspec.convert(await schedule.create(ctx, _given(data)), Schedule)

    @get("/{schedule_id:uuid}")
    async def get_schedule(self, caller: NamedDependency[Caller], schedule_id: FromPath[UUID]) -> Schedule:
        require(caller, "directory:import")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return msgspec.convert(await schedule.get(ctx, schedule_id), Schedule)

    @patch("/{schedule_id:uuid}")
    async def update_schedule(
        self, caller: NamedDependency[Caller], schedule_id: FromPath[UUID], data: JSONBody[SchedulePatch]
    ) -> Schedule:
        require(caller, "directory:import")
        scopes.require_whole_tenant(caller, "schedule imports")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            return msgspec.convert(await schedule.update(ctx, schedule_id, _given(data)), Schedule)

    @delete("/{schedule_id:uuid}", summary="Delete a schedule (its import history stays)")
    async def delete_schedule(self, caller: NamedDependency[Caller], schedule_id: FromPath[UUID]) -> None:
        require(caller, "directory:import")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await schedule.delete(ctx, schedule_id)

    @post(
        "/{schedule_id:uuid}/poll",
        summary="Poll the SFTP source now",
        description="Imports the file if two polls saw it unchanged (a file still being written is never "
        "imported); otherwise says why not (waiting, unchanged, missing, failed).",
        status_code=200,
    )
    async def poll_now(self, caller: NamedDependency[Caller], schedule_id: FromPath[UUID]) -> PollResult:
        require(caller, "directory:import")
        scopes.require_whole_tenant(caller, "run scheduled imports")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await schedule.get(ctx, schedule_id)  # 404 before any network work
        return msgspec.convert(await schedule.poll(caller.tenant, schedule_id), PollResult)


CONTROLLERS = [DirectoryImportController, DirectoryExportController, ImportScheduleController]
