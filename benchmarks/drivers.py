"""`make bench-drivers`: lock drivers against the wire, and a door command end to end.

1. Wire. For each board protocol at its real baud rate, the driver talks to
   its simulator over a real pty pair, the simulator holding every request and
   reply for as long as its bytes take on the wire (10 bits a byte) plus the
   board's own reply delay. The floor of an operation is that wire time of the
   frames the operation exchanged (counted by the simulator), plus the silence
   the protocol demands (Modbus RTU: 3.5 characters before every frame; the
   generic RS485 board: about 5 ms between transactions, HARDWARE.md). The
   ratio driver time / floor says what the driver adds; the target is <= 1.2.

2. Round trip. A real ``pigeonhole serve`` (no embedded agent) and a real
   ``pigeonhole agent`` process, the bank on a Modbus TCP board (the pymodbus
   simulator in this process, on 127.0.0.1). Each command is a remote open
   (POST .../compartments/{id}/open), so it goes server -> WebSocket -> agent
   -> driver -> simulator and back. Two figures: the command as the server
   recorded it (door_command created_at -> completed_at: from the command row
   to the result back in the server, the leg the <= 10 ms p99 target is for),
   and the HTTP request as the client saw it (also the two transactions of the
   use case and the chain of custody). The bank's sensor polling is off unless
   ``--poll-ms`` says otherwise: the bench shuts each door after its command, and
   reporting that close would add server work to the next command's figure.

    make bench-drivers
    .venv/bin/python benchmarks/drivers.py --commands 500 --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import msgspec
from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole_modbus import ModbusConfig, ModbusDriver
from pigeonhole_modbus.simulator import ModbusSimulator, SimulatedUnit
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))
SECRET_KEY = "pigeonhole-benchmark-secret-key-not-for-production"
PG_ADMIN = os.environ.get("PIGEONHOLE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
GOAL_RATIO, GOAL_P99_MS = 1.2, 10.0
console = Console(width=None if sys.stdout.isatty() else 150)


class NullListener:
    def __init__(self) -> None:
        from uuid import uuid4

        self.tenant_id, self.bank_id = uuid4(), uuid4()

    async def door_changed(self, door: int, state: DoorState) -> None:
        pass


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- 1. driver time against wire time ----------------------------------------------


@dataclass
class WireRow:
    protocol: str
    baud: int
    operation: str
    frames: str
    floor_ms: float
    times_ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def ratio(self) -> float:
        return self.p50 / self.floor_ms


class Probe:
    """One protocol: its simulator, its driver, and what the simulator saw of a transaction."""

    name: str
    baud: int
    door = 1
    #: Quiet before each timed operation: enough for the bus's gap when the floor
    #: counts no silence before the first transaction.
    idle_before = 0.0

    async def start(self, workdir: Path) -> None: ...
    async def stop(self) -> None: ...
    def mark(self) -> int: ...
    def since(self, mark) -> tuple[list[int], list[int], float]:
        """Request sizes, reply sizes (bytes) since ``mark``; the board's reply delays in s."""

    def close_door(self) -> None: ...
    def silence(self, transactions: int) -> float:
        return 0.0


class ModbusRtuProbe(Probe):
    name, baud = "Modbus RTU (Waveshare relay)", 9600

    async def start(self, workdir: Path) -> None:
        self.sim = ModbusSimulator([SimulatedUnit(1, 8)], baudrate=self.baud)
        await self.sim.start_rtu(workdir / "modbus")
        config = ModbusConfig(
            transport="rtu", serial_port=self.sim.serial_port, baudrate=self.baud, poll_ms=0, timeout_ms=500
        )
        self.driver = ModbusDriver(config, list(range(1, 9)), NullListener())
        await self.driver.start()

    async def stop(self) -> None:
        await self.driver.stop()
        await self.sim.stop()

    def mark(self) -> int:
        return len(self.sim.wire)

    def since(self, mark: int):
        wire = self.sim.wire[mark:]
        return [a for a, _ in wire], [b for _, b in wire], 0.0

    def close_door(self) -> None:
        self.sim.unit(1).close(0)

    def silence(self, transactions: int) -> float:
        return transactions * 2 * 3.5 * 10 / self.baud  # 3.5 characters before request and reply

    async def unlock_frame(self) -> None:
        """The bare FC05 exchange HARDWARE.md prices at ~24 ms (pulse of 500 ms on relay 0)."""
        await self.driver.bus.write_coil(1, 0x0200, 5, retries=0)


