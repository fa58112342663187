"""CSV imports of contacts, users and locations: all or nothing, with a report per row.

One path for every source (an upload, ``pigeonhole import``, a scheduled SFTP
fetch): :func:`run` reads the file, checks its header, checks every row and
collects every problem of every row, and writes only when no row has one, in
one transaction. A dry run does the same work, reports the same counts, and
rolls back. Each run is recorded in ``import_run`` with its report, so the
history (and a failed scheduled import) is visible in the API.

Rows are named by their line in the file (the header is line 1), the way a
person finds them in a spreadsheet. See docs/decisions/0022-csv-imports.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from piccolo.engine.postgres import PostgresEngine

from pigeonhole.db.engine import get_engine, tenant_tx
from pigeonhole.db.tables import Department, Division, ImportRun, Location
from pigeonhole.domain import clock
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.directory import csvfile, custom_fields
from pigeonhole.domain.directory.csvfile import Table
from pigeonhole.domain.directory.keys import fold
from pigeonhole.domain.errors import DomainError, Invalid, NotFound

KINDS = ("contacts", "users", "locations")
#: The most row errors a report lists (the count is always complete).
MAX_LISTED_ERRORS = 1000
YES = {"yes", "y", "true", "1", "oui"}
NO = {"no", "n", "false", "0", "non"}

Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class Problem:
    line: int | None
    message: str
    column: str | None = None


@dataclass
class Report:
    kind: str
    source: str
    filename: str = ""
    dry_run: bool = False
    deactivate_missing: bool = False
    status: str = "applied"  # applied | dry_run | refused | failed
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    error_count: int = 0
    errors: list[Problem] = field(default_factory=list)
    message: str = ""
    encoding: str | None = None
    import_id: UUID | None = None

    def add(self, line: int | None, message: str, column: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(Problem(line, message, column))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["import_id"] = str(self.import_id) if self.import_id else None
        return out


class ImportRefused(DomainError):
    """The file or some rows are wrong: nothing was imported. Carries the whole report."""

    status_code = 422

    def __init__(self, report: Report, status_code: int = 422) -> None:
        super().__init__(report.message, report=report.as_dict())
        self.status_code = status_code
        self.report = report


class _Rollback(Exception):
    """Leaves the import transaction without committing (dry runs, refused rows)."""


# --- the run ------------------------------------------------------------------------


async def run(
    tenant: TenantInfo,
    actor: Actor,
    kind: str,
    read: Callable[[], Awaitable[Table]],
    *,
    source: str,
    filename: str = "",
    dry_run: bool = False,
    deactivate_missing: bool = False,
    schedule_id: UUID | None = None,
    progress: Progress | None = None,
) -> Report:
    """Read, check and (unless refused or a dry run) apply one file; record the run.

    Raises :class:`ImportRefused` (422, or 413 for a file over the size cap)
    with the report when nothing was imported because of the file.
    """
    spec = SPECS.get(kind)
    if spec is None:
        raise Invalid(f"Unknown import '{kind}' (imports: {', '.join(KINDS)})")
    if deactivate_missing and not spec.can_deactivate:
        raise Invalid(f"An import of {kind} cannot deactivate what the file lacks (only contacts can)")
    progress = progress or _no_progress
    report = Report(kind, source, filename, dry_run, deactivate_missing)
    started = clock.now()
    status_code = 422
    try:
        table = await read()
        report.encoding = table.encoding
        report.filename = report.filename or table.filename[:300]
        report.rows = len(table.rows) + len(table.row_errors)
        # Checking reads only: on SQLite the single writer's lock is held for the writes alone.
        async with tenant_context(tenant, actor, write=False) as ctx:
            required, optional = await spec.columns(ctx)
            csvfile.check_columns(table, required=required, optional=optional)
            for line, message in table.row_errors:
                report.add(line, message)
            plan = await spec.check(ctx, table, report, progress)
        if report.error_count:
            raise _Rollback
        reads_only = dry_run and spec.dry_run_reads_only
        async with tenant_context(tenant, actor, write=not reads_only) as ctx:
            if not reads_only:
                await _one_import_at_a_time(ctx, kind)
            await spec.write(ctx, plan, report, progress)
            if report.error_count or dry_run:
                raise _Rollback
    except _Rollback:
        pass
    except DomainError as exc:  # the file (FileRefused, FileTooLarge) or the upload itself
        status_code = exc.status_code
        report.add(getattr(exc, "line", None), getattr(exc, "bare", exc.message))
    except Exception as exc:
        report.status = "failed"
        report.message = f"The import failed: {type(exc).__name__}: {exc}; nothing was imported"
        await _record(tenant, report, actor, started, schedule_id)
        raise
    if report.error_count:
        report.status = "refused"
        report.created = report.updated = report.unchanged = report.deactivated = 0
        report.message = _refusal(report)
    elif dry_run:
        report.status = "dry_run"
        report.message = "Dry run, nothing was changed: " + _counts(report)
    else:
        report.status = "applied"
        report.message = "Imported: " + _counts(report)
    await _record(tenant, report, actor, started, schedule_id)
    if report.status == "refused":
        raise ImportRefused(report, status_code)
    return report


def _refusal(report: Report) -> str:
    first = report.errors[0]
    if report.error_count == 1 and (first.line is None or first.line == 1 or report.rows == 0):
        return f"{_where(first)}; nothing was imported"  # the file itself: one sentence says it
    n = report.error_count
    return f"{n} error{'s' if n > 1 else ''} in the file; nothing was imported (first: {_where(first)})"


def _where(problem: Problem) -> str:
    return f"Line {problem.line}: {problem.message}" if problem.line else problem.message


def _counts(report: Report) -> str:
    parts = [f"{report.created} created", f"{report.updated} updated", f"{report.unchanged} unchanged"]
    if report.deactivate_missing or report.deactivated:
        parts.append(f"{report.deactivated} deactivated")
    return ", ".join(parts)


async def _one_import_at_a_time(ctx: Ctx, kind: str) -> None:
    """PostgreSQL: imports of one kind for one tenant queue up (SQLite has one writer anyway)."""
    if isinstance(get_engine(), PostgresEngine):
        await ImportRun.raw("SELECT pg_advisory_xact_lock(hashtext({}))", f"import:{ctx.tenant_id}:{kind}")


async def _record(tenant: TenantInfo, report: Report, actor: Actor, started, schedule_id) -> None:
    run_id = uuid.uuid4()
    report.import_id = run_id
    async with tenant_tx(tenant.id) as scope:
        await scope.insert(
            ImportRun,
            dict(
                id=run_id,
                kind=report.kind,
                source=report.source,
                filename=report.filename[:300],
                schedule_id=schedule_id,
                status=report.status,
                dry_run=report.dry_run,
                deactivate_missing=report.deactivate_missing,
                created_by=actor.label,
                started_at=started,
                finished_at=clock.now(),
                rows=report.rows,
                created=report.created,
                updated=report.updated,
                unchanged=report.unchanged,
                deactivated=report.deactivated,
                error_count=report.error_count,
                message=report.message,
                report=json.dumps(report.as_dict()),
            ),
        )


# --- history --------------------------------------------------------------------------

RUN_COLUMNS = (
    "id",
    "kind",
    "source",
    "filename",
    "schedule_id",
    "status",
    "dry_run",
    "deactivate_missing",
    "created_by",
    "started_at",
    "finished_at",
    "rows",
    "created",
    "updated",
    "unchanged",
    "deactivated",
    "error_count",
    "message",
)


async def list_runs(
    ctx: Ctx,
    *,
    kind: str | None = None,
    status: str | None = None,
    schedule_id: UUID | None = None,
    limit: int = 50,
) -> list[dict]:
    if not 1 <= limit <= 500:
        raise Invalid("limit must be between 1 and 500")
    query = ctx.scope.select(*(getattr(ImportRun, c) for c in RUN_COLUMNS))
    if kind is not None:
        query = query.where(ImportRun.kind == kind)
    if status is not None:
        query = query.where(ImportRun.status == status)
    if schedule_id is not None:
        query = query.where(ImportRun.schedule_id == schedule_id)
    return await query.order_by(ImportRun.started_at, ascending=False).limit(limit)


async def get_run(ctx: Ctx, run_id: UUID) -> dict:
    row = await ctx.scope.select(ImportRun).where(ImportRun.id == run_id).first()
    if row is None:
        raise NotFound("Import", run_id)
    out = {c: row[c] for c in RUN_COLUMNS}
    report = json.loads(row["report"])
    out["errors"] = report.get("errors", [])
    out["encoding"] = report.get("encoding")
    return out


# --- what each import reads -------------------------------------------------------------


def _key(text: str) -> str:
    """:func:`keys.fold`, with a fast path for ASCII (most of a 100,000-row file): the same result."""
    return " ".join(text.lower().split()) if text.isascii() else fold(text)


def _yes_no(value: str, default: bool) -> bool | None:
    text = value.strip().lower()
    if not text:
        return default
    if text in YES:
        return True
    if text in NO:
        return False
    return None


def _custom_values(row: csvfile.Row, fields: dict[str, dict]) -> dict[str, str]:
    return {k: row.values[k] for k in fields if k in row.values}


def _check_custom(ctx: Ctx, screen: str, report: Report, line: int, values: dict, fields: dict):
    """Custom field values converted, or None after reporting the problem."""

    async def go():
        try:
            return await custom_fields.validate(ctx, screen, values, fields=fields)
        except Invalid as exc:
            report.add(line, exc.message)
            return None

    return go()


class ContactsImport:
    """Contacts (C2), matched by Personnel ID, else by email; written by the directory's bulk upsert."""

    kind = "contacts"
    screen = "contacts"
    can_deactivate = True
    dry_run_reads_only = True  # the bulk upsert counts without writing
    required = (
        "name",
        "email",
        "phone",
        "personnel_id",
        "employee_id",
        "department",
        "accessibility",
        "language",
    )
    optional = ("active",)
    example = [
        ["Ada Lovelace", "ada@example.com", "+44 20 7946 0001", "P-1001", "E-1", "Research", "", "en", "yes"],
        [
            "Grace Hopper",
            "grace@example.com",
            "",
            "P-1002",
            "E-2",
            "Research; Navy",
            "wheelchair",
            "fr",
            "yes",
        ],
    ]

    async def columns(self, ctx: Ctx) -> tuple[list[str], list[str]]:
        fields = await custom_fields.fields_by_key(ctx, self.screen)
        return list(self.required), [*self.optional, *fields]

    async def check(self, ctx: Ctx, table: Table, report: Report, progress: Progress):
        from pigeonhole.domain.directory.contacts import ContactIn, check_email

        fields = await custom_fields.fields_by_key(ctx, self.screen)
        departments = {r["name_key"] for r in await ctx.scope.select(Department.name_key)}
        rows: list[ContactIn] = []
        lines: list[int] = []
        seen_pid: dict[str, int] = {}
        seen_email: dict[str, int] = {}
        total = len(table.rows)
        for i, row in enumerate(table.rows):
            if i % 5000 == 0:
                progress("checking", i, total)
            v = row.values
            line = row.line
            errors_before = report.error_count
            name = v["name"]
            if not name:
                report.add(line, "A contact needs a name", "name")
            elif len(name) > 200:
                report.add(line, "A name has at most 200 characters", "name")
            email = v["email"] or None
            if email:
                try:
                    check_email(email)
                except Invalid as exc:
                    report.add(
                        line,
                        f"Bad email '{email}'" + (": " + exc.message if "email" not in exc.message else ""),
                        "email",
                    )
            pid = v["personnel_id"] or None
            if not pid and not email:
                report.add(
                    line,
                    "A contact needs a Personnel ID or an email, to be found again by the next import",
                    "personnel_id",
                )
            if pid:
                key = _key(pid)
                if key in seen_pid:
                    report.add(
                        line,
                        f"Duplicate Personnel ID '{pid}' (lines {seen_pid[key]} and {line})",
                        "personnel_id",
                    )
                else:
                    seen_pid[key] = line
            elif email:
                key = _key(email)
                if key in seen_email:
                    report.add(
                        line,
                        f"Duplicate email '{email}' for rows without a Personnel ID (lines {seen_email[key]} and {line})",
                        "email",
                    )
                else:
                    seen_email[key] = line
            names = [n.strip() for n in v["department"].split(";") if n.strip()]
            for dept in names:
                if _key(dept) not in departments:
                    report.add(line, f"Unknown department '{dept}'", "department")
            language = v["language"].strip().lower() or "en"
            if language not in ("en", "fr"):
                report.add(line, f"Unknown language '{v['language']}' (en or fr)", "language")
            active = _yes_no(v.get("active", ""), True)
            if active is None:
                report.add(line, f"active must be yes or no (got '{v['active']}')", "active")
            if fields:
                await _check_custom(ctx, self.screen, report, line, _custom_values(row, fields), fields)
            if report.error_count != errors_before:
                continue
            rows.append(
                ContactIn(
                    name=name,
                    email=email,
                    phone=v["phone"] or None,
                    personnel_id=pid,
                    employee_id=v["employee_id"] or None,
                    departments=names,
                    accessibility=v["accessibility"],
                    language=language,
                    active=bool(active),
                    custom=_custom_values(row, fields),
                )
            )
            lines.append(line)
        progress("checking", total, total)
        return rows, lines

    async def write(self, ctx: Ctx, plan, report: Report, progress: Progress) -> None:
        from pigeonhole.domain.directory.contacts import upsert_many

        rows, lines = plan
        progress("writing", 0, len(rows))
        result = await upsert_many(
            ctx, rows, deactivate_missing=report.deactivate_missing, dry_run=report.dry_run
        )
        for problem in result.errors:
            report.add(lines[problem.row] if problem.row < len(lines) else None, problem.message)
        report.created, report.updated = result.created, result.updated
        report.unchanged, report.deactivated = result.unchanged, result.deactivated
        progress("writing", len(rows), len(rows))


