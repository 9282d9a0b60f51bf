"""The outbox's cost: booking creates on PostgreSQL with their events written and
relayed (this template) against the template before the outbox, in alternating
wrk runs on one database; and the events one relay publishes per second.

    python bench/outbox.py [--quick] [--before REF]

Both services run the same venv, the same answers and the same database (the old
code never touches the event tables). Jobs run in the service's process, as in a
new project, so the relay's work is in the measured process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from run import (  # bench/run.py: the same machinery, the same sizes
    BENCH,
    FULL,
    QUICK,
    REPO,
    THERAPISTS,
    Bench,
    first_id,
    log,
    run,
)

# The last template commit without the outbox.
BEFORE = "f4d5be0"
# Events for the relay's throughput: one owner's, none of them wanted by a webhook.
RELAY_EVENTS = 20_000
RELAY_SCRIPT = """
import asyncio, sys, time
from sqlalchemy import insert, select
from app.db.session import SessionLocal, engine
from app.events.jobs import relay_events
from app.events.models import Event
from app.modules.auth.models import User

async def main(count):
    async with SessionLocal() as session:
        owner = await session.scalar(select(User.id).limit(1))
        rows = [dict(type="bookings.created", owner_id=owner, object_id=i, payload="{}")
                for i in range(count)]
        await session.execute(insert(Event), rows)
        await session.commit()
    started = time.perf_counter()
    relayed = await relay_events(SessionLocal)
    seconds = time.perf_counter() - started
    await engine.dispose()
    print(relayed / seconds)

asyncio.run(main(int(sys.argv[1])))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--before", default=BEFORE, help="the template without the outbox")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="wellnest-outbox-") as tmp:
        work = Path(tmp)
        bench = Bench(sizes, work, "postgresql")
        projects = {}
        for name, ref in (("outbox", "HEAD"), ("before", args.before)):
            projects[name] = work / name
            copier = [sys.executable, "-m", "copier", "copy", "-q", "--defaults", "--trust"]
            run(
                [
                    *copier,
                    "--vcs-ref",
                    ref,
                    "-d",
                    "database=postgresql",
                    str(REPO),
                    str(projects[name]),
                ]
            )
        bin_dir = bench.project_venv(projects["outbox"])
        bench.results["service_venv"] = str(bin_dir)
        users, per_user = sizes.datasets[0]
        with bench.database_url("postgresql") as url:
            # One secret for both: each render's .env has its own, and one token
            # (from the seed) signs in to both services.
            secret = "outbox-bench-" + uuid.uuid4().hex * 2
            env = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "production"}
            env["SECRET_KEY"] = secret
            outbox_env = {**env, "PYTHONPATH": str(projects["outbox"])}
            before_env = {**env, "PYTHONPATH": str(projects["before"])}
            run(
                [str(bin_dir / "alembic"), "upgrade", "head"],
                cwd=projects["outbox"],
                env=outbox_env,
            )
            seed = [str(bin_dir / "python"), str(BENCH / "seed.py"), str(users), str(per_user)]
            token = run([*seed, str(THERAPISTS)], cwd=projects["outbox"], env=outbox_env)
            auth = {"Authorization": f"Bearer {token.stdout.strip().splitlines()[-1]}"}
            with contextlib.ExitStack() as servers:
                new = servers.enter_context(
                    bench.server(bin_dir, "app.main:app", projects["outbox"], outbox_env)
                )
                old = servers.enter_context(
                    bench.server(bin_dir, "app.main:app", projects["before"], before_env)
                )
                bench._first_therapist = first_id(new, auth, "therapists")
                log("booking creates: with the outbox, then without, alternating")
                figures = bench.pair(new, old, "/api/v1/bookings", auth, post_booking=True)
            log("the relay's throughput")
            rates = [
                float(
                    run(
                        [str(bin_dir / "python"), "-c", RELAY_SCRIPT, str(RELAY_EVENTS)],
                        cwd=projects["outbox"],
                        env=outbox_env,
                    ).stdout.split()[-1]
                )
                for _ in range(bench.rounds)
            ]
    ratio = figures["ratio_to_raw"]
    print(
        f"booking create with the outbox: {figures['rps']:.1f} rps, p50 {figures['p50_ms']:.2f} ms"
    )
    print(f"booking create before it:       {figures['raw_rps']:.1f} rps")
    print(f"with / before: {ratio:.3f} (the outbox costs {100 * (1 / ratio - 1):.1f} % more;")
    print("  target: at most 15 %)")
    print(f"events one relay publishes: {statistics.median(rates):.0f} per second")
    if figures["errors"] or figures["raw_errors"]:
        print(f"non-2xx answers: {figures['errors']:.0f} with, {figures['raw_errors']:.0f} before")


if __name__ == "__main__":
    main()
