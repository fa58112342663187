"""The pickup benchmark: pickups per second and latency against a real server.

For each backend: a fresh database (PostgreSQL: a new database, dropped at the
end; SQLite: a temporary file), a tenant with the workplace workflow, pin
codes, email notifications (to a local SMTP sink) and simulated lock boards,
and ``--packages`` packages waiting in their compartments. Then a real
``pigeonhole serve`` in a process of its own, and the load from a third
process (load.py). One pickup is the whole use case: authenticate the kiosk,
check the code, claim the package, open the door through the embedded agent
and the simulator, record the door command, the custody event, the
notification and its outbox row.

At the end the database is checked: every pickup the load saw succeed is a
package in state ``picked_up`` with its event and outbox row, and none is
stuck half-way.

    make bench                                   # both backends, 100,000 packages
    .venv/bin/python benchmarks/pickup.py --backend postgres --concurrency 16,32,64 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pigeonhole.db.migrate import sqlite_path  # noqa: E402
from pigeonhole.devtools import pgdb  # noqa: E402
from pigeonhole_simulator import SimulatorConfig  # noqa: E402
from seed import Seeded, is_postgres, seed, touch_keys  # noqa: E402

PG_ADMIN = os.environ.get("PIGEONHOLE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET_KEY = "pigeonhole-benchmark-secret-key-not-for-production"
GOAL_RATE, GOAL_P99 = 1000, 50.0
console = Console(width=None if sys.stdout.isatty() else 150)


# --- the mail sink ------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


class MailSink:
    """Accepts and counts: the outbox's mails must go somewhere that says yes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.counter = _Counter()
        self.controller = Controller(self.counter, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        return self.counter.count

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- databases ----------------------------------------------------------------------


async def create_pg_database() -> tuple[str, str]:
    return await pgdb.create_database("pigeonhole_bench", PG_ADMIN)


async def drop_pg_database(name: str) -> None:
    await pgdb.drop_database(name, PG_ADMIN)


VERIFY = {
    "packages": "SELECT status, count(*) FROM package GROUP BY status",
    "picked_up_events": "SELECT count(*) FROM event WHERE kind = 'package.picked_up'",
    "outbox_rows": "SELECT count(*) FROM outbox",
    "notifications": "SELECT status, count(*) FROM notification WHERE event = 'package.picked_up' GROUP BY status",
    "open_commands": "SELECT count(*) FROM door_command WHERE completed_at IS NULL",
}


async def database_state(url: str) -> dict:
    if is_postgres(url):
        conn = await asyncpg.connect(url)
        try:
            fetch = {k: [tuple(r) for r in await conn.fetch(q)] for k, q in VERIFY.items()}
        finally:
            await conn.close()
    else:
        with sqlite3.connect(sqlite_path(url), timeout=30) as conn:
            fetch = {k: conn.execute(q).fetchall() for k, q in VERIFY.items()}
    return {
        "packages": dict(fetch["packages"]),
        "picked_up_events": fetch["picked_up_events"][0][0],
        "outbox_rows": fetch["outbox_rows"][0][0],
        "notifications": dict(fetch["notifications"]),
        "open_commands": fetch["open_commands"][0][0],
    }


# --- CPU accounting -------------------------------------------------------------------
# Throughput on a shared 2-core machine depends on what else runs; CPU time per
# pickup does not, and says how far one core can go.

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its threads, from /proc (0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine used so far (/proc/stat), in seconds."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICK


async def pg_backend_cpu(db_name: str | None) -> dict[int, float]:
    if db_name is None:
        return {}
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        pids = [
            r["pid"] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db_name)
        ]
    finally:
        await conn.close()
    return {pid: cpu_seconds(pid) for pid in pids}


# --- the server -----------------------------------------------------------------------


class Server:
    def __init__(self, url: str, workdir: Path, smtp_url: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        # `pigeonhole serve` itself, with unhandled exceptions logged (see serve.py).
        command = [sys.executable, str(HERE / "serve.py")]
        env = {
            **os.environ,
            "PIGEONHOLE_DATABASE_URL": url,
            "PIGEONHOLE_SECRET_KEY": SECRET_KEY,
            "PIGEONHOLE_DATA_DIR": str(workdir / "data"),
            "PIGEONHOLE_LOG_LEVEL": "warning",
            "PIGEONHOLE_SMTP_URL": smtp_url,
            "PORT": str(self.port),
        }
        for name in (
            "PIGEONHOLE_BROKER_URL",
            "PIGEONHOLE_APP_DATABASE_URL",
            "PIGEONHOLE_AGENT",
            "PIGEONHOLE_WORKER",
        ):
            env.pop(name, None)
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.process.returncode}): {self.log_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not become healthy in {timeout}s: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


_PLUMBING = re.compile(r"/pigeonhole/(db/|domain/context\.py)")


def exception_summary(log: str) -> dict[str, int]:
    """Each exception in the server log, with the last use-case frame it went through."""
    found: dict[str, int] = {}
    where = ""
    for line in log.splitlines():
        stripped = line.strip()
        if stripped.startswith("Traceback"):
            where = ""
        elif stripped.startswith('File "') and "/pigeonhole/" in stripped and not _PLUMBING.search(stripped):
            path, _, rest = stripped[6:].partition('", line ')
            where = f"{'/'.join(Path(path).parts[-2:])}:{rest.split(',')[0]} ({rest.partition(' in ')[2]})"
        elif (
            line
            and not line[0].isspace()
            and ("Error: " in line or "Exception: " in line or line.endswith("Error"))
        ):
            key = f"{line.strip()[:120]}  at {where}" if where else line.strip()[:120]
            found[key] = found.get(key, 0) + 1
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))