class LocationsImport:
    """Locations (A2), matched by division and name; a new name in a division creates a location."""

    kind = "locations"
    screen = "locations"
    can_deactivate = False
    dry_run_reads_only = False
    required = ("division", "name", "address", "region", "timezone")
    optional: tuple[str, ...] = ()
    example = [
        ["Main", "Head Office", "1 Market Street, Springfield", "IL", "America/Chicago"],
        ["Main", "Warehouse 2", "22 Dock Road, Springfield", "IL", "America/Chicago"],
    ]

    async def columns(self, ctx: Ctx) -> tuple[list[str], list[str]]:
        fields = await custom_fields.fields_by_key(ctx, self.screen)
        return list(self.required), [*self.optional, *fields]

    async def check(self, ctx: Ctx, table: Table, report: Report, progress: Progress):
        fields = await custom_fields.fields_by_key(ctx, self.screen)
        divisions = {r["name"]: r["id"] for r in await ctx.scope.select(Division.id, Division.name)}
        folded = {}
        for name, division_id in divisions.items():
            folded.setdefault(fold(name), []).append(division_id)
        seen: dict[tuple[UUID, str], int] = {}
        planned = []
        total = len(table.rows)
        for i, row in enumerate(table.rows):
            if i % 5000 == 0:
                progress("checking", i, total)
            v, line = row.values, row.line
            before = report.error_count
            division_id = divisions.get(v["division"])
            if division_id is None and len(folded.get(fold(v["division"]), [])) == 1:
                division_id = folded[fold(v["division"])][0]
            if not v["division"]:
                report.add(line, "A location needs a division", "division")
            elif division_id is None:
                report.add(line, f"Unknown division '{v['division']}'", "division")
            name = v["name"]
            if not name:
                report.add(line, "A location needs a name", "name")
            elif len(name) > 200:
                report.add(line, "A location name has at most 200 characters", "name")
            timezone = v["timezone"] or "UTC"
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                report.add(
                    line, f"Unknown time zone '{timezone}' (use a name such as Europe/Paris)", "timezone"
                )
            if division_id is not None and name:
                if (division_id, name) in seen:
                    report.add(
                        line,
                        f"Duplicate location '{name}' in division '{v['division']}' (lines {seen[(division_id, name)]} and {line})",
                        "name",
                    )
                else:
                    seen[(division_id, name)] = line
            custom = await _check_custom(ctx, self.screen, report, line, _custom_values(row, fields), fields)
            if report.error_count == before:
                values = dict(address=v["address"], region=v["region"], timezone=timezone)
                planned.append((division_id, name, values, custom or {}))
        progress("checking", total, total)
        return planned

    async def write(self, ctx: Ctx, planned, report: Report, progress: Progress) -> None:
        fields = await custom_fields.fields_by_key(ctx, self.screen)
        existing = {
            (r["division_id"], r["name"]): r
            for r in await ctx.scope.select(
                Location.id,
                Location.division_id,
                Location.name,
                Location.address,
                Location.region,
                Location.timezone,
            )
        }
        now = clock.now()
        inserts, fresh, changed_custom = [], {}, {}
        for division_id, name, values, custom in planned:
            current = existing.get((division_id, name))
            if current is None:
                location_id = uuid.uuid4()
                inserts.append(
                    dict(id=location_id, division_id=division_id, name=name, created_at=now, **values)
                )
                fresh[location_id] = custom
                report.created += 1
                continue
            if any(current[k] != values[k] for k in values):
                report.updated += 1
                await ctx.scope.update(Location, {getattr(Location, k): x for k, x in values.items()}).where(
                    Location.id == current["id"]
                )
            else:
                report.unchanged += 1
            if custom:
                changed_custom[current["id"]] = custom
        for start in range(0, len(inserts), 500):
            await ctx.scope.insert(Location, *inserts[start : start + 500])
        await custom_fields.save_many(ctx, self.screen, fresh, fields=fields, fresh=True)
        await custom_fields.save_many(ctx, self.screen, changed_custom, fields=fields)


