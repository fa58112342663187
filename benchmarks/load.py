"""The load generator: a process of its own, so its CPU is not the server's.

Closed loop: ``--concurrency`` clients on as many keep-alive connections each
post one pickup, wait for the answer, and post the next, until the duration
is over or the codes run out. Every code is used once. Latency is measured
around the whole HTTP exchange, as a kiosk would see it. Writes a JSON
summary to ``--out``.

Usage (normally started by pickup.py)::

    python benchmarks/load.py --url http://127.0.0.1:8000 --tenant bench \
        --codes codes.json --start 0 --stop 20000 --concurrency 32 --duration 10 --out run.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile: p99 is a latency that 1% of pickups exceeded."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


async def run(
    url: str, tenant: str, work: list[list[str]], concurrency: int, duration: float, admin_key: str | None
) -> dict:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    samples: list[str] = []
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    cpu_started = time.process_time()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def client_loop() -> None:
            nonlocal next_index
            while next_index < len(work) and time.perf_counter() < deadline:
                bank_id, code, key = work[next_index]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(
                        f"/api/v1/t/{tenant}/banks/{bank_id}/pickup",
                        json={"code": code},
                        headers={"authorization": f"Bearer {admin_key or key}"},
                    )
                    status = str(response.status_code)
                    body = response.text if response.status_code != 200 else ""
                except httpx.HTTPError as exc:
                    status, body = type(exc).__name__, str(exc)
                t1 = time.perf_counter()
                latencies.append(t1 - t0)
                statuses[status] += 1
                if status != "200" and len(samples) < 5:
                    samples.append(f"{status} at {t0 - started:.1f}s after {t1 - t0:.1f}s: {body[:300]}")

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    ordered = sorted(lat * 1000 for lat in latencies)
    ok = statuses.get("200", 0)
    return {
        "concurrency": concurrency,
        "attempted": next_index,
        "ok": ok,
        "errors": sum(statuses.values()) - ok,
        "statuses": dict(statuses),
        "error_samples": samples,
        "elapsed_s": elapsed,
        "pickups_per_s": ok / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else float("nan"),
        "mean_ms": sum(ordered) / len(ordered) if ordered else float("nan"),
        "load_cpu_s": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--codes", type=Path, required=True, help="JSON list of [bank_id, code, kiosk_key]")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--admin-key", default=None, help="use this key for every pickup instead of kiosk keys"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    work = json.loads(args.codes.read_text())[args.start : args.stop]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with litestar[standard]
        result = asyncio.run(
            run(args.url, args.tenant, work, args.concurrency, args.duration, args.admin_key)
        )
    else:
        result = uvloop.run(run(args.url, args.tenant, work, args.concurrency, args.duration, args.admin_key))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