# --- one backend ------------------------------------------------------------------------


def run_load(
    server: Server,
    seeded: Seeded,
    codes: Path,
    workdir: Path,
    db_name: str | None,
    start: int,
    concurrency: int,
    duration: float,
    admin: bool,
) -> dict:
    """One load process; the CPU the server, the database and the load used meanwhile."""
    out = workdir / f"load-{start}-{concurrency}.json"
    command = [
        sys.executable,
        str(HERE / "load.py"),
        "--url",
        server.base_url,
        "--tenant",
        seeded.slug,
        "--codes",
        str(codes),
        "--start",
        str(start),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--out",
        str(out),
    ]
    if admin:
        command += ["--admin-key", seeded.admin_key]
    loadavg = os.getloadavg()[0]
    server_cpu = cpu_seconds(server.process.pid)
    db_cpu = asyncio.run(pg_backend_cpu(db_name))
    machine = machine_busy_seconds()
    started = time.perf_counter()
    subprocess.run(command, check=True, timeout=duration + 300)
    wall = time.perf_counter() - started
    machine = machine_busy_seconds() - machine
    result = json.loads(out.read_text())
    db_after = asyncio.run(pg_backend_cpu(db_name))
    result["server_cpu_s"] = cpu_seconds(server.process.pid) - server_cpu
    result["db_cpu_s"] = sum(cpu - db_cpu.get(pid, 0.0) for pid, cpu in db_after.items())
    result["loadavg_1m_before"] = loadavg
    # What the rest of the machine used meanwhile (other processes, the load
    # process's start-up, PostgreSQL's background writers), in cores.
    ours = result["server_cpu_s"] + result["db_cpu_s"] + result["load_cpu_s"]
    result["other_cores"] = max(0.0, (machine - ours) / wall) if wall else 0.0
    return result