class UsersImport:
    """Staff users (A4), matched by email; new users get the welcome mail once the import commits."""

    kind = "users"
    screen = "users"
    can_deactivate = False
    dry_run_reads_only = False
    required = ("email", "name", "employee_id", "role")
    optional: tuple[str, ...] = ()
    example = [
        ["ada@example.com", "Ada Lovelace", "E-1", "mailroom_admin"],
        ["grace@example.com", "Grace Hopper", "E-2", "locker_operator"],
    ]

    async def columns(self, ctx: Ctx) -> tuple[list[str], list[str]]:
        fields = await custom_fields.fields_by_key(ctx, self.screen)
        return list(self.required), [*self.optional, *fields]

    async def check(self, ctx: Ctx, table: Table, report: Report, progress: Progress):
        from pigeonhole.db.tables import Role
        from pigeonhole.domain.identity import permissions, users

        fields = await custom_fields.fields_by_key(ctx, self.screen)
        # Built-in roles get their rows on first use (in the write), so know them by name here.
        role_names = {n.lower(): n for n in permissions.USER_ROLES}
        role_names.update({r["name"].lower(): r["name"] for r in await ctx.scope.select(Role.name)})
        seen: dict[str, int] = {}
        planned = []
        total = len(table.rows)
        for i, row in enumerate(table.rows):
            progress("checking", i, total)
            v, line = row.values, row.line
            before = report.error_count
            try:
                email = users.normalize_email(v["email"])
            except Invalid as exc:
                report.add(line, exc.message, "email")
                email = None
            if email:
                if email in seen:
                    report.add(line, f"Duplicate email '{email}' (lines {seen[email]} and {line})", "email")
                else:
                    seen[email] = line
            if not v["name"]:
                report.add(line, "A user needs a name", "name")
            role = role_names.get(v["role"].strip().lower())
            if role is None:
                report.add(
                    line,
                    f"Unknown role '{v['role']}' (roles: {', '.join(sorted(role_names.values()))})",
                    "role",
                )
            if ctx.tenant.settings.get("require_employee_id") and not v["employee_id"]:
                report.add(line, "This tenant requires an employee ID for every user", "employee_id")
            custom = await _check_custom(ctx, self.screen, report, line, _custom_values(row, fields), fields)
            if report.error_count == before:
                planned.append((line, email, v, role, custom or {}))
        progress("checking", total, total)
        return planned

    async def write(self, ctx: Ctx, planned, report: Report, progress: Progress) -> None:
        from pigeonhole.db.tables import AppUser, Role
        from pigeonhole.domain.identity import roles, users

        fields = await custom_fields.fields_by_key(ctx, self.screen)
        await roles.ensure_builtin(ctx.scope)
        role_rows = {r["name"]: r for r in await ctx.scope.select(Role)}
        existing = {r["email"]: r for r in await ctx.scope.select(AppUser).where(AppUser.status == "active")}
        for i, (line, email, v, role_name, custom) in enumerate(planned):
            progress("writing", i, len(planned))
            role = role_rows.get(role_name)
            if role is None:  # deleted since the check
                report.add(line, f"Unknown role '{role_name}'", "role")
                continue
            current = existing.get(email)
            try:
                if current is None:
                    await users.create(
                        ctx,
                        email=email,
                        name=v["name"],
                        employee_id=v["employee_id"] or None,
                        role_id=role["id"],
                        custom=custom,
                    )
                    report.created += 1
                else:
                    user_id = current["id"]
                    same = (
                        current["name"] == v["name"]
                        and (current["employee_id"] or "") == v["employee_id"]
                        and current["role_id"] == role["id"]
                    )
                    if same:
                        report.unchanged += 1
                        if custom:  # checked with the row above
                            await custom_fields.save(ctx, self.screen, user_id, custom, fields=fields)
                    else:
                        await users.update(
                            ctx,
                            user_id,
                            name=v["name"],
                            employee_id=v["employee_id"],
                            role_id=role["id"] if current["role_id"] != role["id"] else None,
                            custom=custom,
                        )
                        report.updated += 1
            except DomainError as exc:
                report.add(line, exc.message)
        progress("writing", len(planned), len(planned))


SPECS: dict[str, Any] = {
    "contacts": ContactsImport(),
    "users": UsersImport(),
    "locations": LocationsImport(),
}


async def template(ctx: Ctx, kind: str) -> tuple[list[str], list[list[str]]]:
    """The header (custom fields of the tenant included) and two example rows."""
    spec = SPECS.get(kind)
    if spec is None:
        raise NotFound("Import template", kind)
    required, optional = await spec.columns(ctx)
    columns = [*required, *optional]
    width = len(spec.required) + len(spec.optional)
    rows = [example[:width] + [""] * (len(columns) - width) for example in spec.example]
    return columns, rows


def report_json(report: Report) -> str:
    return msgspec.json.encode(report.as_dict()).decode()
