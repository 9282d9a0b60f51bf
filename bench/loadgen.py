"""A small closed-loop HTTP load generator, used when wrk is not installed.

    python loadgen.py URL --connections 32 --duration 10 [--max-requests N]
        [--header "K: V"] [--post-booking --first-therapist ID --therapists N --first-slot N]

Prints one JSON line: {"requests": n, "rps": r, "p50_ms": a, "p99_ms": b, "errors": e}.
Bounded in time and count, loopback only.
"""

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx

EPOCH_2040 = datetime(2040, 1, 1, tzinfo=UTC)


async def run(args: argparse.Namespace) -> dict[str, float]:
    headers = dict(h.split(": ", 1) for h in args.header)
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + args.duration

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, counter
        while time.perf_counter() < deadline and counter < args.max_requests:
            counter += 1
            started = time.perf_counter()
            if args.post_booking:
                # The next hour of the next therapist: never an overlap.
                at = EPOCH_2040 + timedelta(hours=args.first_slot + counter)
                body = {
                    "therapist_id": args.first_therapist + counter % args.therapists,
                    "starts_at": at.isoformat(),
                    "ends_at": (at + timedelta(minutes=30)).isoformat(),
                }
                response = await client.post(args.url, json=body, headers=headers)
            else:
                response = await client.get(args.url, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors += 1

    limits = httpx.Limits(max_connections=args.connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(args.connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--post-booking", action="store_true")
    parser.add_argument("--first-therapist", type=int, default=1)
    parser.add_argument("--therapists", type=int, default=100)
    parser.add_argument("--first-slot", type=int, default=0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
