"""CSV import of 100,000 contacts with `pigeonhole import contacts`, on PostgreSQL and SQLite.

For each backend: a fresh database, migrations, a tenant from a manifest with
40 departments, and a generated CSV file of ``--contacts`` contacts (UTF-8,
every column filled, one or two departments each). Then the real command line
in a process of its own, timed from start to exit, as an operator runs it:

1. ``dry run``: read, check every row, count, change nothing;
2. ``first import``: every contact created;
3. ``same file again``: every contact matched, nothing changed;
4. ``sync``: 1% renamed, 1% gone from the file, ``--deactivate-missing``.

Each step's output is checked (the counts the command prints), and the
database afterwards (contacts, active ones). The goal: 100,000 contacts in
under a minute on this 2-core machine, on both databases.

    make bench-import
    .venv/bin/python benchmarks/directory_import.py --backend sqlite --contacts 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from pigeonhole.db import engine
from pigeonhole.db.migrate import migrate
from pigeonhole.devtools import pgdb
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.directory import departments
from pigeonhole.manifests.apply import apply
from pigeonhole.settings import Settings, _app_database_url, set_settings
from rich.console import Console
from rich.table import Table

SLUG = "importbench"
SECRET = "pigeonhole-import-benchmark-secret"
PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))
GOAL_SECONDS = 60.0
HEADER = "name,email,phone,personnel_id,employee_id,department,accessibility,language\n"
FIRST = "Ada Alan Grace Hedy Joan Margaret Katherine Barbara Frances Radia Zoé Éloïse Noah Léa Hugo".split()
LAST = (
    "Lovelace Turing Hopper Lamarr Clarke Hamilton Johnson Liskov Allen Perlman Dupont Müller Garcia".split()
)
console = Console()


def write_csv(
    path: Path, numbers: list[int], departments: list[str], renamed: set[int] = frozenset()
) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for i in numbers:
            first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
            name = f"{first} {last} {i}" + (" (renamed)" if i in renamed else "")
            depts = departments[i % len(departments)]
            if i % 7 == 0:
                depts += "; " + departments[(i + 3) % len(departments)]
            language = "fr" if i % 5 == 0 else "en"
            access = "wheelchair" if i % 50 == 0 else ""
            f.write(
                f'{name},p{i}@example.test,+1 555 {rng.randrange(10**6, 10**7)},P-{i:07d},E-{i},"{depts}",{access},{language}\n'
            )


async def prepare(url: str, data_dir: Path) -> list[str]:
    settings = Settings(
        data_dir=data_dir, database_url=url, app_database_url=_app_database_url(url), secret_key=SECRET
    )
    set_settings(settings)
    await migrate(url, echo=lambda *_: None)
    folder = data_dir / "tenant"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tenant.toml").write_text(
        textwrap.dedent(
            f"""\
            slug = "{SLUG}"
            name = "Import Benchmark"
            """
        )
    )
    await engine.connect(settings)
    try:
        await apply(folder)
        names = [f"Department {n:02d}" for n in range(40)]
        async with tenant_context(SLUG) as ctx:
            for name in names:
                await departments.create_department(ctx, name)
        return names
    finally:
        await engine.disconnect()


async def count(url: str, data_dir: Path) -> tuple[int, int]:
    from pigeonhole.db.tables import Contact

    settings = Settings(
        data_dir=data_dir, database_url=url, app_database_url=_app_database_url(url), secret_key=SECRET
    )
    set_settings(settings)
    await engine.connect(settings)
    try:
        async with tenant_context(SLUG, write=False) as ctx:
            total = await ctx.scope.count(Contact)
            active = await ctx.scope.count(Contact).where(Contact.active == True)  # noqa: E712
        return total, active
    finally:
        await engine.disconnect()


def run_cli(url: str, data_dir: Path, *args: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_")}
    env.update(PIGEONHOLE_DATABASE_URL=url, PIGEONHOLE_DATA_DIR=str(data_dir), PIGEONHOLE_SECRET_KEY=SECRET)
    started = time.perf_counter()
    done = subprocess.run([PIGEONHOLE, "import", "contacts", *args, "--tenant", SLUG], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout.strip().splitlines()[0]


def expect(line: str, **counts: int) -> None:
    for key, value in counts.items():
        found = re.search(rf"(\d+) {key}", line)
        if not found or int(found.group(1)) != value:
            raise SystemExit(f"expected {value} {key}: {line}")


async def bench(backend: str, n: int, table: Table) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="import-bench-"))
    pg_name = None
    if backend == "postgres":
        pg_name, url = await pgdb.create_database("import_bench")
    else:
        url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    try:
        names = await prepare(url, tmp)
        numbers = list(range(1, n + 1))
        first = tmp / "contacts.csv"
        write_csv(first, numbers, names)
        churn = max(1, n // 100)
        gone = set(numbers[-churn:])
        renamed = set(numbers[:churn])
        sync = tmp / "sync.csv"
        write_csv(sync, [i for i in numbers if i not in gone], names, renamed)
        size_mb = first.stat().st_size / 1e6

        steps = [
            ("dry run", [str(first), "--dry-run"], {"created": n}),
            ("first import", [str(first)], {"created": n}),
            ("same file again", [str(first)], {"unchanged": n}),
            (
                "sync (1% renamed, 1% gone)",
                [str(sync), "--deactivate-missing"],
                {"updated": churn, "unchanged": n - 2 * churn, "deactivated": churn},
            ),
        ]
        for label, args, counts in steps:
            seconds, line = run_cli(url, tmp, *args)
            expect(line, **counts)
            rows = n - (churn if "sync" in label else 0)
            verdict = "[green]ok[/]" if seconds < GOAL_SECONDS else "[red]over a minute[/]"
            table.add_row(
                backend,
                label,
                f"{rows:,}",
                f"{size_mb:.1f} MB",
                f"{seconds:.1f} s",
                f"{rows / seconds:,.0f}",
                verdict,
            )
        total, active = await count(url, tmp)
        if (total, active) != (n, n - churn):
            raise SystemExit(
                f"{backend}: expected {n} contacts ({n - churn} active), found {total} ({active})"
            )
    finally:
        if pg_name:
            await pgdb.drop_database(pg_name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    table = Table(
        "backend", "step", "rows", "file", "time", "rows/s", f"goal < {GOAL_SECONDS:.0f} s",
        title=f"pigeonhole import contacts: {args.contacts:,} contacts ({os.cpu_count()} CPUs)",
    )  # fmt: skip
    for backend in ("postgres", "sqlite") if args.backend == "both" else (args.backend,):
        console.print(f"{backend}: preparing {args.contacts:,} contacts ...")
        await bench(backend, args.contacts, table)
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