def bench_backend(backend: str, args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"pigeonhole-bench-{backend}-"))
    db_name = None
    sink = MailSink()
    server: Server | None = None
    try:
        if backend == "postgres":
            db_name, url = asyncio.run(create_pg_database())
        else:
            url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        console.rule(f"[bold]{backend}")
        t0 = time.perf_counter()
        driver = SimulatorConfig(unlock_delay_ms=args.unlock_delay_ms, auto_close_after_ms=args.auto_close_ms)
        seeded = asyncio.run(
            seed(
                url,
                workdir,
                packages=args.packages,
                per_bank=args.per_bank,
                secret_key=SECRET_KEY,
                driver_config=driver,
                echo=lambda m: console.print(f"  {m}"),
            )
        )
        seed_s = time.perf_counter() - t0
        console.print(f"  seeded in {seed_s:.1f}s")
        codes = workdir / "codes.json"
        codes.write_text(json.dumps(seeded.pickups))
        sink.start()
        server = Server(url, workdir, sink.url)
        server.wait_healthy()
        console.print(f"  server up on {server.base_url} (pid {server.process.pid})")

        offset = 0
        asyncio.run(touch_keys(url))
        warmup = run_load(
            server, seeded, codes, workdir, db_name, offset, 8, args.warmup, args.keys == "admin"
        )
        offset += warmup["attempted"]
        console.print(f"  warm-up: {warmup['ok']} pickups, {warmup['errors']} errors")
        runs = []
        for concurrency in args.concurrency:
            if offset >= len(seeded.pickups):
                console.print("[yellow]  out of packages; skipping the remaining runs")
                break
            asyncio.run(touch_keys(url))
            result = run_load(
                server,
                seeded,
                codes,
                workdir,
                db_name,
                offset,
                concurrency,
                args.duration,
                args.keys == "admin",
            )
            offset += result["attempted"]
            runs.append(result)
            console.print(
                f"  {concurrency:>3} clients: {result['pickups_per_s']:7.1f} pickups/s  "
                f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}"
            )
            for sample in result["error_samples"]:
                console.print(f"    {sample}", markup=False, style="red")
        successes = warmup["ok"] + sum(r["ok"] for r in runs)

        # The mails are the tail of the work: give the worker a moment to catch up.
        deadline = time.monotonic() + args.drain
        while sink.count < successes and time.monotonic() < deadline:
            time.sleep(0.2)
        mails = sink.count
        state = asyncio.run(database_state(url))
        log = server.log_text()
        server.stop()
        server = None
        errors_in_log = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
        exceptions = exception_summary(log)
        checks = {
            "picked_up == successes": state["packages"].get("picked_up", 0) == successes,
            "no package stuck in 'collecting'": state["packages"].get("collecting", 0) == 0,
            "one picked_up event per pickup": state["picked_up_events"] == successes,
            "one outbox row per pickup": state["outbox_rows"] == successes,
            "every door command completed": state["open_commands"] == 0,
        }
        if errors_in_log:
            saved = RESULTS / f"server-{backend}-{STAMP}.log"
            RESULTS.mkdir(parents=True, exist_ok=True)
            saved.write_text(log)
            console.print(f"  [red]{len(errors_in_log)} error line(s) in the server log; saved to {saved}")
            for line, count in exceptions.items():
                console.print(f"    {count:>5} x {line}", markup=False, style="red")
        return {
            "backend": backend,
            "packages": seeded.packages,
            "banks": seeded.banks,
            "seed_seconds": round(seed_s, 1),
            "warmup": warmup,
            "runs": runs,
            "successes": successes,
            "mails_delivered": mails,
            "database": state,
            "checks": checks,
            "server_log_errors": errors_in_log[:20],
            "server_exceptions": exceptions,
        }
    finally:
        if server is not None:
            server.stop()
        sink.stop()
        if db_name is not None:
            asyncio.run(drop_pg_database(db_name))
        shutil.rmtree(workdir, ignore_errors=True)


# --- report -------------------------------------------------------------------------