class BoardSimProbe(Probe):
    """A1's boards, built on pigeonhole.hardware.simulation.BoardSimulator."""

    idle_before = 0.03  # longer than any of these protocols' gaps (the floor has none before)

    def __init__(self, name, sim_factory, driver_cls, config: dict, lock=(0, 1), gap_between=0.0) -> None:
        self.name = name
        self.sim_factory, self.driver_cls, self.raw_config = sim_factory, driver_cls, config
        self.lock = lock
        self.gap_between = gap_between

    async def start(self, workdir: Path) -> None:
        self.sim = self.sim_factory()
        self.baud = self.sim.baudrate
        path = await self.sim.start_pty()
        config = msgspec.convert({**self.raw_config, "port": path}, self.driver_cls.Config, strict=False)
        self.driver = self.driver_cls(config, [self.door], NullListener())
        await self.driver.start()

    async def stop(self) -> None:
        await self.driver.stop()
        await self.sim.stop()

    def mark(self) -> tuple[int, int]:
        return len(self.sim.received), len(self.sim.replies)

    def since(self, mark):
        requests = self.sim.received[mark[0] :]
        replies = self.sim.replies[mark[1] :]
        delays = sum(self.sim.reply_delay_for(f) for f in requests) if replies else 0.0
        return [len(r) for r in requests], [len(r) for r in replies], delays

    def close_door(self) -> None:
        self.sim.door(*self.lock).open = False

    def silence(self, transactions: int) -> float:
        return max(0, transactions - 1) * self.gap_between


def probes() -> tuple[list[Probe], list[str]]:
    found: list[Probe] = [ModbusRtuProbe()]
    missing: list[str] = []
    common = {"poll_interval_ms": 0, "settle_ms": 0, "reply_timeout_ms": 1500}
    try:
        from pigeonhole_kerong.driver import Cu16Driver, Cu48Driver
        from pigeonhole_kerong.simulator import Cu16Simulator, Cu48Simulator

        found.append(
            BoardSimProbe(
                "Kerong KR-CU48",
                lambda: Cu48Simulator(boards=[0], byte_timing=True),
                Cu48Driver,
                {"boards": [0], **common},
            )
        )
        found.append(
            BoardSimProbe(
                "Kerong KR-CU16",
                lambda: Cu16Simulator(boards=[0], byte_timing=True),
                Cu16Driver,
                {"boards": [0], **common},
            )
        )
    except Exception as exc:  # the kerong plugin is another package: bench what is installed
        missing.append(f"kerong: {exc!r}")
    try:
        from pigeonhole_rs485.driver import Rs485Driver
        from pigeonhole_rs485.simulator import Rs485Simulator

        found.append(
            BoardSimProbe(
                "Generic RS485 board",
                lambda: Rs485Simulator(boards=(1,), byte_timing=True),
                Rs485Driver,
                {"boards": [1], **common},
                lock=(1, 1),
                gap_between=0.005,
            )
        )
    except Exception as exc:
        missing.append(f"rs485: {exc!r}")
    return found, missing


async def measure(probe: Probe, operation: str, action, repeat: int, *, reset=None) -> WireRow:
    floors, times, frames = [], [], ""
    for i in range(repeat + 3):
        if reset is not None:
            reset()
        # Where the floor counts the gaps between the operation's own transactions and
        # none before its first, start each operation on an idle line, as a lone door
        # command does, not inside the gap the previous operation left. (Modbus RTU's
        # floor counts the 3.5 characters before every frame: back to back is right.)
        await asyncio.sleep(probe.idle_before)
        mark = probe.mark()
        started = time.perf_counter()
        await action()
        elapsed = time.perf_counter() - started
        out, back, delays = probe.since(mark)
        floor = (sum(out) + sum(back)) * 10 / probe.baud + delays + probe.silence(len(out))
        frames = f"{'+'.join(map(str, out))} / {'+'.join(map(str, back)) or '-'}"
        if i >= 3:  # warm-up
            times.append(elapsed * 1000)
            floors.append(floor * 1000)
    return WireRow(probe.name, probe.baud, operation, frames, statistics.median(floors), times)


async def bench_wire(repeat: int) -> tuple[list[WireRow], list[str]]:
    rows: list[WireRow] = []
    found, missing = probes()
    with tempfile.TemporaryDirectory(prefix="ph-bench-drivers-") as tmp:
        for probe in found:
            try:
                await probe.start(Path(tmp))
            except Exception as exc:
                missing.append(f"{probe.name}: could not start ({exc!r})")
                continue
            try:
                rows.append(await measure(probe, "status read", probe.driver.door_states, repeat))
                if isinstance(probe, ModbusRtuProbe):
                    rows.append(await measure(probe, "unlock frame (FC05)", probe.unlock_frame, repeat))

                async def unlock(probe=probe) -> None:
                    outcome = await probe.driver.unlock(probe.door)
                    if outcome is not UnlockOutcome.OPENED:
                        raise RuntimeError(f"{probe.name}: unlock gave {outcome}")

                rows.append(
                    await measure(probe, "unlock (read, fire, read)", unlock, repeat, reset=probe.close_door)
                )
            except Exception as exc:
                missing.append(f"{probe.name}: {exc!r}")
            finally:
                await probe.stop()
    return rows, missing


