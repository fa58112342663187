"""Directory search on 100,000 contacts, on PostgreSQL and SQLite.

For each backend: a fresh database, migrations, a tenant from a manifest, then
``--contacts`` contacts (default 100,000) written through the importer's own
bulk call (:func:`pigeonhole.domain.directory.contacts.upsert_many`, timed), in
40 departments with a custom field. Then each kind of search is sent through
the HTTP API in-process (app + httpx ASGI transport: routing, auth, the
query and the JSON answer, no network), ``--rounds`` times with different
terms, and its p50/p95/max latency printed. Before timing, every query's plan
is checked: a plan that reads the whole contact table fails the run, so
"index-backed" is verified, not assumed.

    make bench-directory
    .venv/bin/python benchmarks/directory_search.py --backend both --contacts 100000 --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import httpx
from pigeonhole.db.migrate import migrate
from pigeonhole.devtools import pgdb
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.directory import contacts, departments
from pigeonhole.manifests.apply import apply
from pigeonhole.services import Services
from pigeonhole.settings import Settings, _app_database_url, set_settings

SLUG = "dirbench"
KEY = "ph_dirbench_admin_" + "x" * 24
FIRST = (
    "Ada Alan Grace Hedy Joan Margaret Katherine Barbara Frances Radia Edsger Donald Ken Dennis Bjarne "
    "Guido Linus Anita Shafi Leslie Tim Vint Bob John Mary Elena Lucas Sofia Noah Emma Liam Olivia Mateo "
    "Chloe Hugo Lea Arthur Jade Louis Alice Jules Manon Paul Ines Victor Camille Adam Zoe Nathan Sarah"
).split()
LAST = (
    "Lovelace Turing Hopper Lamarr Clarke Hamilton Johnson Liskov Allen Perlman Dijkstra Knuth Thompson "
    "Ritchie Stroustrup Rossum Torvalds Borg Goldwasser Lamport Berners Cerf Kahn McCarthy Shaw Dupont "
    "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefebvre Leroy "
    "Roux David Bertrand Morel Fournier Girard Bonnet Lambert Fontaine Rousseau Vincent Muller Lefevre "
    "Faure Andre Mercier Blanc Guerin Boyer Garnier Chevalier Francois Legrand Gauthier Garcia Perrin "
    "Robin Clement Morin Nicolas Henry Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Marie "
    "Lemaire Noel Meyer Dufour Meunier Brun Blanchard Giraud Joly Riviere Lucas Brunet Gaillard Barbier"
).split()


def manifest(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tenant.toml").write_text(
        textwrap.dedent(
            f"""\
            slug = "{SLUG}"
            name = "Directory Benchmark"

            [[api_keys]]
            name = "admin"
            role = "admin"
            key = "{KEY}"

            [[custom_fields]]
            screen = "contacts"
            key = "cost_centre"
            label = "Cost centre"
            type = "text"
            """
        )
    )


def people(n: int, rng: random.Random) -> list[contacts.ContactIn]:
    departments = [f"Department {i:02d}" for i in range(40)]
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        rows.append(
            contacts.ContactIn(
                name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}.{i}@example.test",
                personnel_id=f"P{i:07d}",
                employee_id=str(i),
                departments=[rng.choice(departments)],
                custom={"cost_centre": f"CC-{rng.randrange(1000):03d}"},
            )
        )
    return rows


def searches(rng: random.Random, n: int, departments: list[str]) -> dict[str, list[str]]:
    """Query strings per kind of search, different terms each round."""
    return {
        "q=name prefix (3 letters)": [f"q={rng.choice(FIRST)[:3]}" for _ in range(n)],
        "q=full name": [f"q={rng.choice(FIRST)}%20{rng.choice(LAST)}" for _ in range(n)],
        "q=family name": [f"q={rng.choice(LAST)}" for _ in range(n)],
        "email prefix": [
            f"email={rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()[:2]}" for _ in range(n)
        ],
        "personnel_id (exact)": [f"personnel_id=p{rng.randrange(n * 10):07d}" for _ in range(n)],
        "department": [f"department_id={rng.choice(departments)}" for _ in range(n)],
        "q + department": [
            f"q={rng.choice(FIRST)[:2]}&department_id={rng.choice(departments)}" for _ in range(n)
        ],
        "custom field": [f"custom.cost_centre=CC-{rng.randrange(1000):03d}" for _ in range(n)],
    }


async def check_plans(url: str, sample: dict[str, str]) -> dict[str, str]:
    """EXPLAIN each kind of search as the API sends it; refuse a full scan of contact."""
    from pigeonhole.db.tables import Contact
    from pigeonhole.domain.directory import search

    plans: dict[str, str] = {}
    postgres = url.startswith("postgres")
    for kind, query in sample.items():
        params = dict(p.split("=", 1) for p in query.replace("%20", " ").split("&"))
        custom = {k[len("custom.") :]: v for k, v in params.items() if k.startswith("custom.")}
        criteria = {k: v for k, v in params.items() if not k.startswith("custom.")}
        if "department_id" in criteria:
            criteria["department_id"] = uuid.UUID(criteria["department_id"])
        async with tenant_context(SLUG, write=False) as ctx:
            select = await search.contacts_query(ctx, custom=custom, **criteria)
            sql = str(search.ordered(select, criteria).limit(50))
            raw = await Contact.raw(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + sql)
        text = "\n".join(str(r.get("QUERY PLAN") if postgres else r.get("detail")) for r in raw)
        plans[kind] = text
        lines = [line.strip() for line in text.splitlines()]
        if any("Seq Scan on contact" in line for line in lines) or any(
            line in ("SCAN contact", "SCAN TABLE contact") for line in lines
        ):
            print(f"\nFULL SCAN for {kind}:\n{sql}\n{text}", file=sys.stderr)
            raise SystemExit(f"{kind}: the plan reads the whole contact table")
    return plans


async def bench_backend(backend: str, args) -> dict:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db_name = None
        if backend == "postgres":
            db_name, url = await pgdb.create_database("pigeonhole_dirbench")
        else:
            url = f"sqlite:///{workdir / 'bench.db'}"
        try:
            settings = Settings(
                data_dir=workdir,
                database_url=url,
                app_database_url=_app_database_url(url),
                broker_url=None,
                secret_key="directory-benchmark",
                embedded_agent=False,
                embedded_worker=False,
            )
            set_settings(settings)
            await migrate(url, echo=lambda *_: None)
            services = Services(settings)
            await services.start(worker=False, agent=False, relay_=False)
            try:
                manifest(workdir / "tenant")
                await apply(workdir / "tenant")
                rows = people(args.contacts, rng)
                async with tenant_context(SLUG) as ctx:
                    for i in range(40):
                        await departments.create_department(ctx, f"Department {i:02d}")
                t0 = time.perf_counter()
                async with tenant_context(SLUG) as ctx:
                    result = await contacts.upsert_many(ctx, rows)
                upsert_s = time.perf_counter() - t0
                assert result.created == args.contacts and not result.errors, result
                print(f"[{backend}] {args.contacts:,} contacts written by upsert_many in {upsert_s:.1f}s")
                if backend == "postgres":
                    import asyncpg

                    conn = await asyncpg.connect(url)
                    await conn.execute("ANALYZE")
                    await conn.close()
                else:
                    import sqlite3

                    from pigeonhole.db.migrate import sqlite_path

                    with sqlite3.connect(sqlite_path(url)) as conn:
                        conn.execute("ANALYZE")

                from pigeonhole.web.app import create_app

                app = create_app(settings, services=services)
                transport = httpx.ASGITransport(app=app)
                headers = {"Authorization": f"Bearer {KEY}"}
                base = f"/api/v1/t/{SLUG}/directory"
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench", timeout=60
                ) as client:
                    depts = (await client.get(f"{base}/departments", headers=headers)).json()
                    dept_ids = [d["id"] for d in depts]
                    work = searches(rng, args.rounds, dept_ids)
                    plans = await check_plans(url, {k: v[0] for k, v in work.items()})
                    figures = {}
                    for kind, queries in work.items():
                        for q in queries[:5]:  # warm-up
                            await client.get(f"{base}/contacts?{q}&limit=50", headers=headers)
                        times, hits = [], []
                        for q in queries:
                            t = time.perf_counter()
                            r = await client.get(f"{base}/contacts?{q}&limit=50", headers=headers)
                            times.append((time.perf_counter() - t) * 1000)
                            assert r.status_code == 200, (q, r.text)
                            hits.append(len(r.json()))
                        times.sort()
                        figures[kind] = {
                            "p50_ms": round(statistics.median(times), 2),
                            "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
                            "max_ms": round(times[-1], 2),
                            "mean_hits": round(sum(hits) / len(hits), 1),
                        }
            finally:
                await services.stop()
        finally:
            if db_name:
                await pgdb.drop_database(db_name)
    return {
        "backend": backend,
        "contacts": args.contacts,
        "upsert_s": round(upsert_s, 1),
        "searches": figures,
        "plans": plans,
    }


def report(results: list[dict]) -> None:
    print()
    for res in results:
        print(f"{res['backend']}: {res['contacts']:,} contacts (bulk upsert {res['upsert_s']}s)")
        print(f"  {'search':<28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'hits':>6}")
        for kind, f in res["searches"].items():
            print(f"  {kind:<28} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['max_ms']:>8} {f['mean_hits']:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    results = [asyncio.run(bench_backend(b, args)) for b in backends]
    report(results)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"directory-search-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