def report(results: list[dict]) -> None:
    table = Table(
        title="Pickup: code check, unlock via agent + simulator, custody event, outbox",
        caption="cpu: CPU ms per pickup of the server process, the PostgreSQL backends and the load process; "
        "other: cores the rest of the machine used meanwhile",
    )
    columns = ("backend", "clients", "pickups", "errors", "pickups/s", "p50 ms", "p90 ms", "p99 ms", "max ms")
    for col in (*columns, "cpu server", "cpu db", "cpu load", "other"):
        table.add_column(col, justify="left" if col == "backend" else "right", no_wrap=True)
    for result in results:
        for r in result["runs"]:
            per = 1000 / r["ok"] if r["ok"] else float("nan")
            table.add_row(
                result["backend"],
                str(r["concurrency"]),
                f"{r['ok']:,}",
                str(r["errors"]),
                f"{r['pickups_per_s']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p90_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['max_ms']:.1f}",
                f"{r['server_cpu_s'] * per:.1f}",
                f"{r['db_cpu_s'] * per:.1f}" if result["backend"] == "postgres" else "-",
                f"{r['load_cpu_s'] * per:.1f}",
                f"{r['other_cores']:.2f}",
            )
    console.print(table)

    rows = [(f"{res['backend']:<8} x{r['concurrency']:<3}", r) for res in results for r in res["runs"]]
    if rows:
        width = 50
        top_rate = max(max(r["pickups_per_s"] for _, r in rows), GOAL_RATE)
        top_p99 = max(max(r["p99_ms"] for _, r in rows), GOAL_P99)
        print("\npickups/s   (| = goal, 1,000/s)")
        for label, r in rows:
            print(
                f"  {label} {_bar(r['pickups_per_s'], top_rate, GOAL_RATE, width)} {r['pickups_per_s']:.0f}"
            )
        print("p99 latency (| = goal, 50 ms)")
        for label, r in rows:
            print(f"  {label} {_bar(r['p99_ms'], top_p99, GOAL_P99, width)} {r['p99_ms']:.1f} ms")
        print()

    for result in results:
        failed = [name for name, ok in result["checks"].items() if not ok]
        state = result["database"]
        line = (
            f"{result['backend']}: {result['successes']:,} pickups succeeded (warm-up included); "
            f"database: {state['packages'].get('picked_up', 0):,} picked up, "
            f"{state['outbox_rows']:,} outbox rows; {result['mails_delivered']:,} mails delivered by the end"
        )
        console.print(("[green]OK  " if not failed else "[red]FAIL ") + line, markup=True)
        for name in failed:
            console.print(f"  [red]check failed: {name}")


def _bar(value: float, top: float, goal: float, width: int) -> str:
    filled = round(width * min(value, top) / top)
    mark = min(width - 1, round(width * goal / top))
    cells = ["#" if i < filled else " " for i in range(width)]
    cells[mark] = "|"
    return "".join(cells)


RESULTS = HERE / "results"
STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--packages", type=int, default=100_000, help="packages waiting in lockers")
    parser.add_argument("--per-bank", type=int, default=100, help="compartments per bank")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[16, 32, 64],
        help="comma-separated client counts, one measured run each",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up, not measured")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds to wait for the mails at the end")
    parser.add_argument(
        "--keys", choices=["kiosk", "admin"], default="kiosk", help="one kiosk key per bank, or one admin key"
    )
    parser.add_argument("--unlock-delay-ms", type=int, default=0, help="simulated board latency per unlock")
    parser.add_argument(
        "--auto-close-ms", type=int, default=None, help="simulated person closes the door after this long"
    )
    args = parser.parse_args()
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    results = [bench_backend(b, args) for b in backends]
    report(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pickup-{STAMP}.json"
    path.write_text(
        json.dumps(
            {
                "when": STAMP,
                "command": " ".join(sys.argv),
                "args": vars(args),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "total_seconds": round(time.perf_counter() - started, 1),
                "results": results,
            },
            indent=2,
            default=str,
        )
    )
    console.print(f"results: {path}  (total {time.perf_counter() - started:.0f}s)")
    if any(not all(r["checks"].values()) for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