def print_wire(rows: list[WireRow], missing: list[str]) -> None:
    table = Table(
        title="Driver time against wire time (simulator holds each frame for its bytes at the baud rate)"
    )
    for col in (
        "protocol",
        "baud",
        "operation",
        "bytes out / in",
        "wire floor",
        "driver p50",
        "driver max",
        "ratio",
    ):
        table.add_column(col, justify="left" if col in ("protocol", "operation") else "right")
    for r in rows:
        ok = "green" if r.ratio <= GOAL_RATIO else "red"
        table.add_row(
            r.protocol,
            str(r.baud),
            r.operation,
            r.frames,
            f"{r.floor_ms:.1f} ms",
            f"{r.p50:.1f} ms",
            f"{max(r.times_ms):.1f} ms",
            f"[{ok}]{r.ratio:.2f}x[/{ok}]",
        )
    console.print(table)
    for line in missing:
        console.print(f"[yellow]not measured[/yellow] {line}")


# --- 2. the round trip through real processes --------------------------------------

MANIFEST = """\
slug = "drivers"
name = "Driver benchmark"

[plugins.workplace]
[plugins.pin]
[plugins.modbus]

[[divisions]]
name = "Bench"

  [[divisions.locations]]
  name = "Lab"
  address = "127.0.0.1"
  timezone = "UTC"

    [[divisions.locations.banks]]
    name = "Modbus bank"
    loading = "front"
    driver = "modbus"
    driver_config = {{ transport = "tcp", host = "127.0.0.1", port = {port}, timeout_ms = 500, poll_ms = {poll_ms} }}
    compartments = [{{ size = "s", count = 8, heights_cm = [30, 60, 90, 120] }}]

[[api_keys]]
name = "bench-admin"
role = "admin"
key = "{admin}"

[[api_keys]]
name = "bench-site"
role = "agent"
key = "{agent}"
"""
ADMIN_KEY = "ph_bench_drivers_admin_0123456789"
AGENT_KEY = "ph_bench_drivers_agent_0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log = logdir / f"{name}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop
        self.popen = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not print {text!r}:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()


@dataclass
class RoundTrip:
    backend: str
    commands: int
    recorded_ms: list[float]
    to_ack_ms: list[float]
    http_ms: list[float]
    outcomes: dict[str, int]


def _profile(name: str, pid: int, profile: Path | None) -> subprocess.Popen | None:
    """Under ``--profile DIR``: py-spy attached to ``pid``, collapsed stacks into DIR at SIGINT."""
    if profile is None:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--idle",
            "-r",
            "1000",
            "-f",
            "raw",
            "-o",
            str(profile / f"{name}.txt"),
            "--pid",
            str(pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def bench_round_trip(
    backend: str, commands: int, profile: Path | None = None, poll_ms: int = 0
) -> RoundTrip:
    work = Path(tempfile.mkdtemp(prefix="ph-bench-roundtrip-"))
    procs: list[Proc] = []
    pg_name = None
    sim = await ModbusSimulator([SimulatedUnit(1, 8)]).start_tcp()
    try:
        if backend == "postgres":
            from pigeonhole.devtools import pgdb

            pg_name, db_url = await pgdb.create_database("pigeonhole_bench_drivers", PG_ADMIN)
        else:
            db_url = f"sqlite:///{work / 'bench.sqlite3'}"
        port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_")}
        env = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "PIGEONHOLE_DATABASE_URL": db_url,
            "PIGEONHOLE_DATA_DIR": str(work / "data"),
            "PIGEONHOLE_SECRET_KEY": SECRET_KEY,
            "PIGEONHOLE_AGENT": "off",
            "PIGEONHOLE_LOG_LEVEL": "WARNING",
            "PORT": str(port),
        }
        tenant_dir = work / "tenant"
        tenant_dir.mkdir()
        (tenant_dir / "tenant.toml").write_text(
            MANIFEST.format(port=sim.port, admin=ADMIN_KEY, agent=AGENT_KEY, poll_ms=poll_ms)
        )
        for args in (["migrate"], ["tenant", "apply", str(tenant_dir)]):
            done = subprocess.run([PIGEONHOLE, *args], env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"pigeonhole {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        serve = Proc("serve", [PIGEONHOLE, "serve"], env, work)
        procs.append(serve)
        url = f"http://127.0.0.1:{port}"
        site = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "PIGEONHOLE_URL": url,
            "PIGEONHOLE_TENANT": "drivers",
            "PIGEONHOLE_AGENT_KEY": AGENT_KEY,
            "PIGEONHOLE_LOG_LEVEL": "WARNING",
        }
        async with httpx.AsyncClient(
            base_url=f"{url}/api/v1/t/drivers", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
        ) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if serve.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start:\n{serve.text()[-3000:]}")
                await asyncio.sleep(0.1)
            agent = Proc("agent", [PIGEONHOLE, "agent"], site, work)
            procs.append(agent)
            await agent.wait_for("connected to")
            bank = (await client.get("/banks")).json()[0]
            comps = (await client.get(f"/banks/{bank['id']}/compartments")).json()
            comps = sorted(comps, key=lambda c: c["door"])

            async def open_one(comp) -> tuple[float, httpx.Response]:
                sim.unit(1).close(comp["door"] - 1)  # a person shut it since: a full unlock every time
                started = time.perf_counter()
                response = await client.post(
                    f"/banks/{bank['id']}/compartments/{comp['id']}/open", json={"reason": "benchmark"}
                )
                return (time.perf_counter() - started) * 1000, response

            for _ in range(100):  # until the agent has the bank
                _, response = await open_one(comps[0])
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"remote open never worked: {response.status_code} {response.text}")
            for i in range(20):  # warm-up
                await open_one(comps[i % len(comps)])
            spies = [
                _profile(f"{n}-{backend}", p.popen.pid, profile)
                for n, p in (("serve", serve), ("agent", agent))
            ]
            http_ms: list[float] = []
            ids: list[str] = []
            outcomes: dict[str, int] = {}
            for i in range(commands):
                elapsed, response = await open_one(comps[i % len(comps)])
                body = response.json()
                outcome = (
                    body.get("outcome") if response.status_code == 200 else f"http {response.status_code}"
                )
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if response.status_code == 200:
                    http_ms.append(elapsed)
                    ids.append(body["command_id"])
            for spy in spies:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
            recorded: list[float] = []
            to_ack: list[float] = []
            for command_id in ids:
                row = (await client.get(f"/commands/{command_id}")).json()
                created = datetime.fromisoformat(row["created_at"])
                acked = datetime.fromisoformat(row["acked_at"])
                completed = datetime.fromisoformat(row["completed_at"])
                recorded.append((completed - created).total_seconds() * 1000)
                to_ack.append((acked - created).total_seconds() * 1000)
        return RoundTrip(backend, commands, recorded, to_ack, http_ms, outcomes)
    finally:
        for proc in reversed(procs):
            proc.stop()
        await sim.stop()
        if pg_name is not None:
            from pigeonhole.devtools import pgdb

            await pgdb.drop_database(pg_name, PG_ADMIN)
        shutil.rmtree(work, ignore_errors=True)


def print_round_trips(results: list[RoundTrip]) -> None:
    table = Table(
        title="Door command round trip: serve -> agent (WebSocket) -> Modbus TCP driver -> simulator -> serve"
    )
    for col in (
        "database",
        "commands",
        "outcomes",
        "command p50",
        "command p99",
        "of which to ack p50",
        "HTTP p50",
        "HTTP p99",
    ):
        table.add_column(col, justify="left" if col in ("database", "outcomes") else "right")
    for r in results:
        p99 = pct(r.recorded_ms, 99)
        ok = "green" if p99 <= GOAL_P99_MS else "red"
        table.add_row(
            r.backend,
            str(r.commands),
            ", ".join(f"{k}: {v}" for k, v in sorted(r.outcomes.items())),
            f"{pct(r.recorded_ms, 50):.1f} ms",
            f"[{ok}]{p99:.1f} ms[/{ok}]",
            f"{pct(r.to_ack_ms, 50):.1f} ms",
            f"{pct(r.http_ms, 50):.1f} ms",
            f"{pct(r.http_ms, 99):.1f} ms",
        )
    console.print(table)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=50, help="measurements per wire row")
    parser.add_argument("--commands", type=int, default=500, help="door commands per round-trip row")
    parser.add_argument("--backend", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--skip-wire", action="store_true")
    parser.add_argument("--skip-round-trip", action="store_true")
    parser.add_argument(
        "--profile", type=Path, help="run serve and agent under py-spy, stacks into this folder"
    )
    parser.add_argument(
        "--poll-ms",
        type=int,
        default=0,
        help="the bank's sensor polling; off by default, so the door the bench shuts after each "
        "command is not reported to the server while the next command runs",
    )
    args = parser.parse_args()
    console.print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )
    if not args.skip_wire:
        print_wire(*await bench_wire(args.repeat))
    if not args.skip_round_trip:
        results = [
            await bench_round_trip(b.strip(), args.commands, args.profile, args.poll_ms)
            for b in args.backend.split(",")
            if b.strip()
        ]
        print_round_trips(results)


if __name__ == "__main__":
    asyncio.run(main())
